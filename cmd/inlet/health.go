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
		"(the process answers) instead. A server with --http-tls-cert is asked over HTTPS: give\n"+
		"--http https://HOST:PORT, or --ca FILE (its certificate), or both.", stderr)
	addr := fs.String("http", "127.0.0.1:8080", "the server's HTTP address (its --http), or a URL (https://HOST:PORT)")
	ca := fs.String("ca", "", "trust this PEM certificate file for HTTPS (the server's --http-tls-cert, e.g. inlet.crt\n"+
		"from inlet cert: taken whatever name the server is reached by); implies https://")
	live := fs.Bool("live", false, "ask /healthz instead of /readyz")
	timeout := fs.Duration("timeout", 3*time.Second, "give up after this long")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	path := "/readyz"
	if *live {
		path = "/healthz"
	}
	scheme, host := "http", *addr
	if *ca != "" {
		scheme = "https"
	}
	if s, rest, ok := strings.Cut(host, "://"); ok {
		scheme, host = strings.ToLower(s), strings.TrimSuffix(rest, "/")
	}
	if scheme != "http" && scheme != "https" {
		return badUsage(fmt.Errorf("--http %q: want HOST:PORT, http://HOST:PORT or https://HOST:PORT", *addr))
	}
	client, err := httpClient(*ca)
	if err != nil {
		return badUsage(err)
	}
	if strings.HasPrefix(host, ":") || strings.HasPrefix(host, "0.0.0.0:") || strings.HasPrefix(host, "[::]:") {
		host = "127.0.0.1" + host[strings.LastIndex(host, ":"):]
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+host+path, nil)
	if err != nil {
		return fmt.Errorf("health: %w", err)
	}
	resp, err := client.Do(req)
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
