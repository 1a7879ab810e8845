package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/inletdev/inlet/tlsserve"
)

// runCert makes a self-signed certificate for a LAN without a CA and prints,
// as a C++ header a sketch can include, what the devices need to trust it.
func runCert(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fl := newFlags("cert", "Write DIR/inlet.crt and DIR/inlet.key (ECDSA P-256, self-signed) and print what a sketch pastes:\n"+
		"the SHA-1 fingerprint (BearSSL setFingerprint), the public key (setKnownKey) and the\n"+
		"certificate (setTrustAnchors on the ESP8266, setCACert on the ESP32).", stderr)
	dir := fl.String("dir", ".", "directory to write inlet.crt and inlet.key into (created if missing)")
	hosts := fl.String("host", "", "the server's names and addresses, comma-separated (NAME[,IP...]), as devices connect to it")
	force := fl.Bool("force", false, "overwrite an existing inlet.crt or inlet.key")
	if err := parseFlags(fl, args); err != nil {
		return err
	}
	var names []string
	for _, h := range strings.Split(*hosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			names = append(names, h)
		}
	}
	if len(names) == 0 {
		fmt.Fprintln(stderr, "--host is required: the name or address devices connect to (e.g. --host inlet.local,192.168.1.10)")
		fl.Usage()
		return errUsage
	}
	certFile, keyFile := filepath.Join(*dir, "inlet.crt"), filepath.Join(*dir, "inlet.key")
	if !*force {
		for _, f := range []string{certFile, keyFile} {
			if _, err := os.Stat(f); err == nil {
				return fmt.Errorf("cert: %s exists; devices may trust it already (use --force to replace it)", f)
			} else if !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("cert: %w", err)
			}
		}
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		return fmt.Errorf("cert: %w", err)
	}
	ss, err := tlsserve.NewSelfSigned(names, 0, time.Now())
	if err != nil {
		return fmt.Errorf("cert: %w", err)
	}
	if err := writeFileAtomic(keyFile, ss.KeyPEM, 0o600); err != nil {
		return fmt.Errorf("cert: %w", err)
	}
	if err := writeFileAtomic(certFile, ss.CertPEM, 0o644); err != nil {
		return fmt.Errorf("cert: %w", err)
	}

	fmt.Fprintf(stdout, "// inlet server certificate: ECDSA P-256, self-signed, for %s, valid until %s.\n",
		strings.Join(names, ", "), ss.Cert.NotAfter.UTC().Format("2006-01-02"))
	fmt.Fprintf(stdout, "// Written to %s (key: %s). Paste into the sketch, or save this output as inlet_cert.h. docs/security.md\n\n", certFile, keyFile)
	fmt.Fprintf(stdout, "// ESP8266 (BearSSL), pick one of the three:\n")
	fmt.Fprintf(stdout, "//   client.setFingerprint(INLET_FINGERPRINT);                          // this certificate only\n")
	fmt.Fprintf(stdout, "//   client.setKnownKey(new BearSSL::PublicKey(INLET_PUBLIC_KEY));      // this key, across renewals\n")
	fmt.Fprintf(stdout, "//   client.setTrustAnchors(new BearSSL::X509List(INLET_CERT));         // checks dates: set the clock first\n")
	fmt.Fprintf(stdout, "//   client.setBufferSizes(2048, 512);                                  // inlet's records are small\n")
	fmt.Fprintf(stdout, "// ESP32: client.setCACert(INLET_CERT);\n\n")
	fmt.Fprintf(stdout, "// SHA-1 fingerprint of the certificate\n")
	fmt.Fprintf(stdout, "const char INLET_FINGERPRINT[] PROGMEM = %q;\n\n", tlsserve.Fingerprint(ss.Cert.Raw))
	fmt.Fprintf(stdout, "// public key\n")
	fmt.Fprintf(stdout, "const char INLET_PUBLIC_KEY[] PROGMEM = R\"KEY(\n%s)KEY\";\n\n", tlsserve.PublicKeyPEM(ss.Cert))
	fmt.Fprintf(stdout, "// certificate\n")
	fmt.Fprintf(stdout, "const char INLET_CERT[] PROGMEM = R\"CERT(\n%s)CERT\";\n", ss.CertPEM)
	return nil
}

// writeFileAtomic writes data to a temporary file beside name and renames it
// into place, so an interrupted run never leaves half a key.
func writeFileAtomic(name string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), name)
}
