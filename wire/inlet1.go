package wire

import (
	"bytes"
	"errors"
	"net/netip"
	"strconv"
)

// Acknowledged mode, INLET/1 (docs/protocol.md): what a device sends, parsed
// (for the server) and built (for devices). answer.go holds the other direction.

// HelloPrefix starts the first line of an acknowledged TCP connection and every
// acknowledged UDP datagram.
const HelloPrefix = "INLET/1 "

// IsHello reports whether line starts an acknowledged-mode exchange.
func IsHello(line []byte) bool { return bytes.HasPrefix(line, []byte(HelloPrefix)) }

// Hello is a parsed INLET/1 greeting: a TCP hello line, or a UDP datagram header
// (which also carries Seq).
type Hello struct {
	Device string
	Boot   string
	Token  string
	Seq    int64 // UDP header only
}

// Errors of the acknowledged mode; their text is the reason on the wire.
var (
	ErrBadHello = errors.New("bad-hello")
	ErrBadSeq   = errors.New("bad-seq")
)

// Limits of the names in a hello (docs/protocol.md).
const (
	MaxDeviceLen = 64
	MaxBootLen   = 32
	MaxTokenLen  = 256
)

// ParseHello parses "INLET/1 id=<device> boot=<boot>[ token=<token>]". The
// key=value pairs may come in any order; each is required once, except token.
func ParseHello(line []byte) (Hello, error) {
	return parseHello(line, false)
}

// ParseDatagram parses an acknowledged UDP datagram,
// "INLET/1 id=<device> boot=<boot> seq=<seq>[ token=<token>]\n<payload>". A
// trailing "\n" (or "\r\n") after the payload is removed; the payload is
// otherwise returned as sent and may hold further newlines.
func ParseDatagram(p []byte) (Hello, []byte, error) {
	head, payload, _ := bytes.Cut(p, []byte{'\n'})
	if n := len(head); n > 0 && head[n-1] == '\r' {
		head = head[:n-1]
	}
	h, err := parseHello(head, true)
	if err != nil {
		return h, nil, err
	}
	if n := len(payload); n > 0 && payload[n-1] == '\n' {
		payload = payload[:n-1]
		if n := len(payload); n > 0 && payload[n-1] == '\r' {
			payload = payload[:n-1]
		}
	}
	return h, payload, nil
}

func parseHello(line []byte, withSeq bool) (Hello, error) {
	var h Hello
	rest, ok := bytes.CutPrefix(line, []byte(HelloPrefix))
	if !ok {
		return h, ErrBadHello
	}
	var haveID, haveBoot, haveSeq, haveToken bool
	for more := true; more; {
		var field []byte
		field, rest, more = bytes.Cut(rest, []byte{' '})
		if len(field) == 0 {
			return h, ErrBadHello // two spaces in a row, a trailing space, or no field
		}
		key, val, ok := bytes.Cut(field, []byte{'='})
		if !ok {
			return h, ErrBadHello
		}
		switch string(key) {
		case "id":
			if haveID || !validName(val, MaxDeviceLen, true) {
				return h, ErrBadHello
			}
			h.Device, haveID = string(val), true
			if !ValidDevice(h.Device) { // an IP address: a plain device's name
				return Hello{}, ErrBadHello
			}
		case "boot":
			if haveBoot || !validName(val, MaxBootLen, false) {
				return h, ErrBadHello
			}
			h.Boot, haveBoot = string(val), true
		case "token":
			if haveToken || len(val) == 0 || len(val) > MaxTokenLen || !printable(val) {
				return h, ErrBadHello
			}
			h.Token, haveToken = string(val), true
		case "seq":
			if !withSeq || haveSeq {
				return h, ErrBadHello
			}
			seq, err := ParseSeq(val)
			if err != nil {
				return h, ErrBadHello
			}
			h.Seq, haveSeq = seq, true
		default:
			return h, ErrBadHello
		}
	}
	if !haveID || !haveBoot || withSeq && !haveSeq {
		return h, ErrBadHello
	}
	return h, nil
}

// validName checks a device id (A-Z a-z 0-9 . _ : -) or a boot id (A-Z a-z 0-9).
func validName[T string | []byte](b T, max int, punct bool) bool {
	if len(b) == 0 || len(b) > max {
		return false
	}
	for i := range len(b) {
		switch c := b[i]; {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case punct && (c == '.' || c == '_' || c == ':' || c == '-'):
		default:
			return false
		}
	}
	return true
}

func printable[T string | []byte](b T) bool {
	for i := range len(b) {
		if c := b[i]; c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}

// ParseSeq parses a sequence number: decimal digits only, 1 to 2^63−1.
func ParseSeq(b []byte) (int64, error) {
	n, ok := parseDecimal(b)
	if !ok || n < 1 {
		return 0, ErrBadSeq
	}
	return n, nil
}

// ParseMessage parses an acknowledged message line "<seq> <payload>". The
// payload may be empty but the space may not be missing.
func ParseMessage(line []byte) (int64, []byte, error) {
	s, payload, ok := bytes.Cut(line, []byte{' '})
	if !ok {
		return 0, nil, ErrBadSeq
	}
	seq, err := ParseSeq(s)
	if err != nil {
		return 0, nil, err
	}
	return seq, payload, nil
}

// SeqPrefix extracts the sequence number from the start of a line that was too
// long to keep, so that its rejection can name it; ok is false when there is none.
func SeqPrefix(head []byte) (int64, bool) {
	s, _, found := bytes.Cut(head, []byte{' '})
	if !found {
		return 0, false
	}
	seq, err := ParseSeq(s)
	return seq, err == nil
}

// AppendHello appends h as the first line of an acknowledged TCP connection:
// "INLET/1 id=<device> boot=<boot>[ token=<token>]\n". h.Seq is not written;
// ParseHello reads the line back as h when the names are valid (ValidDevice,
// ValidBoot, ValidToken).
func AppendHello(dst []byte, h Hello) []byte {
	dst = appendHead(dst, h, false)
	return append(dst, '\n')
}

// AppendDatagram appends an acknowledged UDP datagram for message h.Seq:
// "INLET/1 id=<device> boot=<boot> seq=<seq>[ token=<token>]\n<payload>".
// The payload is written as it is: one that ends in "\n" would lose it on the
// way (ParseDatagram removes one).
func AppendDatagram(dst []byte, h Hello, payload []byte) []byte {
	dst = appendHead(dst, h, true)
	dst = append(dst, '\n')
	return append(dst, payload...)
}

func appendHead(dst []byte, h Hello, withSeq bool) []byte {
	dst = append(dst, HelloPrefix+"id="...)
	dst = append(dst, h.Device...)
	dst = append(dst, " boot="...)
	dst = append(dst, h.Boot...)
	if withSeq {
		dst = append(dst, " seq="...)
		dst = strconv.AppendInt(dst, h.Seq, 10)
	}
	if h.Token != "" {
		dst = append(dst, " token="...)
		dst = append(dst, h.Token...)
	}
	return dst
}

// AppendMessage appends an acknowledged message line "<seq> <payload>\n". A
// payload holding "\n", or ending in "\r", would not come back as it was.
func AppendMessage(dst []byte, seq int64, payload []byte) []byte {
	dst = strconv.AppendInt(dst, seq, 10)
	dst = append(dst, ' ')
	dst = append(dst, payload...)
	return append(dst, '\n')
}

// ValidDevice reports whether id is a device a hello may name: 1–64 of
// A-Z a-z 0-9 . _ : -, and not an IP address. Plain devices are named by their IP
// address, so an acknowledged device named 192.168.1.23 could write into that
// plain device's history; the two namespaces are kept apart (docs/protocol.md).
func ValidDevice(id string) bool {
	if !validName(id, MaxDeviceLen, true) {
		return false
	}
	_, err := netip.ParseAddr(id)
	return err != nil
}

// ValidBoot reports whether b is a boot a hello may name: 1–32 of A-Z a-z 0-9.
func ValidBoot(b string) bool { return validName(b, MaxBootLen, false) }

// ValidToken reports whether t can be sent as token=<t>: 1–256 bytes of
// printable ASCII without spaces (the hello is split on spaces).
func ValidToken(t string) bool { return len(t) > 0 && len(t) <= MaxTokenLen && printable(t) }
