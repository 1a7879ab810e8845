package wire_test

import (
	"bytes"
	"errors"
	"math"
	"strconv"
	"testing"

	"github.com/inletdev/inlet/wire"
)

func TestParseAnswer(t *testing.T) {
	for _, tc := range []struct {
		line   string
		kind   wire.AnswerKind // 0: rejected
		n      int64
		reason string
	}{
		{"INLET/1 OK last=0\n", wire.AnswerOK, 0, ""},
		{"INLET/1 OK last=9223372036854775807\n", wire.AnswerOK, 1<<63 - 1, ""},
		{"INLET/1 OK last=12 node=a\r\n", wire.AnswerOK, 12, ""}, // fields a newer server may add
		{"INLET/1 OK last=12 node=a zone=b", wire.AnswerOK, 12, ""},
		{"INLET/1 ERR unauthorized\n", wire.AnswerHelloErr, 0, "unauthorized"},
		{"INLET/1 ERR bad-hello\r\n", wire.AnswerHelloErr, 0, "bad-hello"},
		{"ACK 17\n", wire.AnswerAck, 17, ""},
		{"ACK 0042", wire.AnswerAck, 42, ""},
		{"ERR 3 too-long\n", wire.AnswerErr, 3, "too-long"},
		{"ERR 3 bad-seq\n", wire.AnswerErr, 3, "bad-seq"},
		// The server's answer to a line without a seq (docs/protocol.md).
		{"ERR 0 bad-seq\n", wire.AnswerErr, 0, "bad-seq"},
		{"ACK 0\n", 0, 0, ""},
		{"ACK +5\n", 0, 0, ""},
		{"ACK -5\n", 0, 0, ""},
		{"ACK 1_0\n", 0, 0, ""},
		{"ACK 9223372036854775808\n", 0, 0, ""},
		{"ACK  5\n", 0, 0, ""},
		{"ACK 5 \n", 0, 0, ""},
		{"ERR 3\n", 0, 0, ""},
		{"ERR 3 \n", 0, 0, ""},
		{"ERR +3 bad-seq\n", 0, 0, ""},
		{"ERR 3 bad\x00seq\n", 0, 0, ""},
		{"INLET/1 OK\n", 0, 0, ""},
		{"INLET/1 OK last=\n", 0, 0, ""},
		{"INLET/1 OK last=-1\n", 0, 0, ""},
		{"INLET/1 OK last=1 junk\n", 0, 0, ""},
		{"INLET/1 OK last=1 \n", 0, 0, ""},
		{"INLET/1 OK last=1  a=b\n", 0, 0, ""},
		{"INLET/1 OK node=a last=1\n", 0, 0, ""},
		{"INLET/1 ERR \n", 0, 0, ""},
		{"INLET/2 OK last=1\n", 0, 0, ""},
		{"ack 1\n", 0, 0, ""},
		{"\n", 0, 0, ""},
		{"", 0, 0, ""},
	} {
		a, err := wire.ParseAnswer([]byte(tc.line))
		if tc.kind == 0 {
			if err == nil || !errors.Is(err, wire.ErrBadAnswer) {
				t.Errorf("%q: %+v, %v; want ErrBadAnswer", tc.line, a, err)
			}
			continue
		}
		want := wire.Answer{Kind: tc.kind, N: tc.n, Reason: tc.reason}
		if err != nil || a != want {
			t.Errorf("%q: %+v, %v; want %+v", tc.line, a, err, want)
		}
	}
}

// TestAnswerBuilders: every answer the server can build reads back as itself.
func TestAnswerBuilders(t *testing.T) {
	for _, a := range []wire.Answer{
		{Kind: wire.AnswerOK, N: 0},
		{Kind: wire.AnswerOK, N: math.MaxInt64},
		{Kind: wire.AnswerHelloErr, Reason: "bad-hello"},
		{Kind: wire.AnswerHelloErr, Reason: "unauthorized"},
		{Kind: wire.AnswerHelloErr, Reason: "busy"},
		{Kind: wire.AnswerAck, N: 1},
		{Kind: wire.AnswerAck, N: math.MaxInt64},
		{Kind: wire.AnswerErr, N: 0, Reason: "bad-seq"},
		{Kind: wire.AnswerErr, N: 7, Reason: "too-long"},
	} {
		line := wire.AppendAnswer(nil, a)
		if got, err := wire.ParseAnswer(line); err != nil || got != a {
			t.Errorf("%+v → %q → %+v, %v", a, line, got, err)
		}
	}
	if got := wire.AppendAnswer([]byte("x"), wire.Answer{}); string(got) != "x" {
		t.Errorf("unknown kind appended %q", got)
	}
}

// FuzzAnswer: ParseAnswer never panics; what it accepts it builds back in
// canonical form (parse → build), which parses to the same answer and builds the
// same bytes again (build → parse is the identity).
func FuzzAnswer(f *testing.F) {
	f.Fuzz(func(t *testing.T, line []byte) {
		orig := bytes.Clone(line)
		a, err := wire.ParseAnswer(line)
		if !bytes.Equal(line, orig) {
			t.Fatalf("ParseAnswer modified its input")
		}
		if err != nil {
			if !errors.Is(err, wire.ErrBadAnswer) {
				t.Fatalf("%q: error %v is not ErrBadAnswer", line, err)
			}
			return
		}
		if a.N < 0 || a.Kind == wire.AnswerAck && a.N == 0 {
			t.Fatalf("%q: accepted %+v", line, a)
		}
		if (a.Kind == wire.AnswerHelloErr || a.Kind == wire.AnswerErr) != (a.Reason != "") {
			t.Fatalf("%q: reason %q with kind %s", line, a.Reason, a.Kind)
		}
		canon := wire.AppendAnswer(nil, a)
		if len(canon) == 0 || canon[len(canon)-1] != '\n' || bytes.IndexByte(canon[:len(canon)-1], '\n') >= 0 {
			t.Fatalf("%q → %+v → %q: not one line", line, a, canon)
		}
		b, err := wire.ParseAnswer(canon)
		if err != nil || b != a {
			t.Fatalf("%q → %+v → %q → %+v, %v", line, a, canon, b, err)
		}
		if again := wire.AppendAnswer(nil, b); !bytes.Equal(again, canon) {
			t.Fatalf("%q: canonical %q built again as %q", line, canon, again)
		}
	})
}

// FuzzDeviceRoundTrip: what a device builds (hello, message line, datagram) the
// server parses back to the same values whenever they are valid, and refuses
// otherwise; and every line ParseHello accepts is rebuilt byte for byte when its
// fields are in canonical order.
func FuzzDeviceRoundTrip(f *testing.F) {
	f.Fuzz(func(t *testing.T, device, boot, token string, seq int64, payload []byte) {
		h := wire.Hello{Device: device, Boot: boot, Token: token}
		valid := wire.ValidDevice(device) && wire.ValidBoot(boot) && (token == "" || wire.ValidToken(token))
		if valid != (validDevice(device) && validBoot(boot) && (token == "" || validToken(token))) {
			t.Fatalf("Valid* disagree with the model for %q %q %q", device, boot, token)
		}

		line := wire.AppendHello(nil, h)
		if line[len(line)-1] != '\n' {
			t.Fatalf("hello %q without its newline", line)
		}
		got, err := wire.ParseHello(line[:len(line)-1])
		if valid && (err != nil || got != h) {
			t.Fatalf("hello %q → %+v, %v; want %+v", line, got, err, h)
		}
		if !valid && err == nil && got == h {
			t.Fatalf("hello %q with invalid names read back as %+v", line, got)
		}
		if valid {
			if m, _ := modelHello(string(line[:len(line)-1]), false); m != h {
				t.Fatalf("hello %q: model reads %+v", line, m)
			}
		}

		msg := wire.AppendMessage(nil, seq, payload)
		s, p, err := wire.ParseMessage(bytes.TrimSuffix(msg, []byte("\n")))
		lineable := bytes.IndexByte(payload, '\n') < 0
		switch {
		case seq >= 1 && lineable && (err != nil || s != seq || !bytes.Equal(p, payload)):
			t.Fatalf("message %q → %d %q %v", msg, s, p, err)
		case seq < 1 && err == nil:
			t.Fatalf("message %q with seq %d accepted", msg, seq)
		}

		h.Seq = seq
		dg := wire.AppendDatagram(nil, h, payload)
		gotD, pd, err := wire.ParseDatagram(dg)
		clean := !bytes.HasSuffix(payload, []byte("\n"))
		switch {
		case valid && seq >= 1 && clean && (err != nil || gotD != h || !bytes.Equal(pd, payload)):
			t.Fatalf("datagram %q → %+v %q %v; want %+v %q", dg, gotD, pd, err, h, payload)
		case (!valid || seq < 1) && err == nil && gotD == h:
			t.Fatalf("datagram %q with invalid fields read back as %+v", dg, gotD)
		}
		if seq >= 1 {
			if n, err := wire.ParseSeq([]byte(strconv.FormatInt(seq, 10))); err != nil || n != seq {
				t.Fatalf("ParseSeq(%d) = %d, %v", seq, n, err)
			}
		}
	})
}

// BenchmarkBuild: the device side's builders append without allocating.
func BenchmarkBuild(b *testing.B) {
	h := wire.Hello{Device: "greenhouse-3", Boot: "7f3a", Token: "secret", Seq: 123456}
	payload := []byte("temp=21.5")
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf = wire.AppendHello(buf[:0], h)
		buf = wire.AppendMessage(buf[:0], h.Seq, payload)
		buf = wire.AppendDatagram(buf[:0], h, payload)
	}
}

// BenchmarkParseAnswer: a device reading its ACKs.
func BenchmarkParseAnswer(b *testing.B) {
	line := []byte("ACK 123456\n")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := wire.ParseAnswer(line); err != nil {
			b.Fatal(err)
		}
	}
}
