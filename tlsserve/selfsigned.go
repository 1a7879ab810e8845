package tlsserve

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"strings"
	"time"
)

// SelfSignedValidity is how long a certificate made by SelfSigned is valid.
// Devices pinning it (setFingerprint, setKnownKey) do not check dates; a long
// life spares a LAN without a CA yearly re-flashing.
const SelfSignedValidity = 10 * 365 * 24 * time.Hour

// SelfSigned is a self-signed certificate and its key, PEM encoded.
type SelfSigned struct {
	CertPEM, KeyPEM []byte
	Cert            *x509.Certificate
}

// NewSelfSigned makes a self-signed server certificate for hosts (DNS names
// and IP addresses; the first also becomes the subject's common name). rsaBits
// 0 makes an ECDSA P-256 key, the cheapest for an ESP8266 to verify and the
// smallest on the wire; otherwise an RSA key of that size.
func NewSelfSigned(hosts []string, rsaBits int, now time.Time) (SelfSigned, error) {
	if len(hosts) == 0 {
		return SelfSigned{}, errors.New("tlsserve: self-signed certificate: no host name or address")
	}
	var key crypto.Signer
	var err error
	if rsaBits == 0 {
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	} else {
		key, err = rsa.GenerateKey(rand.Reader, rsaBits)
	}
	if err != nil {
		return SelfSigned{}, fmt.Errorf("tlsserve: generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return SelfSigned{}, fmt.Errorf("tlsserve: serial number: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: hosts[0], Organization: []string{"inlet"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(SelfSignedValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		// CA so that a device can take it as its trust anchor
		// (setTrustAnchors, setCACert): it signs itself.
		IsCA: true,
	}
	if _, ok := key.(*rsa.PrivateKey); ok {
		tmpl.KeyUsage |= x509.KeyUsageKeyEncipherment
	}
	for _, h := range hosts {
		h = strings.TrimSpace(h)
		switch {
		case h == "":
			return SelfSigned{}, errors.New("tlsserve: self-signed certificate: empty host name")
		case net.ParseIP(h) != nil:
			tmpl.IPAddresses = append(tmpl.IPAddresses, net.ParseIP(h))
		default:
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return SelfSigned{}, fmt.Errorf("tlsserve: create certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return SelfSigned{}, fmt.Errorf("tlsserve: parse certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return SelfSigned{}, fmt.Errorf("tlsserve: encode key: %w", err)
	}
	return SelfSigned{
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
		Cert:    cert,
	}, nil
}

// PublicKeyPEM returns the certificate's public key as a PEM "PUBLIC KEY"
// block, the form BearSSL's PublicKey (setKnownKey) parses.
func PublicKeyPEM(cert *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: cert.RawSubjectPublicKeyInfo})
}
