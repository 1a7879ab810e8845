package client

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
)

// maxServerLine bounds a line from the server: the longest legal one is an ERR
// with a short reason, so anything near this is not inlet.
const maxServerLine = 512

// lineKind is what a server line says.
type lineKind int

const (
	lineHelloOK  lineKind = iota + 1 // INLET/1 OK last=<n>
	lineHelloErr                     // INLET/1 ERR <reason>
	lineAck                          // ACK <seq>
	lineErr                          // ERR <seq> <reason>
)

func (k lineKind) String() string {
	switch k {
	case lineHelloOK:
		return "hello-ok"
	case lineHelloErr:
		return "hello-err"
	case lineAck:
		return "ack"
	case lineErr:
		return "err"
	}
	return "unknown"
}

// serverLine is one parsed line from the server. N is last= for lineHelloOK and
// the seq for lineAck and lineErr.
type serverLine struct {
	Kind   lineKind
	N      int64
	Reason string
}

// errProtocol marks a server line the client does not understand; the connection
// is dropped and retried.
var errProtocol = errors.New("protocol error")

// parseServerLine parses one line the server sent, with or without its "\n"
// (and one '\r' before it). The OK hello may carry further key=value fields
// after last=, which are ignored so that a newer server can add some.
func parseServerLine(line []byte) (serverLine, error) {
	line = bytes.TrimSuffix(line, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	bad := func(why string) (serverLine, error) {
		return serverLine{}, fmt.Errorf("%w: %s: %q", errProtocol, why, truncate(line, 64))
	}
	if rest, ok := bytes.CutPrefix(line, []byte("INLET/1 ")); ok {
		if fields, ok := bytes.CutPrefix(rest, []byte("OK ")); ok {
			first, more, _ := bytes.Cut(fields, []byte(" "))
			v, ok := bytes.CutPrefix(first, []byte("last="))
			if !ok {
				return bad("hello answer without last=")
			}
			n, ok := parseDecimal(v)
			if !ok {
				return bad("bad last=")
			}
			for f := range bytes.SplitSeq(more, []byte(" ")) {
				if len(more) > 0 && (len(f) == 0 || bytes.IndexByte(f, '=') <= 0) {
					return bad("bad field in hello answer")
				}
			}
			return serverLine{Kind: lineHelloOK, N: n}, nil
		}
		if reason, ok := bytes.CutPrefix(rest, []byte("ERR ")); ok && validReason(reason) {
			return serverLine{Kind: lineHelloErr, Reason: string(reason)}, nil
		}
		return bad("unknown hello answer")
	}
	if v, ok := bytes.CutPrefix(line, []byte("ACK ")); ok {
		n, ok := parseDecimal(v)
		if !ok || n == 0 {
			return bad("bad ACK seq")
		}
		return serverLine{Kind: lineAck, N: n}, nil
	}
	if rest, ok := bytes.CutPrefix(line, []byte("ERR ")); ok {
		v, reason, _ := bytes.Cut(rest, []byte(" "))
		n, ok := parseDecimal(v)
		if !ok || n == 0 {
			return bad("bad ERR seq")
		}
		if !validReason(reason) {
			return bad("bad ERR reason")
		}
		return serverLine{Kind: lineErr, N: n, Reason: string(reason)}, nil
	}
	return bad("unknown line")
}

// format is the canonical text of l, without "\n" (the inverse of parseServerLine).
func (l serverLine) format() string {
	switch l.Kind {
	case lineHelloOK:
		return "INLET/1 OK last=" + strconv.FormatInt(l.N, 10)
	case lineHelloErr:
		return "INLET/1 ERR " + l.Reason
	case lineAck:
		return "ACK " + strconv.FormatInt(l.N, 10)
	case lineErr:
		return "ERR " + strconv.FormatInt(l.N, 10) + " " + l.Reason
	}
	return ""
}

// parseDecimal parses 1 to 19 ASCII digits into a non-negative int64. Unlike
// strconv.ParseInt it accepts no sign and no underscores.
func parseDecimal(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := int64(c - '0')
		if n > (1<<63-1-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}

// validReason accepts a non-empty reason of printable ASCII.
func validReason(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c < ' ' || c > '~' {
			return false
		}
	}
	return true
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

// validDevice reports whether id is a legal device: 1–64 of A-Z a-z 0-9 . _ : -.
func validDevice(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !isAlnum(c) && c != '.' && c != '_' && c != ':' && c != '-' {
			return false
		}
	}
	return true
}

// validBoot reports whether b is a legal boot: 1–32 of A-Z a-z 0-9.
func validBoot(b string) bool {
	if len(b) == 0 || len(b) > 32 {
		return false
	}
	for i := 0; i < len(b); i++ {
		if !isAlnum(b[i]) {
			return false
		}
	}
	return true
}

// validToken accepts printable ASCII without spaces: the hello is split on spaces.
func validToken(t string) bool {
	if len(t) == 0 || len(t) > 256 {
		return false
	}
	for i := 0; i < len(t); i++ {
		if t[i] <= ' ' || t[i] > '~' {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z'
}

// appendHello appends the TCP hello line.
func appendHello(dst []byte, device, boot, token string) []byte {
	dst = append(dst, "INLET/1 id="...)
	dst = append(dst, device...)
	dst = append(dst, " boot="...)
	dst = append(dst, boot...)
	if token != "" {
		dst = append(dst, " token="...)
		dst = append(dst, token...)
	}
	return append(dst, '\n')
}

// appendDatagram appends an acknowledged UDP datagram.
func appendDatagram(dst []byte, device, boot, token string, seq int64, payload []byte) []byte {
	dst = append(dst, "INLET/1 id="...)
	dst = append(dst, device...)
	dst = append(dst, " boot="...)
	dst = append(dst, boot...)
	dst = append(dst, " seq="...)
	dst = strconv.AppendInt(dst, seq, 10)
	if token != "" {
		dst = append(dst, " token="...)
		dst = append(dst, token...)
	}
	dst = append(dst, '\n')
	return append(dst, payload...)
}

// appendMessage appends a TCP message line "<seq> <payload>\n".
func appendMessage(dst []byte, seq int64, payload []byte) []byte {
	dst = strconv.AppendInt(dst, seq, 10)
	dst = append(dst, ' ')
	dst = append(dst, payload...)
	return append(dst, '\n')
}
