package fakeinlet_test

import (
	"bufio"
	"net"
	"testing"
	"time"

	"github.com/inletdev/inlet/internal/fakeinlet"
	"github.com/inletdev/inlet/wire"
)

// TestGrammarAsTheServer: the fake reads INLET/1 with wire's grammar, so it
// refuses what the server refuses (a signed seq, a bad name) and answers in the
// server's words.
func TestGrammarAsTheServer(t *testing.T) {
	s, err := fakeinlet.Start(fakeinlet.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	exchange := func(lines ...string) []wire.Answer {
		t.Helper()
		c, err := net.Dial("tcp", s.TCPAddr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		br := bufio.NewReader(c)
		var out []wire.Answer
		for _, l := range lines {
			if _, err := c.Write([]byte(l)); err != nil {
				t.Fatal(err)
			}
			line, err := br.ReadSlice('\n')
			if err != nil {
				t.Fatalf("after %q: %v", l, err)
			}
			a, err := wire.ParseAnswer(line)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, a)
		}
		return out
	}
	got := exchange("INLET/1 id=d1 boot=b1\n", "+5 x\n", "5 x\n", "4 y\n")
	want := []wire.Answer{
		{Kind: wire.AnswerOK, N: 0},
		{Kind: wire.AnswerErr, N: 0, Reason: "bad-seq"},
		{Kind: wire.AnswerAck, N: 5},
		{Kind: wire.AnswerErr, N: 4, Reason: "bad-seq"}, // the fake wants seqs to rise on a connection
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("answer %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	for _, hello := range []string{"INLET/1 id=d1 boot=b-1\n", "INLET/1 id=d1\n", "INLET/1 id=d1 boot=b1 seq=3\n"} {
		if a := exchange(hello); a[0] != (wire.Answer{Kind: wire.AnswerHelloErr, Reason: "bad-hello"}) {
			t.Errorf("%q answered %+v", hello, a[0])
		}
	}

	// UDP: a datagram with a signed seq is not stored, a good one is, once.
	u, err := net.Dial("udp", s.UDPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	u.Write([]byte("INLET/1 id=d2 boot=b1 seq=+7\nbad"))
	u.Write(wire.AppendDatagram(nil, wire.Hello{Device: "d2", Boot: "b1", Seq: 7}, []byte("good")))
	u.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, wire.MaxAnswer)
	n, err := u.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	if a, err := wire.ParseAnswer(buf[:n]); err != nil || a != (wire.Answer{Kind: wire.AnswerAck, N: 7}) {
		t.Fatalf("datagram answered %q (%v)", buf[:n], err)
	}
	var udp []fakeinlet.Msg
	for _, m := range s.Received() {
		if m.Network == "udp" {
			udp = append(udp, m)
		}
	}
	if len(udp) != 1 || udp[0].Seq != 7 || string(udp[0].Payload) != "good" {
		t.Errorf("received over UDP: %+v", udp)
	}
}
