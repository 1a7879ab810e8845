package main

import (
	"bufio"
	"context"
	"io"
	"net"
	neturl "net/url"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/inletdev/inlet/internal/pgtest"
)

// Device tokens on a PostgreSQL database that two real nodes share: inlet
// token add (another process) gives a device a token that both nodes take,
// and inlet token revoke makes both close the device's connections and refuse
// its next hello. Neither the token nor the database password is printed or
// logged.
func TestTokensAcrossNodesPostgres(t *testing.T) {
	ctx := context.Background()
	u, err := neturl.Parse(pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	// The suite's PostgreSQL trusts loopback, so any password is accepted;
	// it must never show.
	const password = "pw-never-shown-7Qx"
	u.User = neturl.UserPassword(u.User.Username(), password)
	db := u.String()

	args := []string{"--db", db, "--tcp", "127.0.0.1:0", "--udp", "", "--http", "", "--require-token"}
	nodes := []*server{startBinary(t, args...), startBinary(t, args...)}
	for i, n := range nodes {
		if got := rawHello(t, n.ready.TCP, "INLET/1 id=pump-1 boot=b0 token=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n"); got != "INLET/1 ERR unauthorized" {
			t.Fatalf("node %d, before any token: %q", i, got)
		}
	}

	out, errOut, code := inletCmd(t, ctx, "token", "add", "pump-1", "--db", db)
	m := tokenLine.FindStringSubmatch(out)
	if code != 0 || m == nil {
		t.Fatalf("inlet token add --db postgres://…: exit %d\n%s%s", code, out, errOut)
	}
	token := m[1]
	if strings.Contains(out+errOut, password) {
		t.Fatalf("inlet token add shows the password:\n%s%s", out, errOut)
	}
	if _, errOut, code := inletCmd(t, ctx, "token", "add", "pump-1", "--db", db); code != 1 || !strings.Contains(errOut, "--replace") {
		t.Fatalf("second add without --replace: exit %d, %s", code, errOut)
	}

	// Each node takes the token within about a second (it logs the reload);
	// a connection authenticated on each stays open.
	conns := make([]*bufio.Reader, len(nodes))
	raw := make([]net.Conn, len(nodes))
	for i, n := range nodes {
		waitFor(t, "the node to reload the tokens", 15*time.Second, func() bool {
			return strings.Contains(n.stderr.String(), "device tokens reloaded")
		})
		c := dialFrom(t, "", n.ready.TCP)
		defer c.Close()
		raw[i], conns[i] = c, bufio.NewReader(c)
		io.WriteString(c, "INLET/1 id=pump-1 boot=b"+string(rune('1'+i))+" token="+token+"\n1 before\n")
		for _, want := range []string{"INLET/1 OK last=0", "ACK 1"} {
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			if got, err := conns[i].ReadString('\n'); err != nil || got != want+"\n" {
				t.Fatalf("node %d, with the token: %q, %v; want %q", i, got, err, want)
			}
		}
	}
	list, _, code := inletCmd(t, ctx, "token", "list", "--db", db)
	if code != 0 || !regexp.MustCompile(`(?m)^pump-1 +\S+ +valid$`).MatchString(list) {
		t.Fatalf("inlet token list: exit %d\n%s", code, list)
	}

	if out, errOut, code := inletCmd(t, ctx, "token", "revoke", "pump-1", "--db", db); code != 0 {
		t.Fatalf("inlet token revoke: exit %d\n%s%s", code, out, errOut)
	}
	revoked := time.Now()
	for _, c := range raw {
		c.SetReadDeadline(revoked.Add(15 * time.Second))
	}
	for i, r := range conns {
		if s, err := r.ReadString('\n'); err == nil {
			t.Fatalf("node %d: the revoked device's connection answered %q", i, s)
		} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("node %d: the revoked device's connection still open 15 s after the revocation", i)
		}
		t.Logf("node %d closed the connection %v after inlet token revoke returned", i, time.Since(revoked).Round(time.Millisecond))
	}
	for i, n := range nodes {
		if got := rawHello(t, n.ready.TCP, "INLET/1 id=pump-1 boot=b9 token="+token+"\n"); got != "INLET/1 ERR unauthorized" {
			t.Fatalf("node %d, next hello after the revocation: %q", i, got)
		}
	}
	list, _, code = inletCmd(t, ctx, "token", "list", "--db", db)
	if code != 0 || !regexp.MustCompile(`(?m)^pump-1 +\S+ +revoked \S+$`).MatchString(list) {
		t.Fatalf("inlet token list after the revocation: exit %d\n%s", code, list)
	}
	for i, n := range nodes {
		n.stop(t, syscall.SIGTERM)
		log := n.stderr.String()
		if strings.Contains(log, token) || strings.Contains(log, password) {
			t.Errorf("node %d logs the token or the password:\n%s", i, log)
		}
	}
}

// inlet migrate copies a SQLite file's device tokens, valid and revoked, so
// that devices keep theirs when the store moves to PostgreSQL.
func TestMigrateTokens(t *testing.T) {
	ctx := context.Background()
	lite, url := filepath.Join(t.TempDir(), "inlet.db"), pgtest.URL(t)
	for _, args := range [][]string{{"add", "pump-1"}, {"add", "esp-2"}, {"revoke", "esp-2"}} {
		if out, errOut, code := inletCmd(t, ctx, append([]string{"token"}, append(args, "--db", lite)...)...); code != 0 {
			t.Fatalf("inlet token %v: exit %d\n%s%s", args, code, out, errOut)
		}
	}
	if out, errOut, code := inletCmd(t, ctx, "migrate", "--from", lite, "--to", url); code != 0 || !strings.Contains(out, "2 device tokens") {
		t.Fatalf("inlet migrate: exit %d\n%s%s", code, out, errOut)
	}
	want, _, _ := inletCmd(t, ctx, "token", "list", "--db", lite)
	got, errOut, code := inletCmd(t, ctx, "token", "list", "--db", url)
	if code != 0 || got != want || strings.Count(got, "\n") != 3 {
		t.Fatalf("inlet token list --db postgres://…: exit %d\n%s%s\nSQLite's:\n%s", code, got, errOut, want)
	}
}
