package inlet

import "errors"

// Token is one device's credential of acknowledged mode as a store keeps it
// (docs/security.md, "Tokens"): a digest of the token, never the token. Both
// stores, SQLite's and PostgreSQL's, return it.
type Token struct {
	Device    string
	Hash      []byte // the token's digest (wire.TokenHash), 32 bytes
	CreatedAt int64  // unix nanoseconds
	RevokedAt int64  // unix nanoseconds; 0 while the token is valid
}

var (
	// ErrTokenExists: AddToken without replace for a device with a valid token.
	ErrTokenExists = errors.New("the device already has a token")
	// ErrNoToken: RevokeToken for a device without a valid token.
	ErrNoToken = errors.New("the device has no valid token")
)
