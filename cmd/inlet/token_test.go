package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

var tokenLine = regexp.MustCompile(`(?m)^const char INLET_TOKEN\[\] = "([A-Za-z0-9_-]{43})";$`)

// inletCmd runs the real binary with args and returns its stdout, stderr and
// exit code.
func inletCmd(t *testing.T, ctx context.Context, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.CommandContext(ctx, inletBinary(t), args...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

// The whole life of a device token with the real binary: inlet token add
// prints it, inlet serve --require-token takes inlet send with it, refuses a
// wrong one, and once inlet token revoke (another process) has run, closes
// the device's open connection and refuses its next hello; /metrics and the
// log say why, and never show the token.
func TestTokenLifecycle(t *testing.T) {
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "inlet.db")
	out, errOut, code := inletCmd(t, ctx, "token", "add", "pump-1", "--db", db)
	m := tokenLine.FindStringSubmatch(out)
	if code != 0 || m == nil || !strings.Contains(out, `INLET_DEVICE[] = "pump-1"`) {
		t.Fatalf("inlet token add: exit %d\n%s%s", code, out, errOut)
	}
	token := m[1]
	if _, errOut, code := inletCmd(t, ctx, "token", "add", "pump-1", "--db", db); code != 1 || !strings.Contains(errOut, "--replace") {
		t.Fatalf("second add without --replace: exit %d, %s", code, errOut)
	}
	if _, errOut, code := inletCmd(t, ctx, "token", "add", "192.168.1.23", "--db", db); code != 2 || !strings.Contains(errOut, "IP address") {
		t.Fatalf("add for an IP address: exit %d, %s", code, errOut)
	}

	srv := startBinary(t, "--db", db, "--tcp", "127.0.0.1:0", "--udp", "", "--http", "127.0.0.1:0", "--require-token")

	sendArgs := []string{"send", "--ack", "--mode", "stream", "--addr", srv.ready.TCP, "--device", "pump-1", "--count", "3", "--every", "0"}
	if out, errOut, code := inletCmd(t, ctx, append(sendArgs, "--token", token)...); code != 0 {
		t.Fatalf("inlet send with the token: exit %d\n%s%s", code, out, errOut)
	}
	wrong := token[:42] + "A" // one character off
	if token[42] == 'A' {
		wrong = token[:42] + "B"
	}
	if got := rawHello(t, srv.ready.TCP, "INLET/1 id=pump-1 boot=b1 token="+wrong+"\n"); got != "INLET/1 ERR unauthorized" {
		t.Fatalf("wrong token: %q", got)
	}

	// A connection authenticated before the revocation.
	c := dialFrom(t, "", srv.ready.TCP)
	defer c.Close()
	r := bufio.NewReader(c)
	io.WriteString(c, "INLET/1 id=pump-1 boot=b2 token="+token+"\n1 before\n")
	for _, want := range []string{"INLET/1 OK last=0", "ACK 1"} {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if got, err := r.ReadString('\n'); err != nil || got != want+"\n" {
			t.Fatalf("authenticated connection: %q, %v; want %q", got, err, want)
		}
	}

	if out, errOut, code := inletCmd(t, ctx, "token", "revoke", "pump-1", "--db", db); code != 0 {
		t.Fatalf("inlet token revoke: exit %d\n%s%s", code, out, errOut)
	}
	revoked := time.Now()
	// Closed within a second of the server seeing it (it looks every second).
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if s, err := r.ReadString('\n'); err == nil {
		t.Fatalf("the revoked device's connection answered %q", s)
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("the revoked device's connection still open 10 s after the revocation")
	}
	t.Logf("connection closed %v after inlet token revoke returned", time.Since(revoked).Round(time.Millisecond))
	if got := rawHello(t, srv.ready.TCP, "INLET/1 id=pump-1 boot=b3 token="+token+"\n"); got != "INLET/1 ERR unauthorized" {
		t.Fatalf("next hello after the revocation: %q", got)
	}
	sctx, cancel := context.WithTimeout(ctx, 6*time.Second)
	defer cancel()
	if out, errOut, code := inletCmd(t, sctx, append(sendArgs, "--token", token)...); code == 0 || !strings.Contains(errOut, "refused hello: unauthorized") {
		t.Fatalf("inlet send after the revocation: exit %d\n%s%s", code, out, errOut)
	}

	waitFor(t, "the refusals in /metrics", 10*time.Second, func() bool {
		body := metricsText(t, srv.ready.HTTP)
		return strings.Contains(body, `inlet_auth_failures_total{reason="wrong_token"} 1`+"\n") &&
			strings.Contains(body, `inlet_auth_failures_total{reason="revoked_connection"} 1`+"\n") &&
			!strings.Contains(body, `inlet_auth_failures_total{reason="revoked"} 0`+"\n")
	})
	list, _, code := inletCmd(t, ctx, "token", "list", "--db", db)
	if code != 0 || !regexp.MustCompile(`(?m)^pump-1 +\S+ +revoked \S+$`).MatchString(list) || strings.Contains(list, token) {
		t.Fatalf("inlet token list: exit %d\n%s", code, list)
	}
	srv.stop(t, syscall.SIGTERM)
	log := srv.stderr.String()
	if strings.Contains(log, token) || strings.Contains(log, wrong) {
		t.Errorf("a token is in the log:\n%s", log)
	}
	// (The refusals after the revocation come within 10 s of the first one:
	// their lines are suppressed, and counted in the next.)
	for _, want := range []string{"cause=wrong_token", "token was revoked or replaced"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
}

// rawHello sends hello and a message on a new connection and returns the
// server's first line.
func rawHello(t *testing.T, addr, hello string) string {
	t.Helper()
	c := dialFrom(t, "", addr)
	defer c.Close()
	io.WriteString(c, hello+"1 x\n")
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	s, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("hello %q: %v", hello, err)
	}
	return strings.TrimSuffix(s, "\n")
}
