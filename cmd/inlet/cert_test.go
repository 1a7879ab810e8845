package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/inletdev/inlet/tlsserve"
)

// TestCert: inlet cert writes a key pair a TLS server can load, with the SANs
// asked for, and prints the fingerprint, public key and certificate of what
// the server then presents; it refuses to overwrite without --force.
func TestCert(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls") // created by the command
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"cert", "--dir", dir, "--host", "inlet.local, 192.168.1.10,::1"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	certFile, keyFile := filepath.Join(dir, "inlet.crt"), filepath.Join(dir, "inlet.key")
	if fi, err := os.Stat(keyFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, %v", fi, err)
	}

	// The server presents what was written.
	ts, err := tlsserve.Load(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		if conn, err := ts.Handshake(context.Background(), c, 5*time.Second); err == nil {
			conn.Close()
		}
	}()
	c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	served := c.ConnectionState().PeerCertificates[0]
	c.Close()

	if k, ok := served.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
		t.Errorf("key %T, want ECDSA P-256", served.PublicKey)
	}
	if len(served.DNSNames) != 1 || served.DNSNames[0] != "inlet.local" || len(served.IPAddresses) != 2 ||
		!served.IPAddresses[0].Equal(net.ParseIP("192.168.1.10")) || !served.IPAddresses[1].Equal(net.ParseIP("::1")) {
		t.Errorf("SANs %v %v", served.DNSNames, served.IPAddresses)
	}
	pool := x509.NewCertPool()
	pool.AddCert(served)
	if _, err := served.Verify(x509.VerifyOptions{Roots: pool, DNSName: "inlet.local"}); err != nil {
		t.Errorf("the certificate does not verify as its own trust anchor: %v", err)
	}

	// What is printed: the fingerprint, the key and the certificate served.
	text := out.String()
	fp := regexp.MustCompile(`INLET_FINGERPRINT\[\] PROGMEM = "([0-9A-F:]+)"`).FindStringSubmatch(text)
	if fp == nil || fp[1] != tlsserve.Fingerprint(served.Raw) {
		t.Errorf("printed fingerprint %v, want %s", fp, tlsserve.Fingerprint(served.Raw))
	}
	block, rest := pem.Decode([]byte(text[strings.Index(text, "R\"KEY(\n")+7:]))
	if block == nil || block.Type != "PUBLIC KEY" || !bytes.Equal(block.Bytes, served.RawSubjectPublicKeyInfo) {
		t.Errorf("printed public key does not match the certificate's")
	}
	block, _ = pem.Decode(rest)
	if block == nil || block.Type != "CERTIFICATE" || !bytes.Equal(block.Bytes, served.Raw) {
		t.Errorf("printed certificate is not the one served")
	}
	for _, want := range []string{"setFingerprint(INLET_FINGERPRINT)", "setKnownKey(", "setTrustAnchors(", "setCACert(INLET_CERT)", "setBufferSizes(2048, 512)"} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q", want)
		}
	}

	// A second run refuses to overwrite; --force replaces both files.
	before, _ := os.ReadFile(certFile)
	out.Reset()
	errOut.Reset()
	if code := run(context.Background(), []string{"cert", "--dir", dir, "--host", "inlet.local"}, &out, &errOut); code != 1 ||
		!strings.Contains(errOut.String(), "--force") {
		t.Errorf("overwrite without --force: exit %d, %q", code, errOut.String())
	}
	if after, _ := os.ReadFile(certFile); !bytes.Equal(before, after) {
		t.Error("the certificate changed without --force")
	}
	if code := run(context.Background(), []string{"cert", "--dir", dir, "--host", "inlet.local", "--force"}, &out, &errOut); code != 0 {
		t.Fatalf("--force: exit %d: %s", code, errOut.String())
	}
	if after, _ := os.ReadFile(certFile); bytes.Equal(before, after) {
		t.Error("--force did not replace the certificate")
	}
	if _, err := tlsserve.Load(certFile, keyFile); err != nil {
		t.Errorf("the replaced pair does not load: %v", err)
	}

	// No host: a usage error.
	if code := run(context.Background(), []string{"cert", "--dir", t.TempDir()}, &out, &errOut); code != 2 {
		t.Errorf("without --host: exit %d, want 2", code)
	}
}
