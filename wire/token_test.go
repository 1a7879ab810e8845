package wire_test

import (
	"crypto/sha256"
	"strings"
	"testing"

	"github.com/inletdev/inlet/wire"
)

func TestNewToken(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		tok := wire.NewToken()
		if len(tok) != 43 || !wire.ValidToken(tok) || strings.ContainsAny(tok, "=+/") {
			t.Fatalf("NewToken() = %q: want 43 characters of A-Z a-z 0-9 - _", tok)
		}
		if seen[tok] {
			t.Fatalf("NewToken() repeated %q", tok)
		}
		seen[tok] = true
		h, err := wire.ParseHello([]byte("INLET/1 id=d boot=b token=" + tok))
		if err != nil || h.Token != tok {
			t.Fatalf("hello with token %q: %+v, %v", tok, h, err)
		}
	}
}

func TestTokenHash(t *testing.T) {
	// The digest is SHA-256 of the fixed-size block, not of the bare token.
	tok := "s3cret"
	var block [2 + wire.MaxTokenLen]byte
	block[1] = byte(len(tok))
	copy(block[2:], tok)
	if got, want := wire.TokenHash(tok), wire.TokenDigest(sha256.Sum256(block[:])); got != want {
		t.Fatalf("TokenHash(%q) = %x, want %x", tok, got, want)
	}
	// Distinct tokens, including ones that differ only in length or padding,
	// have distinct digests.
	toks := []string{"", "a", "aa", "a\x00", "\x00", strings.Repeat("x", wire.MaxTokenLen),
		strings.Repeat("x", wire.MaxTokenLen+1), strings.Repeat("x", wire.MaxTokenLen-1), "\xff\xff"}
	seen := map[wire.TokenDigest]string{}
	for _, tok := range toks {
		d := wire.TokenHash(tok)
		if prev, dup := seen[d]; dup {
			t.Fatalf("TokenHash(%q) = TokenHash(%q)", tok, prev)
		}
		seen[d] = tok
		if wire.TokenHash(tok) != d {
			t.Fatalf("TokenHash(%q) not deterministic", tok)
		}
	}
}

// FuzzHelloToken: a hello built with any token parses back to that token when
// the token is valid, and is refused otherwise; and the digest of the token a
// hello carries equals the digest of the token it was built with exactly when
// the two tokens are equal. Corpus: testdata/fuzz/FuzzHelloToken.
func FuzzHelloToken(f *testing.F) {
	f.Add("dev-1", wire.NewToken(), "")
	f.Add("dev-1", "short", "shorter")
	f.Fuzz(func(t *testing.T, device, token, other string) {
		if !wire.ValidDevice(device) {
			device = "dev-1"
		}
		line := "INLET/1 id=" + device + " boot=b1 token=" + token
		h, err := wire.ParseHello([]byte(line))
		if mh, mok := modelHello(line, false); (err == nil) != mok || mok && h != mh {
			t.Fatalf("ParseHello(%q) = %+v, %v; model %+v, %v", line, h, err, mh, mok)
		}
		if wire.ValidToken(token) != (err == nil) {
			t.Fatalf("token %q: ValidToken %v, ParseHello error %v", token, wire.ValidToken(token), err)
		}
		if err != nil {
			return
		}
		if h.Token != token || h.Device != device {
			t.Fatalf("ParseHello(%q) = %+v", line, h)
		}
		if (wire.TokenHash(h.Token) == wire.TokenHash(other)) != (token == other) {
			t.Fatalf("TokenHash(%q) == TokenHash(%q) is %v", token, other, token != other)
		}
	})
}
