package wire

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
)

// What the server answers in acknowledged mode (docs/protocol.md), built (for
// the server) and parsed (for devices):
//
//	INLET/1 OK last=<n>     the hello is accepted; n ≥ 0
//	INLET/1 ERR <reason>    the hello is refused, then the connection closes
//	ACK <seq>               cumulative over a TCP connection; one datagram over UDP
//	ERR <seq> <reason>      that message was not stored; seq 0 when the line had none

// AnswerKind says which of the four answers a line is.
type AnswerKind uint8

const (
	AnswerOK       AnswerKind = iota + 1 // INLET/1 OK last=<n>
	AnswerHelloErr                       // INLET/1 ERR <reason>
	AnswerAck                            // ACK <seq>
	AnswerErr                            // ERR <seq> <reason>
)

func (k AnswerKind) String() string {
	switch k {
	case AnswerOK:
		return "hello-ok"
	case AnswerHelloErr:
		return "hello-err"
	case AnswerAck:
		return "ack"
	case AnswerErr:
		return "err"
	}
	return "unknown"
}

// Answer is one line (or datagram) from the server. N is last= for AnswerOK and
// the seq for AnswerAck and AnswerErr; Reason is set for the two errors.
type Answer struct {
	Kind   AnswerKind
	N      int64
	Reason string
}

// MaxAnswer bounds a line from the server: the longest legal one is an ERR with
// a short reason, so a longer line is not inlet. A reader's buffer of this size
// holds any answer.
const MaxAnswer = 512

// ErrBadAnswer is a line from the server that is not INLET/1.
var ErrBadAnswer = errors.New("not an INLET/1 answer")

// ParseAnswer parses one line or datagram from the server, with or without its
// "\n" (and one '\r' before it). An OK may carry further key=value fields after
// last=, which are ignored so that a newer server can add some. An ERR's seq may
// be 0: the server names no seq for a line that did not start with one.
func ParseAnswer(line []byte) (Answer, error) {
	line = bytes.TrimSuffix(line, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	bad := func(why string) (Answer, error) {
		if len(line) > 64 {
			line = line[:64]
		}
		return Answer{}, fmt.Errorf("%w: %s: %q", ErrBadAnswer, why, line)
	}
	if rest, ok := bytes.CutPrefix(line, []byte(HelloPrefix)); ok {
		if fields, ok := bytes.CutPrefix(rest, []byte("OK ")); ok {
			first, more, extra := bytes.Cut(fields, []byte{' '})
			v, ok := bytes.CutPrefix(first, []byte("last="))
			if !ok {
				return bad("hello answer without last=")
			}
			n, ok := parseDecimal(v)
			if !ok {
				return bad("bad last=")
			}
			for extra {
				var f []byte
				f, more, extra = bytes.Cut(more, []byte{' '})
				if bytes.IndexByte(f, '=') <= 0 || !printable(f) {
					return bad("bad field in hello answer")
				}
			}
			return Answer{Kind: AnswerOK, N: n}, nil
		}
		if reason, ok := bytes.CutPrefix(rest, []byte("ERR ")); ok && validReason(reason) {
			return Answer{Kind: AnswerHelloErr, Reason: string(reason)}, nil
		}
		return bad("unknown hello answer")
	}
	if v, ok := bytes.CutPrefix(line, []byte("ACK ")); ok {
		n, ok := parseDecimal(v)
		if !ok || n == 0 {
			return bad("bad ACK seq")
		}
		return Answer{Kind: AnswerAck, N: n}, nil
	}
	if rest, ok := bytes.CutPrefix(line, []byte("ERR ")); ok {
		v, reason, _ := bytes.Cut(rest, []byte{' '})
		n, ok := parseDecimal(v)
		if !ok {
			return bad("bad ERR seq")
		}
		if !validReason(reason) {
			return bad("bad ERR reason")
		}
		return Answer{Kind: AnswerErr, N: n, Reason: string(reason)}, nil
	}
	return bad("unknown line")
}

// AppendAnswer appends a's canonical line, with its "\n"; nothing for an
// unknown kind.
func AppendAnswer(dst []byte, a Answer) []byte {
	switch a.Kind {
	case AnswerOK:
		return AppendOK(dst, a.N)
	case AnswerHelloErr:
		return AppendHelloErr(dst, a.Reason)
	case AnswerAck:
		return AppendAck(dst, a.N)
	case AnswerErr:
		return AppendErr(dst, a.N, a.Reason)
	}
	return dst
}

// AppendOK appends the answer to a good hello: "INLET/1 OK last=<n>\n".
func AppendOK(dst []byte, last int64) []byte {
	dst = append(dst, HelloPrefix+"OK last="...)
	dst = strconv.AppendInt(dst, last, 10)
	return append(dst, '\n')
}

// AppendHelloErr appends the answer to a refused hello: "INLET/1 ERR <reason>\n".
func AppendHelloErr(dst []byte, reason string) []byte {
	dst = append(dst, HelloPrefix+"ERR "...)
	dst = append(dst, reason...)
	return append(dst, '\n')
}

// AppendAck appends "ACK <seq>\n", a TCP line or a whole UDP datagram.
func AppendAck(dst []byte, seq int64) []byte {
	dst = append(dst, "ACK "...)
	dst = strconv.AppendInt(dst, seq, 10)
	return append(dst, '\n')
}

// AppendErr appends "ERR <seq> <reason>\n".
func AppendErr(dst []byte, seq int64, reason string) []byte {
	dst = append(dst, "ERR "...)
	dst = strconv.AppendInt(dst, seq, 10)
	dst = append(dst, ' ')
	dst = append(dst, reason...)
	return append(dst, '\n')
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

// validReason accepts a non-empty reason of printable ASCII (spaces included).
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
