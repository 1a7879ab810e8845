package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// runHealth asks a running server's /readyz (or /healthz) and exits 0 only on a
// 200: for container HEALTHCHECKs and scripts, where no curl is at hand.
func runHealth(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("health", "Ask a running inlet serve whether it is ready (GET /readyz: listeners bound, the store\n"+
		"committing); exit status 0 when it is, 1 when not or unreachable. --live asks /healthz\n"+
		"(the process answers) instead.", stderr)
	addr := fs.String("http", "127.0.0.1:8080", "the server's HTTP address (its --http)")
	live := fs.Bool("live", false, "ask /healthz instead of /readyz")
	timeout := fs.Duration("timeout", 3*time.Second, "give up after this long")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	path := "/readyz"
	if *live {
		path = "/healthz"
	}
	host := *addr
	if strings.HasPrefix(host, ":") || strings.HasPrefix(host, "0.0.0.0:") || strings.HasPrefix(host, "[::]:") {
		host = "127.0.0.1" + host[strings.LastIndex(host, ":"):]
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+host+path, nil)
	if err != nil {
		return fmt.Errorf("health: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("health: no answer from %s (is inlet serve running with --http %s?): %w", host, *addr, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	msg := strings.TrimSpace(string(body))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("health: %s%s: %s %s", host, path, resp.Status, msg)
	}
	fmt.Fprintf(stdout, "%s%s: %s\n", host, path, msg)
	return nil
}
