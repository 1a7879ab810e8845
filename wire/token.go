package wire

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
)

// Tokens of acknowledged mode (docs/protocol.md §2, docs/security.md "Tokens"):
// what a hello's token= is hashed to, and how a fresh one is made. The store
// keeps only the digest; the server hashes what a hello presents and compares
// digests, never tokens.

// TokenDigest is the digest of a token (TokenHash).
type TokenDigest [sha256.Size]byte

// NewTokenBytes is how many random bytes a token made by NewToken carries.
const NewTokenBytes = 32

// TokenHash returns the digest of a token: SHA-256 over a fixed-size block, the
// token's length in two bytes then the token padded with zeros to MaxTokenLen.
// Hashing takes the same time whatever the length of a token a hello may carry,
// so the time of a check says nothing about the length of the right one. (A
// token longer than MaxTokenLen, which no hello can carry, is hashed as it is,
// apart from the others.)
func TokenHash(token string) TokenDigest {
	if len(token) > MaxTokenLen {
		return sha256.Sum256(append([]byte{0xff, 0xff}, token...))
	}
	var b [2 + MaxTokenLen]byte
	binary.BigEndian.PutUint16(b[:2], uint16(len(token)))
	copy(b[2:], token)
	return sha256.Sum256(b[:])
}

// NewToken returns a fresh random token: NewTokenBytes from the system's
// random source in unpadded URL-safe base64 (43 characters of A-Z a-z 0-9 - _),
// which a hello carries as it is (ValidToken) and a sketch pastes into a string.
func NewToken() string {
	var b [NewTokenBytes]byte
	rand.Read(b[:]) // never fails (crypto/rand, Go 1.24)
	return base64.RawURLEncoding.EncodeToString(b[:])
}
