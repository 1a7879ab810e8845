package client_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/inletdev/inlet/client"
	"github.com/inletdev/inlet/internal/fakeinlet"
	"github.com/inletdev/inlet/wire"
)

// testLogger sends the client's logs to the test log.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tlogWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tlogWriter struct{ t testing.TB }

func (w tlogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

func startFake(t testing.TB, opts fakeinlet.Options) *fakeinlet.Server {
	t.Helper()
	srv, err := fakeinlet.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv
}

// newSender starts a Sender with fast retries, closed when the test ends.
func newSender(t testing.TB, cfg client.Config) *client.Sender {
	t.Helper()
	if cfg.Device == "" {
		cfg.Device = "dev-1"
	}
	if cfg.MinBackoff == 0 {
		cfg.MinBackoff, cfg.MaxBackoff = time.Millisecond, 50*time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	s, err := client.New(cfg)
	if err != nil {
		t.Fatalf("new: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// deadAddr is a loopback address nothing listens on.
func deadAddr(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func mustSend(t testing.TB, s *client.Sender, payload string) int64 {
	t.Helper()
	seq, err := s.Send([]byte(payload))
	if err != nil {
		t.Fatalf("send %q: %v", payload, err)
	}
	return seq
}

func mustFlush(t testing.TB, s *client.Sender) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Flush(ctx); err != nil {
		t.Fatalf("flush: %v (stats %+v)", err, s.Stats())
	}
}

// waitUntil polls cond until it holds, failing the test after 20 s.
func waitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// checkStored fails unless the server stored exactly want (seq → payload) for
// device and boot, each once.
func checkStored(t testing.TB, srv *fakeinlet.Server, device, boot string, want map[int64]string) {
	t.Helper()
	got := map[int64]string{}
	for _, m := range srv.Stored() {
		if m.Device == device && m.Boot == boot {
			got[m.Seq] = string(m.Payload)
		}
	}
	if len(got) != len(want) {
		t.Errorf("device %s boot %s: stored %d messages, want %d", device, boot, len(got), len(want))
	}
	for seq, p := range want {
		if got[seq] != p {
			t.Errorf("device %s boot %s seq %d: stored %q, want %q", device, boot, seq, got[seq], p)
		}
	}
}

func seqPayloads(from, to int64, format string) map[int64]string {
	m := map[int64]string{}
	for i := from; i <= to; i++ {
		m[i] = fmt.Sprintf(format, i)
	}
	return m
}

// The client pipelines up to Window messages and removes them on cumulative
// ACKs. Everything is queued before the client connects (from the outbox), so
// it sends full windows in one write; the fake acknowledges only once it has
// read all it was sent and at least a window is outstanding.
func TestWindowAndCumulativeAcks(t *testing.T) {
	const window, total = 8, 100
	dir := t.TempDir()
	first := newSender(t, client.Config{Addr: deadAddr(t), Outbox: dir})
	for i := 1; i <= total; i++ {
		if seq := mustSend(t, first, fmt.Sprintf("m%d", i)); seq != int64(i) {
			t.Fatalf("send %d: seq %d", i, seq)
		}
	}
	boot := first.Boot()
	first.Close()

	srv := startFake(t, fakeinlet.Options{
		AckWhen: func(m fakeinlet.Msg, unacked int, more bool) bool {
			if m.Boot != boot {
				return !more // the second part: acknowledge as usual
			}
			return !more && unacked >= window || m.Seq == total
		},
	})
	s := newSender(t, client.Config{Addr: srv.TCPAddr(), Window: window, Outbox: dir})
	mustFlush(t, s)
	checkStored(t, srv, "dev-1", boot, seqPayloads(1, total, "m%d"))
	if got := srv.MaxUnacked(); got != window {
		t.Errorf("most messages outstanding: %d, want the window, %d", got, window)
	}
	st := s.Stats()
	if st.Acked != total || st.Sent != total || st.Retried != 0 || st.Pending != 0 || st.Errors != 0 || st.Loaded != total {
		t.Errorf("stats %+v", st)
	}
	if srv.Conns() != 1 || srv.Duplicates() != 0 {
		t.Errorf("%d connections, %d duplicates; want 1 and 0", srv.Conns(), srv.Duplicates())
	}

	// Messages sent while connected are pipelined too.
	for i := 1; i <= 20; i++ {
		mustSend(t, s, fmt.Sprintf("n%d", i))
	}
	mustFlush(t, s)
	checkStored(t, srv, "dev-1", s.Boot(), seqPayloads(1, 20, "n%d"))
	if st := s.Stats(); st.Retried != 0 || srv.Conns() != 2 {
		t.Errorf("stats %+v on %d connections: want no resends, one connection per boot", st, srv.Conns())
	}
}

// Messages reloaded from the outbox keep their boot; the hello's last= drops the
// ones the server already has, without resending them.
func TestHelloLastDropsStored(t *testing.T) {
	dir := t.TempDir()
	first := newSender(t, client.Config{Addr: deadAddr(t), Outbox: dir})
	for i := 1; i <= 8; i++ {
		mustSend(t, first, fmt.Sprintf("m%d", i))
	}
	boot := first.Boot()
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}

	srv := startFake(t, fakeinlet.Options{})
	srv.Preload("dev-1", boot, 1, 2, 3, 4, 5)
	s := newSender(t, client.Config{Addr: srv.TCPAddr(), Outbox: dir})
	if st := s.Stats(); st.Loaded != 8 {
		t.Fatalf("after reload: %+v, want 8 loaded", st)
	}
	mustFlush(t, s)
	var seqs []int64
	for _, m := range srv.Received() {
		seqs = append(seqs, m.Seq)
		if m.Boot != boot {
			t.Errorf("received boot %s, want the original %s", m.Boot, boot)
		}
	}
	if !slices.Equal(seqs, []int64{6, 7, 8}) {
		t.Errorf("received seqs %v, want [6 7 8]: the server had 1-5", seqs)
	}
	if st := s.Stats(); st.Acked != 8 || st.Sent != 3 || st.Pending != 0 {
		t.Errorf("stats %+v, want 8 acked (5 by last=), 3 sent", st)
	}
}

// ERR <seq> drops that message only; a refused hello is retried with back-off.
func TestServerErrors(t *testing.T) {
	srv := startFake(t, fakeinlet.Options{
		Hello: func(n int, _, _ string) string {
			if n <= 2 {
				return "busy"
			}
			return ""
		},
		OnMessage: func(m fakeinlet.Msg) (fakeinlet.Action, string) {
			if string(m.Payload) == "bad" {
				return fakeinlet.Reject, "too-long"
			}
			return fakeinlet.Store, ""
		},
	})
	s := newSender(t, client.Config{Addr: srv.TCPAddr()})
	mustSend(t, s, "a")
	mustSend(t, s, "bad")
	mustSend(t, s, "c")
	mustFlush(t, s)
	checkStored(t, srv, "dev-1", s.Boot(), map[int64]string{1: "a", 3: "c"})
	st := s.Stats()
	if st.Errors != 1 || st.Acked != 2 || st.Pending != 0 || st.Reconnects < 2 {
		t.Errorf("stats %+v: want 1 error, 2 acked, at least 2 reconnects", st)
	}
	if srv.Hellos() != 3 || srv.Conns() != 3 {
		t.Errorf("%d hellos on %d connections, want 3 and 3 (two refused)", srv.Hellos(), srv.Conns())
	}
	// More after a rejection use the same connection.
	mustSend(t, s, "d")
	mustFlush(t, s)
	if srv.Conns() != 3 {
		t.Errorf("%d connections, want 3", srv.Conns())
	}
}

// A connection closed mid-stream loses nothing: everything not acknowledged is
// sent again on the next one.
func TestReconnectResendsUnacked(t *testing.T) {
	const total = 100
	srv := startFake(t, fakeinlet.Options{
		OnMessage: func(m fakeinlet.Msg) (fakeinlet.Action, string) {
			switch {
			case m.Conn > 1 || m.Seq <= 20:
				return fakeinlet.Store, ""
			case m.Seq < 30:
				return fakeinlet.Ignore, "" // read, never stored: lost with the connection
			}
			return fakeinlet.Disconnect, ""
		},
	})
	s := newSender(t, client.Config{Addr: srv.TCPAddr()})
	for i := 1; i <= total; i++ {
		mustSend(t, s, fmt.Sprintf("m%d", i))
	}
	mustFlush(t, s)
	checkStored(t, srv, "dev-1", s.Boot(), seqPayloads(1, total, "m%d"))
	st := s.Stats()
	if st.Retried < 10 || st.Reconnects < 1 || st.Acked != total || st.Pending != 0 {
		t.Errorf("stats %+v: want at least 10 resent (21-30) and a reconnect", st)
	}
	for _, m := range srv.Received() {
		if m.Conn > 1 && m.Seq <= 20 {
			t.Errorf("seq %d resent on connection %d; the hello said it was stored", m.Seq, m.Conn)
		}
	}
}

// A server that stores but never acknowledges makes the client time out and
// resend; the server sees duplicates (and de-duplicates them). The fake reports
// last=0 to force the resend; the real server would report last=10.
func TestLostAcksAreResent(t *testing.T) {
	srv := startFake(t, fakeinlet.Options{
		OnMessage: func(m fakeinlet.Msg) (fakeinlet.Action, string) {
			if m.Conn == 1 {
				return fakeinlet.StoreNoAck, ""
			}
			return fakeinlet.Store, ""
		},
		Last: func(string, string, int64) int64 { return 0 },
	})
	s := newSender(t, client.Config{Addr: srv.TCPAddr(), AckTimeout: 200 * time.Millisecond})
	for i := 1; i <= 10; i++ {
		mustSend(t, s, fmt.Sprintf("m%d", i))
	}
	mustFlush(t, s)
	checkStored(t, srv, "dev-1", s.Boot(), seqPayloads(1, 10, "m%d"))
	if d := srv.Duplicates(); d != 10 {
		t.Errorf("server saw %d duplicates, want 10 (every message resent once)", d)
	}
	if st := s.Stats(); st.Retried != 10 || st.Sent != 10 || st.Acked != 10 {
		t.Errorf("stats %+v: want 10 sent, 10 retried, 10 acked", st)
	}
}

// One connection per message, each with its hello.
func TestConnectPerMessage(t *testing.T) {
	srv := startFake(t, fakeinlet.Options{})
	s := newSender(t, client.Config{Addr: srv.TCPAddr(), ConnectPerMessage: true})
	for i := 1; i <= 10; i++ {
		mustSend(t, s, fmt.Sprintf("m%d", i))
	}
	mustFlush(t, s)
	checkStored(t, srv, "dev-1", s.Boot(), seqPayloads(1, 10, "m%d"))
	if srv.Conns() != 10 || srv.Hellos() != 10 {
		t.Errorf("%d connections, %d hellos; want 10 each", srv.Conns(), srv.Hellos())
	}
	for _, m := range srv.Received() {
		if int64(m.Conn) != m.Seq {
			t.Errorf("seq %d arrived on connection %d", m.Seq, m.Conn)
		}
	}
}

// The outbox survives a crash with a torn record at its tail; the reloaded
// messages go first, under their original boot and seq, then the new ones under
// the new boot. Over TCP, TCP connect-per-message and UDP.
func TestOutboxSurvivesCrash(t *testing.T) {
	for _, mode := range []string{"tcp", "per-message", "udp"} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			first := newSender(t, client.Config{Addr: deadAddr(t), Outbox: dir})
			for i := 1; i <= 5; i++ {
				mustSend(t, first, fmt.Sprintf("old%d", i))
			}
			oldBoot := first.Boot()
			client.Crash(first)
			// A Send that never returned: half a record.
			f, err := os.OpenFile(client.OutboxFile(dir), os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.Write([]byte{40, 0, 0, 0, 1, 2, 3, 4, 'M', 3, 'a'})
			f.Close()

			srv := startFake(t, fakeinlet.Options{})
			cfg := client.Config{Outbox: dir, ConnectPerMessage: mode == "per-message", AckTimeout: 500 * time.Millisecond}
			cfg.Addr, cfg.Network = srv.TCPAddr(), "tcp"
			if mode == "udp" {
				cfg.Addr, cfg.Network = srv.UDPAddr(), "udp"
			}
			s := newSender(t, cfg)
			if s.Boot() == oldBoot {
				t.Fatal("a new process got the old boot")
			}
			if st := s.Stats(); st.Loaded != 5 {
				t.Fatalf("loaded %d, want 5", st.Loaded)
			}
			mustSend(t, s, "new1")
			mustSend(t, s, "new2")
			mustFlush(t, s)
			checkStored(t, srv, "dev-1", oldBoot, seqPayloads(1, 5, "old%d"))
			checkStored(t, srv, "dev-1", s.Boot(), seqPayloads(1, 2, "new%d"))
			// The old boot is finished before the new one starts.
			stored := srv.Stored()
			for i, m := range stored {
				if m.Boot == oldBoot && i >= 5 {
					t.Errorf("old boot seq %d stored at position %d, after new messages", m.Seq, i)
				}
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			again := newSender(t, client.Config{Addr: deadAddr(t), Outbox: dir})
			if st := again.Stats(); st.Loaded != 0 {
				t.Errorf("after delivery the outbox still holds %d", st.Loaded)
			}
		})
	}
}

// A record cut short or corrupted at the tail is dropped (its Send never
// returned); the records before it are kept.
func TestOutboxTornTail(t *testing.T) {
	for name, damage := range map[string]func(b []byte) []byte{
		"truncated": func(b []byte) []byte { return b[:len(b)-3] },
		"corrupted": func(b []byte) []byte { b[len(b)-1] ^= 0xff; return b },
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			first := newSender(t, client.Config{Addr: deadAddr(t), Outbox: dir})
			for i := 1; i <= 3; i++ {
				mustSend(t, first, fmt.Sprintf("m%d", i))
			}
			boot := first.Boot()
			client.Crash(first)
			path := client.OutboxFile(dir)
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, damage(b), 0o600); err != nil {
				t.Fatal(err)
			}
			srv := startFake(t, fakeinlet.Options{})
			s := newSender(t, client.Config{Addr: srv.TCPAddr(), Outbox: dir})
			if st := s.Stats(); st.Loaded != 2 {
				t.Fatalf("loaded %d, want 2", st.Loaded)
			}
			mustSend(t, s, "after")
			mustFlush(t, s)
			checkStored(t, srv, "dev-1", boot, seqPayloads(1, 2, "m%d"))
			checkStored(t, srv, "dev-1", s.Boot(), map[int64]string{1: "after"})
		})
	}
}

// A fixed boot continues after the highest seq it ever used, also after the
// outbox compacted every trace of those messages away.
func TestFixedBootContinues(t *testing.T) {
	dir := t.TempDir()
	srv := startFake(t, fakeinlet.Options{})
	cfg := client.Config{Addr: srv.TCPAddr(), Outbox: dir, Boot: "cafe01"}
	s := newSender(t, cfg)
	client.SetCompactMin(s, 1)
	for i := 1; i <= 30; i++ {
		mustSend(t, s, fmt.Sprintf("m%d", i))
	}
	mustFlush(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(client.OutboxFile(dir))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() > 200 {
		t.Errorf("outbox is %d bytes after everything was acknowledged and compacted", fi.Size())
	}
	s = newSender(t, cfg)
	if seq := mustSend(t, s, "m31"); seq != 31 {
		t.Errorf("seq after restart: %d, want 31", seq)
	}
	mustFlush(t, s)
	checkStored(t, srv, "dev-1", "cafe01", seqPayloads(1, 31, "m%d"))
}

// Compaction keeps the messages not yet acknowledged.
func TestCompactionKeepsPending(t *testing.T) {
	dir := t.TempDir()
	srv := startFake(t, fakeinlet.Options{
		OnMessage: func(m fakeinlet.Msg) (fakeinlet.Action, string) {
			if m.Seq > 40 {
				return fakeinlet.Ignore, ""
			}
			return fakeinlet.Store, ""
		},
	})
	s := newSender(t, client.Config{Addr: srv.TCPAddr(), Outbox: dir, AckTimeout: 100 * time.Millisecond})
	client.SetCompactMin(s, 1)
	for i := 1; i <= 50; i++ {
		mustSend(t, s, fmt.Sprintf("m%d", i))
	}
	boot := s.Boot()
	waitUntil(t, "40 acknowledged", func() bool { return s.Stats().Acked == 40 })
	client.Crash(s)

	srv2 := startFake(t, fakeinlet.Options{})
	s2 := newSender(t, client.Config{Addr: srv2.TCPAddr(), Outbox: dir})
	if st := s2.Stats(); st.Loaded != 10 {
		t.Fatalf("loaded %d, want 10", st.Loaded)
	}
	mustFlush(t, s2)
	checkStored(t, srv2, "dev-1", boot, seqPayloads(41, 50, "m%d"))
}

func TestSendChecks(t *testing.T) {
	s := newSender(t, client.Config{Addr: deadAddr(t), MaxOutbox: 3})
	for _, tc := range []struct {
		payload string
		want    error
	}{
		{"", client.ErrBadPayload},
		{"a\nb", client.ErrBadPayload},
		{"a\r", client.ErrBadPayload},
		{strings.Repeat("x", 4095), client.ErrTooLong}, // "1 " + 4095 bytes
	} {
		if _, err := s.Send([]byte(tc.payload)); !errors.Is(err, tc.want) {
			t.Errorf("send %.10q: %v, want %v", tc.payload, err, tc.want)
		}
	}
	mustSend(t, s, strings.Repeat("x", 4094))
	mustSend(t, s, "two")
	mustSend(t, s, "three")
	if _, err := s.Send([]byte("four")); !errors.Is(err, client.ErrOutboxFull) {
		t.Errorf("fourth send: %v, want ErrOutboxFull", err)
	}
	if st := s.Stats(); st.Pending != 3 || st.Queued != 3 {
		t.Errorf("stats %+v", st)
	}
	s.Close()
	if _, err := s.Send([]byte("x")); !errors.Is(err, client.ErrClosed) {
		t.Errorf("send after close: %v", err)
	}
	if err := s.Flush(context.Background()); !errors.Is(err, client.ErrClosed) {
		t.Errorf("flush after close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second close: %v", err)
	}

	u := newSender(t, client.Config{Addr: deadAddr(t), Network: "udp"})
	if _, err := u.Send([]byte("a\nb")); err != nil {
		t.Errorf("udp payload with a newline: %v", err)
	}
	if _, err := u.Send([]byte("a\n")); !errors.Is(err, client.ErrBadPayload) {
		t.Errorf("udp payload ending in a newline: %v, want ErrBadPayload", err)
	}
}

func TestConfigChecks(t *testing.T) {
	dir := t.TempDir()
	for _, cfg := range []client.Config{
		{Device: "d"},
		{Addr: "x:1"},
		{Addr: "x:1", Device: "has space"},
		{Addr: "x:1", Device: strings.Repeat("d", 65)},
		{Addr: "x:1", Device: "d", Boot: "no-dash", Outbox: dir},
		{Addr: "x:1", Device: "d", Boot: "fixed"}, // fixed boot without an outbox
		{Addr: "x:1", Device: "d", Network: "sctp"},
		{Addr: "x:1", Device: "d", Token: "a b"},
		{Addr: "x:1", Device: "d", Network: "udp", ConnectPerMessage: true},
	} {
		if s, err := client.New(cfg); err == nil {
			s.Close()
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
}

// One outbox, one sender; and an outbox remembers its device.
func TestOutboxOwnership(t *testing.T) {
	dir := t.TempDir()
	s := newSender(t, client.Config{Addr: deadAddr(t), Outbox: dir})
	mustSend(t, s, "x")
	if other, err := client.New(client.Config{Addr: deadAddr(t), Device: "dev-1", Outbox: dir}); err == nil {
		other.Close()
		t.Fatal("a second sender opened a locked outbox")
	}
	s.Close()
	if other, err := client.New(client.Config{Addr: deadAddr(t), Device: "dev-2", Outbox: dir}); err == nil {
		other.Close()
		t.Fatal("another device opened the outbox")
	}
	notOutbox := t.TempDir()
	if err := os.WriteFile(client.OutboxFile(notOutbox), []byte("hello world"), 0o600); err != nil {
		t.Fatal(err)
	}
	if other, err := client.New(client.Config{Addr: deadAddr(t), Device: "dev-1", Outbox: notOutbox}); err == nil {
		other.Close()
		t.Fatal("opened a file that is no outbox")
	}
}

// A server that stops reading never blocks Send; the client gives up on the
// connection after AckTimeout and Close returns promptly.
func TestServerStopsReading(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			buf := make([]byte, 256)
			c.Read(buf) // the hello
			c.Write(wire.AppendOK(nil, 0))
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	s := newSender(t, client.Config{Addr: ln.Addr().String(), AckTimeout: 200 * time.Millisecond})
	payload := strings.Repeat("x", 4000)
	for i := 0; i < 1000; i++ { // 4 MB: more than the socket buffers hold
		mustSend(t, s, payload)
	}
	waitUntil(t, "a reconnect", func() bool { return s.Stats().Reconnects >= 1 })
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Pending != 1000 || st.Acked != 0 {
		t.Errorf("stats %+v", st)
	}
}

// Concurrent Sends each get their own seq and all arrive.
func TestConcurrentSends(t *testing.T) {
	srv := startFake(t, fakeinlet.Options{})
	s := newSender(t, client.Config{Addr: srv.TCPAddr(), Outbox: t.TempDir()})
	var wg sync.WaitGroup
	const workers, per = 8, 50
	for w := range workers {
		wg.Go(func() {
			for i := range per {
				if _, err := s.Send(fmt.Appendf(nil, "w%d-%d", w, i)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	mustFlush(t, s)
	stored := srv.Stored()
	seen := map[string]bool{}
	var seqs []int64
	for _, m := range stored {
		seen[string(m.Payload)] = true
		seqs = append(seqs, m.Seq)
	}
	slices.Sort(seqs)
	if len(seen) != workers*per || len(seqs) != workers*per || seqs[0] != 1 || seqs[len(seqs)-1] != workers*per {
		t.Errorf("stored %d distinct payloads, seqs %d..%d; want %d", len(seen), seqs[0], seqs[len(seqs)-1], workers*per)
	}
}

// Close ends every goroutine the Sender started.
func TestCloseLeavesNoGoroutines(t *testing.T) {
	srv := startFake(t, fakeinlet.Options{})
	udpSrv := startFake(t, fakeinlet.Options{})
	before := runtime.NumGoroutine()
	for _, cfg := range []client.Config{
		{Addr: srv.TCPAddr(), Device: "a"},
		{Addr: srv.TCPAddr(), Device: "b", ConnectPerMessage: true},
		{Addr: udpSrv.UDPAddr(), Device: "c", Network: "udp"},
		{Addr: deadAddr(t), Device: "d", Outbox: t.TempDir()},
	} {
		cfg.Logger = testLogger(t)
		s, err := client.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		mustSend(t, s, "x")
		if cfg.Device != "d" {
			mustFlush(t, s)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	// The fake's connection goroutines end when they see the close; the
	// Sender's own have ended when Close returned.
	waitUntil(t, "goroutines to end", func() bool { return runtime.NumGoroutine() <= before })
}
