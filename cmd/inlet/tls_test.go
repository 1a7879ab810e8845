package main

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/inletdev/inlet"
	"github.com/inletdev/inlet/internal/testenv"
	"github.com/inletdev/inlet/tlsserve"
)

// makeCert runs `inlet cert` into dir and returns the certificate it wrote
// and what it printed.
func makeCert(t *testing.T, dir string, force bool) (*x509.Certificate, string) {
	t.Helper()
	args := []string{"cert", "--dir", dir, "--host", "localhost,127.0.0.1"}
	if force {
		args = append(args, "--force")
	}
	out, code := runCmd(t, args...)
	if code != 0 {
		t.Fatalf("inlet cert: exit %d", code)
	}
	b, err := os.ReadFile(filepath.Join(dir, "inlet.crt"))
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("inlet.crt holds no PEM block")
	}
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert, out
}

// pinned trusts cert alone, as a sketch with setTrustAnchors does.
func pinned(cert *x509.Certificate) *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{RootCAs: pool, ServerName: "localhost"}
}

func dialTLSAck(t *testing.T, addr string, cfg *tls.Config, hello string) (*ackClient, *tls.Conn, string) {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		t.Fatalf("TLS dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	a := &ackClient{t: t, c: c, r: bufio.NewReader(c)}
	a.send(hello)
	return a, c, a.line()
}

// The real binary with --tls: a certificate from `inlet cert`, a Go client
// pinned to it sends 100 acknowledged readings and gets every ACK; the ready
// line names the TLS port; after a new certificate and SIGHUP the open
// connection keeps working and a new one is served the new certificate.
func TestServeTLS(t *testing.T) {
	dir := t.TempDir()
	cert1, printed := makeCert(t, dir, false)
	if fp := tlsserve.Fingerprint(cert1.Raw); !strings.Contains(printed, fp) {
		t.Errorf("inlet cert did not print the fingerprint %s", fp)
	}
	db := filepath.Join(t.TempDir(), "tls.db")
	s := startBinary(t, "--tcp", "127.0.0.1:0", "--udp", "", "--http", "127.0.0.1:0", "--db", db,
		"--tls", "127.0.0.1:0", "--tls-cert", filepath.Join(dir, "inlet.crt"), "--tls-key", filepath.Join(dir, "inlet.key"))
	if s.ready.TLS == "" {
		t.Fatalf("ready line has no tls address: %+v", s.ready)
	}

	a, c, ok := dialTLSAck(t, s.ready.TLS, pinned(cert1), "INLET/1 id=tls-sensor boot=b1\n")
	if ok != "INLET/1 OK last=0" {
		t.Fatalf("hello answered %q", ok)
	}
	if got := c.ConnectionState().PeerCertificates[0]; !got.Equal(cert1) {
		t.Fatal("served a certificate other than inlet cert's")
	}
	for i := 1; i <= 100; i++ {
		a.send(fmt.Sprintf("%d t=%d\n", i, i))
		if i%25 == 0 {
			a.ackedUpTo(int64(i))
		}
	}
	checkSeqsStored(t, db, "tls-sensor", 100)

	// A new certificate, then SIGHUP.
	cert2, _ := makeCert(t, dir, true)
	if cert2.Equal(cert1) {
		t.Fatal("inlet cert --force wrote the same certificate")
	}
	if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	fp2 := tlsserve.Fingerprint(cert2.Raw)
	waitFor(t, "the reload logged", 10*time.Second, func() bool {
		return strings.Contains(s.stderr.String(), "certificate reloaded") && strings.Contains(s.stderr.String(), fp2)
	})
	// The open connection, made with the old certificate, goes on.
	a.send("101 t=101\n")
	a.ackedUpTo(101)
	// A new connection sees the new certificate: a client pinned to the old
	// one is refused, one pinned to the new one is served.
	if c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", s.ready.TLS, pinned(cert1)); err == nil {
		c.Close()
		t.Error("after the reload a client pinned to the old certificate was served")
	}
	b, c2, ok := dialTLSAck(t, s.ready.TLS, pinned(cert2), "INLET/1 id=tls-sensor boot=b2\n")
	if ok != "INLET/1 OK last=0" {
		t.Fatalf("hello after reload answered %q", ok)
	}
	if !c2.ConnectionState().PeerCertificates[0].Equal(cert2) {
		t.Error("new connection not served the new certificate")
	}
	b.send("1 after-reload\n")
	b.ackedUpTo(1)

	// A reload that fails keeps the certificate in use.
	if err := os.WriteFile(filepath.Join(dir, "inlet.crt"), []byte("not a certificate"), 0o644); err != nil {
		t.Fatal(err)
	}
	s.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, "the failed reload logged", 10*time.Second, func() bool {
		return strings.Contains(s.stderr.String(), "certificate not reloaded")
	})
	d, c3, _ := dialTLSAck(t, s.ready.TLS, pinned(cert2), "INLET/1 id=tls-sensor boot=b3\n")
	if !c3.ConnectionState().PeerCertificates[0].Equal(cert2) {
		t.Error("a failed reload changed the certificate")
	}
	d.send("1 after-failed-reload\n")
	d.ackedUpTo(1)
	a.send("102 t=102\n")
	a.ackedUpTo(102)

	// Handshakes and a refused plain-text client show in /metrics.
	p, err := net.Dial("tcp", s.ready.TLS)
	if err != nil {
		t.Fatal(err)
	}
	p.Write([]byte("temp=1\n"))
	p.Close()
	waitFor(t, "the TLS counters in /metrics", 10*time.Second, func() bool {
		body := metricsText(t, s.ready.HTTP)
		return strings.Contains(body, "inlet_tls_handshakes_total 3\n") &&
			strings.Contains(body, `inlet_tls_handshake_failures_total{reason="not_tls"} 1`+"\n") &&
			strings.Contains(body, `inlet_tls_handshake_failures_total{reason="old_version"} 0`+"\n")
	})
	s.stop(t, syscall.SIGTERM)
}

func metricsText(t *testing.T, httpAddr string) string {
	t.Helper()
	_, body := htGet(t, "http://"+httpAddr+"/metrics")
	return string(body)
}

// --tls without its certificate is a usage error naming what is missing and
// pointing at inlet cert; a bad --allow names the bad network.
func TestServeTLSFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"--tls", ":0"}, []string{"--tls-cert and --tls-key", "inlet cert"}},
		{[]string{"--tls", ":0", "--tls-cert", "x.crt"}, []string{"needs --tls-key", "inlet cert"}},
		{[]string{"--tls-cert", "x.crt", "--tls-key", "x.key"}, []string{"need --tls ADDR"}},
		{[]string{"--tls", "127.0.0.1:0", "--tls-cert", "/nonexistent/x.crt", "--tls-key", "/nonexistent/x.key"}, []string{"--tls-cert/--tls-key", "no such file"}},
		{[]string{"--allow", "192.168.1.0/33"}, []string{"-allow", "192.168.1.0/33", "want a network"}},
		{[]string{"--allow", ","}, []string{"-allow", "no network given"}},
	} {
		cmd := exec.Command(inletBinary(t), append([]string{"serve", "--tcp", "127.0.0.1:0", "--udp", "", "--http", "",
			"--db", filepath.Join(t.TempDir(), "x.db")}, tc.args...)...)
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() == 0 {
			t.Errorf("%v: exit %v, want failure", tc.args, err)
		}
		for _, w := range tc.want {
			if !bytes.Contains(out, []byte(w)) {
				t.Errorf("%v: output %q does not mention %q", tc.args, out, w)
			}
		}
	}
}

// The done-when of issue 10: BearSSL configured as the ESP8266 Arduino core
// (tlsserve/testdata/bearssl_client.c, with a 2 KiB receive buffer and the
// key pinned as setKnownKey does) gets every ACK from the real
// inlet serve --tls with inlet cert's certificate. The client checks one ACK
// per reading, so it sends a reading and waits for its ACK, as a sketch does
// (inlet's ACKs are cumulative: a window of readings may be answered by one).
func TestServeTLSBearSSL(t *testing.T) {
	gcc := testenv.LookPath(t, "gcc is missing (apt-get install gcc)", "gcc")
	bin := filepath.Join(t.TempDir(), "bearssl_client")
	out, err := exec.Command(gcc, "-O2", "-o", bin, filepath.Join("..", "..", "tlsserve", "testdata", "bearssl_client.c"), "-lbearssl").CombinedOutput()
	if err != nil {
		if strings.Contains(string(out), "No such file") || strings.Contains(string(out), "cannot find -l") {
			testenv.Missing(t, "libbearssl-dev is missing (apt-get install libbearssl-dev)")
		}
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	dir := t.TempDir()
	cert, _ := makeCert(t, dir, false)
	pub, err := cert.PublicKey.(*ecdsa.PublicKey).ECDH()
	if err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(t.TempDir(), "bearssl.db")
	s := startBinary(t, "--tcp", "", "--udp", "", "--http", "", "--db", db,
		"--tls", "127.0.0.1:0", "--tls-cert", filepath.Join(dir, "inlet.crt"), "--tls-key", filepath.Join(dir, "inlet.key"))
	host, port, _ := net.SplitHostPort(s.ready.TLS)
	res, err := exec.Command(bin, host, port, "2048", "512", "ec", hex.EncodeToString(pub.Bytes()), "1000", "1").CombinedOutput()
	if err != nil || !strings.HasPrefix(strings.TrimSpace(string(res)), "ok acked=1000 ") {
		t.Fatalf("bearssl client: %v: %s", err, res)
	}
	t.Log(strings.TrimSpace(string(res)))
	s.stop(t, syscall.SIGTERM)
	checkSeqsStored(t, db, "bearssl", 1000)
}

// --allow on the real binary: a sender outside it is dropped and counted in
// /metrics as not_allowed, one inside is stored.
func TestServeAllow(t *testing.T) {
	db := filepath.Join(t.TempDir(), "allow.db")
	s := startBinary(t, "--tcp", "127.0.0.1:0", "--udp", "", "--http", "127.0.0.1:0", "--db", db, "--allow", "127.0.0.2, 10.0.0.0/8")
	if err := sendOnce("127.0.0.3", s.ready.TCP, "outside\n"); err != nil {
		t.Fatal(err)
	}
	if err := sendOnce("127.0.0.2", s.ready.TCP, "inside\n"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the refusal and the accepted line in /metrics", 10*time.Second, func() bool {
		body := metricsText(t, s.ready.HTTP)
		return strings.Contains(body, `inlet_rejected_total{reason="not_allowed"} 1`+"\n") &&
			strings.Contains(body, `inlet_messages_committed_total 1`+"\n")
	})
	s.stop(t, syscall.SIGTERM)
	if got := payloads(messages(t, db, inlet.Query{})); len(got) != 1 || got[0] != "inside" {
		t.Errorf("stored %q, want only \"inside\"", got)
	}
	if !strings.Contains(s.stderr.String(), "tcp: connection from outside --allow dropped") {
		t.Error("the refusal was not logged")
	}
}

// --tls-idle-timeout, not --idle-timeout, closes an idle TLS connection.
func TestServeTLSIdleTimeout(t *testing.T) {
	dir := t.TempDir()
	cert, _ := makeCert(t, dir, false)
	s := startBinary(t, "--tcp", "", "--udp", "", "--http", "", "--db", filepath.Join(t.TempDir(), "idle.db"),
		"--idle-timeout", "1h", "--tls-idle-timeout", "300ms",
		"--tls", "127.0.0.1:0", "--tls-cert", filepath.Join(dir, "inlet.crt"), "--tls-key", filepath.Join(dir, "inlet.key"))
	_, c, ok := dialTLSAck(t, s.ready.TLS, pinned(cert), "INLET/1 id=idler boot=b1\n")
	if ok != "INLET/1 OK last=0" {
		t.Fatalf("hello answered %q", ok)
	}
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	if n, err := c.Read(make([]byte, 16)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("idle TLS connection not closed after --tls-idle-timeout: read %d, %v", n, err)
	}
	s.stop(t, syscall.SIGTERM)
}
