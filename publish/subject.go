package publish

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"

	"github.com/inletdev/inlet"
)

// SubjectPrefix starts the subject of every message published: the message of
// device d goes to SubjectPrefix + Token(d), so a consumer takes one device
// with "inlet.msg.<token>" and all of them with "inlet.msg.>".
const SubjectPrefix = "inlet.msg."

// MaxToken is the longest token Token returns. A device whose escaped name
// would be longer (no device the protocol admits: those have at most 64
// characters, and an escape triples a byte at most) gets a hashed token.
const MaxToken = 200

// tokenSafe reports whether b stands for itself in a token. Everything else is
// escaped: '.', '*' and '>' (NATS's token separator and wildcards), '~' (the
// escape itself), whitespace, control bytes, bytes of multi-byte UTF-8, and the
// printable punctuation that NATS tooling or other brokers treat specially.
func tokenSafe(b byte) bool {
	return 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || b == '-' || b == '_' || b == ':'
}

const upperHex = "0123456789ABCDEF"

// Token returns device's subject token, one NATS subject token that names
// nothing but device:
//   - the bytes A–Z, a–z, 0–9, '-', '_' and ':' stand for themselves;
//   - every other byte b is written "~XX", XX its two upper-case hex digits
//     ("192.168.1.5" → "192~2E168~2E1~2E5", "fe80::1%eth0" → "fe80::1~25eth0");
//   - the empty name is "~";
//   - a name whose escaped form would be longer than MaxToken is "~H" and 32
//     lower-case hex digits: the first 16 bytes of the SHA-256 of the name.
//
// The escaped form is reversible (DeviceOf): '~' never stands for itself, so
// every name has exactly one escaped token and no two names share one. A
// hashed token cannot be mistaken for an escaped one ('H' is not an upper-case
// hex digit after '~') and is as unique as SHA-256's first 128 bits.
func Token(device string) string {
	if device == "" {
		return "~"
	}
	n := 0
	for i := 0; i < len(device); i++ {
		if tokenSafe(device[i]) {
			n++
		} else {
			n += 3
		}
	}
	if n > MaxToken {
		sum := sha256.Sum256([]byte(device))
		return "~H" + hex.EncodeToString(sum[:16])
	}
	if n == len(device) {
		return device
	}
	var b strings.Builder
	b.Grow(n)
	for i := 0; i < len(device); i++ {
		c := device[i]
		if tokenSafe(c) {
			b.WriteByte(c)
		} else {
			b.WriteByte('~')
			b.WriteByte(upperHex[c>>4])
			b.WriteByte(upperHex[c&15])
		}
	}
	return b.String()
}

// DeviceOf reverses Token: it returns the device whose token is tok, and false
// for a hashed token or for text that Token never returns.
func DeviceOf(tok string) (string, bool) {
	if tok == "~" {
		return "", true
	}
	if tok == "" || len(tok) > MaxToken {
		return "", false
	}
	var b strings.Builder
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		switch {
		case tokenSafe(c):
			b.WriteByte(c)
		case c == '~' && i+2 < len(tok):
			hi, lo := strings.IndexByte(upperHex, tok[i+1]), strings.IndexByte(upperHex, tok[i+2])
			if hi < 0 || lo < 0 {
				return "", false
			}
			b.WriteByte(byte(hi<<4 | lo))
			i += 2
		default:
			return "", false
		}
	}
	d := b.String()
	if Token(d) != tok { // "~41" for "A": not the one token of its name
		return "", false
	}
	return d, true
}

// Subject returns the subject device's messages are published to.
func Subject(device string) string { return SubjectPrefix + Token(device) }

// MsgID returns the Nats-Msg-Id a stored message is published with, on which
// JetStream drops a second copy within the stream's duplicate window:
//   - an acknowledged message (a seq): "a/<device>/<boot>/<seq>", the device
//     and boot as tokens (Token). It names the message itself, not a row: the
//     same reading stored by two nodes with stores of their own, or copied to
//     another store (inlet migrate), has the same id.
//   - a plain message: "p/<device>/<id>/<received_at>", the store's row id and
//     the receive time in unix nanoseconds. A plain message is a row and
//     nothing else names it; the receive time keeps ids apart where row ids
//     repeat: two nodes with stores of their own, or a store restored from a
//     backup that hands out again the ids it had lost.
//
// The fields are tokens or decimal numbers, none containing '/', so an id is
// made by one message only, and it is safe in a header.
func MsgID(m *inlet.Stored) string { return msgID(m, Token(m.Device)) }

// msgID is MsgID given the device's token, built with one allocation.
func msgID(m *inlet.Stored, device string) string {
	var buf [128]byte
	b := buf[:0]
	if m.Seq != 0 {
		b = append(b, "a/"...)
		b = append(b, device...)
		b = append(b, '/')
		b = append(b, Token(m.Boot)...)
		b = append(b, '/')
		b = strconv.AppendInt(b, m.Seq, 10)
		return string(b)
	}
	b = append(b, "p/"...)
	b = append(b, device...)
	b = append(b, '/')
	b = strconv.AppendInt(b, m.ID, 10)
	b = append(b, '/')
	b = strconv.AppendInt(b, m.ReceivedAt, 10)
	return string(b)
}
