package tlsserve_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"encoding/hex"
	"math/big"
	"net"

	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/inletdev/inlet/internal/testenv"
	"github.com/inletdev/inlet/tlsserve"
)

// The TLS stacks of the devices, built on the host from Debian's packages:
// BearSSL (libbearssl-dev) as the ESP8266 Arduino core configures it, and
// mbedTLS (libmbedtls-dev) as ESP-IDF configures it. Each client is real C
// against the real library; only the socket layer is the host's.

// buildC compiles testdata/src into a binary in a temporary directory.
func buildC(t *testing.T, src, pkg string, libs ...string) string {
	t.Helper()
	gcc := testenv.LookPath(t, "gcc is missing (apt-get install gcc)", "gcc")
	bin := filepath.Join(t.TempDir(), strings.TrimSuffix(src, ".c"))
	args := append([]string{"-O2", "-Wall", "-o", bin, filepath.Join("testdata", src)}, libs...)
	out, err := exec.Command(gcc, args...).CombinedOutput()
	if err != nil {
		if strings.Contains(string(out), "No such file") || strings.Contains(string(out), "cannot find -l") {
			testenv.Missing(t, pkg+" is missing (apt-get install "+pkg+"): "+firstLine(string(out)))
		}
		t.Fatalf("gcc %s: %v\n%s", src, err, out)
	}
	return bin
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// runClient runs a device client against addr and returns its last line.
func runClient(t *testing.T, bin string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// knownKeyArgs gives the bearssl client the server's public key, as a sketch
// gives it to setKnownKey.
func knownKeyArgs(t *testing.T, ss tlsserve.SelfSigned) []string {
	switch k := ss.Cert.PublicKey.(type) {
	case *ecdsa.PublicKey:
		pk, err := k.ECDH()
		if err != nil {
			t.Fatal(err)
		}
		return []string{"ec", hex.EncodeToString(pk.Bytes())}
	case *rsa.PublicKey:
		return []string{"rsa", hex.EncodeToString(k.N.Bytes()), hex.EncodeToString(big.NewInt(int64(k.E)).Bytes())}
	}
	t.Fatalf("key type %T", ss.Cert.PublicKey)
	return nil
}

func hostPort(t *testing.T, addr string) (string, string) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return h, p
}

// readings is the number of acknowledged readings each device client sends;
// window is how many it sends before reading their ACKs: large enough that
// the server's coalesced ACKs exceed 512 bytes (and 2 KiB) per write, so the
// record split is what keeps the records small.
const (
	readings = 1000
	window   = 500
)

// TestBearSSLClient: the ESP8266 core's BearSSL client, with its default
// buffers (setBufferSizes(16384, 512)) and with a 2 KiB receive buffer
// (setBufferSizes(2048, 512)), against ECDSA P-256 and RSA-2048
// certificates: 1,000 readings, every one acknowledged.
func TestBearSSLClient(t *testing.T) {
	bin := buildC(t, "bearssl_client.c", "libbearssl-dev", "-lbearssl")
	for _, bits := range []int{0, 2048} {
		_, _, ss := testCert(t, t.TempDir(), bits)
		ts, err := tlsserve.New(mustPair(t, ss))
		if err != nil {
			t.Fatal(err)
		}
		for _, recv := range []string{"16384", "2048"} {
			name := map[int]string{0: "ECDSA", 2048: "RSA"}[bits] + "-recv" + recv
			t.Run(name, func(t *testing.T) {
				srv := startInlet(t, ts, func(s *inletServer) { s.holdAcks = window })
				host, port := hostPort(t, srv.addr())
				args := append([]string{host, port, recv, "512"}, knownKeyArgs(t, ss)...)
				args = append(args, itoa(readings), itoa(window))
				out, err := runClient(t, bin, args...)
				if err != nil || !strings.HasPrefix(out, "ok acked=1000 version=0x0303 ") {
					t.Fatalf("bearssl client: %v: %s", err, out)
				}
				// BearSSL lists ChaCha20-Poly1305 first; the server picks an AEAD.
				if !strings.Contains(out, "suite=0xcca9") && !strings.Contains(out, "suite=0xcca8") &&
					!strings.Contains(out, "suite=0xc02b") && !strings.Contains(out, "suite=0xc02f") {
					t.Errorf("unexpected suite: %s", out)
				}
				waitFor(t, func() bool { return srv.acked.Load() == readings }, "1000 acked on the server")
				if srv.maxWrite.Load() <= 2048 {
					t.Errorf("largest server write %d bytes: the session did not need the split", srv.maxWrite.Load())
				}
				t.Log(out)
			})
		}
	}
}

// TestBearSSLTrustAnchor: the self-signed certificate (as inlet cert makes
// it) taken as BearSSL's one trust anchor, the setTrustAnchors way, with full
// chain and date checks; and a certificate that is not the anchor is refused
// (BR_ERR_X509_NOT_TRUSTED, 62).
func TestBearSSLTrustAnchor(t *testing.T) {
	bin := buildC(t, "bearssl_client.c", "libbearssl-dev", "-lbearssl")
	for _, bits := range []int{0, 2048} {
		_, _, ss := testCert(t, t.TempDir(), bits)
		ts, err := tlsserve.New(mustPair(t, ss))
		if err != nil {
			t.Fatal(err)
		}
		srv := startInlet(t, ts, nil)
		host, port := hostPort(t, srv.addr())
		out, err := runClient(t, bin, host, port, "2048", "512", "ta", hex.EncodeToString(ss.Cert.Raw), itoa(readings), itoa(window))
		if err != nil || !strings.HasPrefix(out, "ok acked=1000 ") {
			t.Fatalf("trust anchor, %d-bit RSA (0: ECDSA): %v: %s", bits, err, out)
		}
		_, _, other := testCert(t, t.TempDir(), bits)
		out, err = runClient(t, bin, host, port, "2048", "512", "ta", hex.EncodeToString(other.Cert.Raw), "1", "1")
		if err == nil || !strings.Contains(out, "bearssl error 62") {
			t.Errorf("another certificate as the anchor: %v: %s", err, out)
		}
	}
}

// TestBearSSLOldVersion: BearSSL limited to TLS 1.1 is refused, and counted
// as old_version.
func TestBearSSLOldVersion(t *testing.T) {
	bin := buildC(t, "bearssl_client.c", "libbearssl-dev", "-lbearssl")
	_, _, ss := testCert(t, t.TempDir(), 0)
	ts, err := tlsserve.New(mustPair(t, ss))
	if err != nil {
		t.Fatal(err)
	}
	srv := startInlet(t, ts, nil)
	host, port := hostPort(t, srv.addr())
	cmd := exec.Command(bin, append(append([]string{host, port, "2048", "512"}, knownKeyArgs(t, ss)...), "1", "1")...)
	cmd.Env = append(cmd.Environ(), "BEARSSL_MAXVER=0x0302")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("a TLS 1.1 BearSSL client was served: %s", out)
	}
	// BR_ERR_RECV_FATAL_ALERT (256) + protocol_version (70).
	if !strings.Contains(string(out), "bearssl error 326") {
		t.Errorf("want a protocol_version alert: %s", out)
	}
	waitFor(t, func() bool { return ts.Failures()[tlsserve.ReasonOldVersion] == 1 }, "the TLS 1.1 client counted as old_version")
	t.Logf("refused: %s", strings.TrimSpace(string(out)))
}

// TestBearSSLWrongKey: a BearSSL client pinned to another key refuses the
// server (BR_ERR_BAD_SIGNATURE, 27), as a sketch with a stale setKnownKey.
func TestBearSSLWrongKey(t *testing.T) {
	bin := buildC(t, "bearssl_client.c", "libbearssl-dev", "-lbearssl")
	_, _, ss := testCert(t, t.TempDir(), 0)
	_, _, other := testCert(t, t.TempDir(), 0)
	ts, err := tlsserve.New(mustPair(t, ss))
	if err != nil {
		t.Fatal(err)
	}
	srv := startInlet(t, ts, nil)
	host, port := hostPort(t, srv.addr())
	args := append([]string{host, port, "2048", "512"}, knownKeyArgs(t, other)...)
	out, err := runClient(t, bin, append(args, "1", "1")...)
	if err == nil || !strings.Contains(out, "bearssl error 27") {
		t.Fatalf("a client pinned to another key: %v: %s", err, out)
	}
	// The server sees the client give up: an alert (handshake) or a bare
	// close (closed), depending on whether the alert is flushed before exit.
	waitFor(t, func() bool {
		f := ts.Failures()
		return f[tlsserve.ReasonHandshake]+f[tlsserve.ReasonClosed] == 1
	}, "the refused handshake counted")
	if f := ts.Failures(); f[tlsserve.ReasonOldVersion] != 0 || ts.Handshakes() != 0 {
		t.Errorf("failures %v, handshakes %d", f, ts.Handshakes())
	}
}

// TestBearSSLSmallBufferNeedsSplit checks that the 2 KiB test above can fail:
// the same session with the server writing straight to the *tls.Conn sends
// records larger than the device's buffer, and BearSSL gives up.
func TestBearSSLSmallBufferNeedsSplit(t *testing.T) {
	bin := buildC(t, "bearssl_client.c", "libbearssl-dev", "-lbearssl")
	_, _, ss := testCert(t, t.TempDir(), 0)
	ts, err := tlsserve.New(mustPair(t, ss))
	if err != nil {
		t.Fatal(err)
	}
	srv := startInlet(t, ts, func(s *inletServer) { s.raw, s.holdAcks = true, window })
	host, port := hostPort(t, srv.addr())
	args := append([]string{host, port, "2048", "512"}, knownKeyArgs(t, ss)...)
	args = append(args, itoa(readings), itoa(window))
	out, err := runClient(t, bin, args...)
	if err == nil {
		t.Fatalf("with records up to %d bytes the 2 KiB client succeeded: %s", srv.maxWrite.Load(), out)
	}
	// BR_ERR_TOO_LARGE: "incoming record is too large to be processed".
	if !strings.Contains(out, "bearssl error 6") {
		t.Errorf("the client failed for another reason than a too-large record: %s", out)
	}
	t.Logf("as expected: %s", out)
}

// TestMbedTLSClient: an ESP32-style mbedTLS client (setCACert with the
// self-signed certificate, host name checked) against ECDSA P-256 and
// RSA-2048 certificates: 1,000 readings, every one acknowledged.
func TestMbedTLSClient(t *testing.T) {
	bin := buildC(t, "mbedtls_client.c", "libmbedtls-dev", "-lmbedtls", "-lmbedx509", "-lmbedcrypto")
	for _, bits := range []int{0, 2048} {
		dir := t.TempDir()
		certFile, keyFile, _ := testCert(t, dir, bits)
		ts, err := tlsserve.Load(certFile, keyFile)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(map[int]string{0: "ECDSA", 2048: "RSA"}[bits], func(t *testing.T) {
			srv := startInlet(t, ts, nil)
			host, port := hostPort(t, srv.addr())
			out, err := runClient(t, bin, host, port, "localhost", certFile, itoa(readings), itoa(window))
			if err != nil || !strings.HasPrefix(out, "ok acked=1000 suite=TLS-ECDHE-") || !strings.Contains(out, "GCM") {
				t.Fatalf("mbedtls client: %v: %s", err, out)
			}
			waitFor(t, func() bool { return srv.acked.Load() == readings }, "1000 acked on the server")
			t.Log(out)
		})
		// The same client refuses a server whose certificate is not its CA.
		_, _, other := testCert(t, t.TempDir(), bits)
		ts2, err := tlsserve.New(mustPair(t, other))
		if err != nil {
			t.Fatal(err)
		}
		srv := startInlet(t, ts2, nil)
		host, port := hostPort(t, srv.addr())
		if out, err := runClient(t, bin, host, port, "localhost", certFile, "1", "1"); err == nil {
			t.Errorf("mbedtls client accepted a certificate it was not given: %s", out)
		}
	}
}

func itoa(n int) string { return big.NewInt(int64(n)).String() }
