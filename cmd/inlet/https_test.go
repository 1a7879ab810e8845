package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/inletdev/inlet/internal/inlettest"
	"github.com/inletdev/inlet/tlsserve"
)

// makeHTTPSCert runs inlet cert into dir and returns its certificate file, key file
// and the certificate.
func makeHTTPSCert(t *testing.T, dir string, force bool) (certFile, keyFile string, cert *x509.Certificate) {
	t.Helper()
	args := []string{"cert", "--dir", dir, "--host", "inlet.test,192.0.2.10"} // not the loopback address the tests dial
	if force {
		args = append(args, "--force")
	}
	if out, err := exec.Command(inletBinary(t), args...).CombinedOutput(); err != nil {
		t.Fatalf("inlet cert: %v\n%s", err, out)
	}
	certFile, keyFile = filepath.Join(dir, "inlet.crt"), filepath.Join(dir, "inlet.key")
	b, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s holds no PEM block", certFile)
	}
	if cert, err = x509.ParseCertificate(blk.Bytes); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, cert
}

// servedCert returns the certificate a new TLS connection to addr presents.
func servedCert(t *testing.T, addr string) *x509.Certificate {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr, &tls.Config{InsecureSkipVerify: true}) // only looked at
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0]
}

// The real binary serves the dashboard, the API, /metrics and the probes over
// HTTPS with the certificate of inlet cert, shared with the device TLS
// listener; inlet health and inlet tail reach it with --ca; SIGHUP swaps the
// certificate for new connections.
func TestServeHTTPS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, cert := makeHTTPSCert(t, dir, false)
	const token = "s3cret-token"
	db := filepath.Join(dir, "inlet.db")
	srv := startBinary(t, "--tcp", "127.0.0.1:0", "--udp", "", "--db", db,
		"--tls", "127.0.0.1:0", "--tls-cert", certFile, "--tls-key", keyFile,
		"--http", "127.0.0.1:0", "--http-token", token, "--http-tls-cert", certFile, "--http-tls-key", keyFile)
	base := "https://" + srv.ready.HTTP
	if !strings.HasPrefix(srv.ready.Dashboard, "https://") {
		t.Errorf("ready line's dashboard %q, want https://", srv.ready.Dashboard)
	}
	if err := sendOnce("127.0.0.1", srv.ready.TCP, "t=21.5\r\n"); err != nil {
		t.Fatal(err)
	}
	waitRows(t, db, 1)

	// A client trusting the certificate: the probes, the API and /metrics,
	// with the security headers and HSTS.
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "inlet.test"}, ForceAttemptHTTP2: true}}
	for _, path := range []string{"/healthz", "/readyz", "/metrics", "/api/devices"} {
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("GET %s over HTTPS: %v", path, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.ProtoMajor != 2 || resp.TLS == nil || resp.TLS.Version < tls.VersionTLS12 {
			t.Errorf("GET %s over HTTPS: %s %s: %.200s", path, resp.Proto, resp.Status, b)
		}
		if resp.Header.Get("Strict-Transport-Security") == "" || resp.Header.Get("X-Frame-Options") != "DENY" {
			t.Errorf("GET %s over HTTPS: headers %v", path, resp.Header)
		}
	}
	// The device TLS listener presents the same certificate.
	if got := servedCert(t, srv.ready.TLS); !bytes.Equal(got.Raw, cert.Raw) {
		t.Errorf("the device TLS listener presents %s, want the file's %s", tlsserve.Fingerprint(got.Raw), tlsserve.Fingerprint(cert.Raw))
	}

	// inlet health: over HTTPS with --ca (the certificate names inlet.test,
	// not 127.0.0.1: the pinned certificate is taken whatever the name);
	// refused without --ca (not a known authority) and over plain HTTP.
	cli := func(args ...string) (string, int) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, inletBinary(t), args...)
		out, _ := cmd.CombinedOutput()
		return string(out), cmd.ProcessState.ExitCode()
	}
	if out, code := cli("health", "--http", base, "--ca", certFile); code != 0 || !strings.Contains(out, "/readyz: ready") {
		t.Errorf("inlet health --http %s --ca: exit %d\n%s", base, code, out)
	}
	if out, code := cli("health", "--http", srv.ready.HTTP, "--ca", certFile); code != 0 {
		t.Errorf("inlet health --http ADDR --ca (https implied): exit %d\n%s", code, out)
	}
	if out, code := cli("health", "--http", base); code != 1 || !strings.Contains(out, "certificate") {
		t.Errorf("inlet health over HTTPS without --ca: exit %d, want 1 and a certificate error\n%s", code, out)
	}
	if out, code := cli("health", "--http", srv.ready.HTTP); code != 1 || !strings.Contains(out, "400") {
		t.Errorf("inlet health over plain HTTP to the HTTPS port: exit %d, want 1 and a 400\n%s", code, out)
	}
	// inlet tail over HTTPS prints the stored message, then one sent later
	// from the stream.
	tail := exec.Command(inletBinary(t), "tail", "--server", base, "--ca", certFile, "--token", token,
		"--format", "json", "-n", "5", "--count", "2")
	tailOut, tailErr := new(inlettest.Buffer), new(inlettest.Buffer)
	tail.Stdout, tail.Stderr = tailOut, tailErr
	if err := tail.Start(); err != nil {
		t.Fatal(err)
	}
	tailDone := make(chan error, 1)
	go func() { tailDone <- tail.Wait() }()
	waitFor(t, "inlet tail's first line", 10*time.Second, func() bool { return strings.Contains(tailOut.String(), "t=21.5") })
	if err := sendOnce("127.0.0.1", srv.ready.TCP, "t=22.5\r\n"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-tailDone:
		if err != nil || !strings.Contains(tailOut.String(), "t=22.5") {
			t.Errorf("inlet tail over HTTPS: %v\nstdout: %s\nstderr: %s", err, tailOut.String(), tailErr.String())
		}
	case <-time.After(20 * time.Second):
		tail.Process.Kill()
		t.Fatalf("inlet tail over HTTPS did not print 2 messages\nstdout: %s\nstderr: %s", tailOut.String(), tailErr.String())
	}

	// SIGHUP: a new certificate reaches new connections of both listeners.
	_, _, cert2 := makeHTTPSCert(t, dir, true)
	srv.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, "both certificates reloaded", 10*time.Second, func() bool {
		return strings.Contains(srv.stderr.String(), "https: certificate reloaded") &&
			strings.Contains(srv.stderr.String(), "tls: certificate reloaded")
	})
	for what, addr := range map[string]string{"HTTPS": srv.ready.HTTP, "device TLS": srv.ready.TLS} {
		if got := servedCert(t, addr); !bytes.Equal(got.Raw, cert2.Raw) {
			t.Errorf("%s after SIGHUP presents %s, want the new %s", what, tlsserve.Fingerprint(got.Raw), tlsserve.Fingerprint(cert2.Raw))
		}
	}
	if out, code := cli("health", "--http", base, "--ca", certFile); code != 0 {
		t.Errorf("inlet health with the new certificate: exit %d\n%s", code, out)
	}
	srv.stop(t, syscall.SIGTERM)
}

// The HTTPS flags go in pairs and need HTTP; a certificate that cannot be
// loaded stops the start with the flag named.
func TestServeHTTPSFlags(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "inlet.db")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--http-tls-cert", "x.crt"}, "go together"},
		{[]string{"--http-tls-key", "x.key"}, "go together"},
		{[]string{"--http", "", "--http-tls-cert", "x.crt", "--http-tls-key", "x.key"}, "need --http"},
		{[]string{"--http", "127.0.0.1:0", "--http-tls-cert", filepath.Join(dir, "none.crt"), "--http-tls-key", filepath.Join(dir, "none.key")}, "--http-tls-cert/--http-tls-key"},
	} {
		var out, errOut bytes.Buffer
		args := append([]string{"serve", "--tcp", "127.0.0.1:0", "--udp", "", "--db", db}, c.args...)
		if code := run(context.Background(), args, &out, &errOut); code == 0 || !strings.Contains(errOut.String(), c.want) {
			t.Errorf("serve %q: exit %d, want an error naming %q:\n%s", c.args, code, c.want, errOut.String())
		}
	}
	if _, err := os.Stat(db); err == nil {
		t.Errorf("a failed start left %s behind", db)
	}
}
