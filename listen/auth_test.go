package listen_test

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/inletdev/inlet"
	"github.com/inletdev/inlet/listen"
	"github.com/inletdev/inlet/wire"
)

// fakeTokens is a TokenSource held in memory, changed by the test as inlet
// token changes the store.
type fakeTokens struct {
	mu      sync.Mutex
	version int64
	toks    map[string]listen.DeviceToken
	reads   int
}

func newFakeTokens() *fakeTokens { return &fakeTokens{toks: map[string]listen.DeviceToken{}} }

func (f *fakeTokens) add(device, token string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.toks[device] = listen.DeviceToken{Device: device, Hash: wire.TokenHash(token)}
	f.version++
}

func (f *fakeTokens) revoke(device string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d := f.toks[device]
	d.Revoked = true
	f.toks[device] = d
	f.version++
}

func (f *fakeTokens) TokensVersion(context.Context) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.version, nil
}

func (f *fakeTokens) DeviceTokens(context.Context) ([]listen.DeviceToken, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	var out []listen.DeviceToken
	for _, d := range f.toks {
		out = append(out, d)
	}
	return out, nil
}

// newAuth is an Auth over src, loaded, with its Stats.
func newAuth(t testing.TB, cfg listen.AuthConfig) (*listen.Auth, *inlet.Stats) {
	t.Helper()
	if cfg.Stats == nil {
		cfg.Stats = new(inlet.Stats)
	}
	a := listen.NewAuth(cfg)
	if err := a.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	return a, cfg.Stats
}

const (
	tokA = "q8Zs0v1yX3kJm4pT7nRb2cWd5fHg6LaE9uKoYiNtQxA" // as inlet token add prints them: 43 characters
	tokB = "Lm3nB8vC1xZ7aS4dF6gH9jK2qW5eR0tYuIoPpAsDfGh"
)

// helloAnswer sends one hello and a message from src and returns the server's first line.
func helloAnswer(t *testing.T, src string, addr net.Addr, hello string) string {
	t.Helper()
	a := dialAck(t, src, addr)
	a.send(t, hello, "1 x\n")
	return a.line(t, 5*time.Second)
}

// --require-token against the real listener: the right token is taken; a
// wrong one, one of the wrong length, a missing one, an unknown device and a
// revoked device all get the same "ERR unauthorized", each counted by reason.
func TestRequireToken(t *testing.T) {
	src := newFakeTokens()
	src.add("pump-1", tokA)
	src.add("pump-2", tokB)
	src.revoke("pump-2")
	var logs syncLog
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	auth, stats := newAuth(t, listen.AuthConfig{Tokens: src, MaxFailedHellos: 100, Logger: logger})
	sink := newFakeSink()
	ln, _ := startTCP(t, sink, listen.Config{Auth: auth, Stats: stats, Logger: logger})

	if got := helloAnswer(t, "127.0.0.30", ln.Addr(), "INLET/1 id=pump-1 boot=b1 token="+tokA+"\n"); got != "INLET/1 OK last=0" {
		t.Fatalf("right token: %q", got)
	}
	refused := []struct{ name, hello, reason string }{
		{"wrong token", "INLET/1 id=pump-1 boot=b1 token=" + tokB + "\n", listen.AuthWrongToken},
		{"one character off", "INLET/1 id=pump-1 boot=b1 token=" + tokA[:42] + "B\n", listen.AuthWrongToken},
		{"too short", "INLET/1 id=pump-1 boot=b1 token=" + tokA[:42] + "\n", listen.AuthWrongToken},
		{"too long", "INLET/1 id=pump-1 boot=b1 token=" + tokA + "x\n", listen.AuthWrongToken},
		{"max length", "INLET/1 id=pump-1 boot=b1 token=" + strings.Repeat("x", wire.MaxTokenLen) + "\n", listen.AuthWrongToken},
		{"no token", "INLET/1 id=pump-1 boot=b1\n", listen.AuthNoToken},
		{"unknown device", "INLET/1 id=pump-9 boot=b1 token=" + tokA + "\n", listen.AuthUnknownDevice},
		{"revoked", "INLET/1 id=pump-2 boot=b1 token=" + tokB + "\n", listen.AuthRevoked},
	}
	for _, c := range refused {
		if got := helloAnswer(t, "127.0.0.31", ln.Addr(), c.hello); got != "INLET/1 ERR unauthorized" {
			t.Errorf("%s: %q, want INLET/1 ERR unauthorized", c.name, got)
		}
	}
	want := map[string]int64{}
	for _, c := range refused {
		want[c.reason]++
	}
	for _, r := range listen.AuthReasons {
		if got := stats.AuthFailures.Get(r); got != want[r] {
			t.Errorf("AuthFailures[%s] = %d, want %d", r, got, want[r])
		}
	}
	if n := stats.HelloErrors.Load(); n != int64(len(refused)) {
		t.Errorf("hello errors %d, want %d", n, len(refused))
	}
	if got := sink.payloads("pump-1"); !slices.Equal(got, []string{"x"}) {
		t.Errorf("queued for pump-1: %q, want only the authenticated message", got)
	}
	for _, dev := range []string{"pump-2", "pump-9"} {
		if got := sink.payloads(dev); len(got) != 0 {
			t.Errorf("queued for %s: %q", dev, got)
		}
	}
	if l := logs.String(); strings.Contains(l, tokA) || strings.Contains(l, tokB) || strings.Contains(l, tokA[:42]) {
		t.Errorf("a token was logged:\n%s", l)
	}
	if l := logs.String(); !strings.Contains(l, "hello refused") || !strings.Contains(l, "cause=wrong_token") {
		t.Errorf("refusal not logged with its cause:\n%s", l)
	}
}

// A token revoked while its device is connected: the connection is closed
// once the Auth has read the change, and the device's next hello is refused.
// Another device's connection stays.
func TestRevokedWhileConnected(t *testing.T) {
	src := newFakeTokens()
	src.add("pump-1", tokA)
	src.add("pump-3", tokB)
	auth, stats := newAuth(t, listen.AuthConfig{Tokens: src})
	sink := newFakeSink()
	ln, _ := startTCP(t, sink, listen.Config{Auth: auth, Stats: stats})

	a := dialAck(t, "127.0.0.32", ln.Addr())
	a.send(t, "INLET/1 id=pump-1 boot=b1 token="+tokA+"\n", "1 before\n")
	other := dialAck(t, "127.0.0.33", ln.Addr())
	other.send(t, "INLET/1 id=pump-3 boot=b1 token="+tokB+"\n", "1 before\n")
	for _, c := range []*ackClient{a, other} {
		for _, want := range []string{"INLET/1 OK last=0", "ACK 1"} {
			if got := c.line(t, 5*time.Second); got != want {
				t.Fatalf("%q, want %q", got, want)
			}
		}
	}

	src.revoke("pump-1")
	if err := auth.Load(context.Background()); err != nil { // what Run does every TokenPoll
		t.Fatal(err)
	}
	a.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if s, err := a.r.ReadString('\n'); err == nil {
		t.Fatalf("revoked device's connection still open: read %q", s)
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("revoked device's connection not closed")
	}
	if n := stats.AuthFailures.Get(listen.AuthConnClosed); n != 1 {
		t.Errorf("AuthFailures[%s] = %d, want 1", listen.AuthConnClosed, n)
	}
	if got := helloAnswer(t, "127.0.0.32", ln.Addr(), "INLET/1 id=pump-1 boot=b1 token="+tokA+"\n"); got != "INLET/1 ERR unauthorized" {
		t.Fatalf("next hello after the revocation: %q", got)
	}
	// The other device goes on.
	other.send(t, "2 after\n")
	if got := other.line(t, 5*time.Second); got != "ACK 2" {
		t.Fatalf("other device after the revocation: %q", got)
	}
	// A new token for the revoked device lets it in again.
	src.add("pump-1", tokB)
	if err := auth.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := helloAnswer(t, "127.0.0.32", ln.Addr(), "INLET/1 id=pump-1 boot=b2 token="+tokB+"\n"); got != "INLET/1 OK last=0" {
		t.Fatalf("hello with the new token: %q", got)
	}
}

// Load reads the tokens again only when their version has moved.
func TestAuthLoadOnlyOnChange(t *testing.T) {
	src := newFakeTokens()
	src.add("pump-1", tokA)
	auth, _ := newAuth(t, listen.AuthConfig{Tokens: src})
	for range 3 {
		auth.Load(context.Background())
	}
	src.mu.Lock()
	reads := src.reads
	src.mu.Unlock()
	if reads != 1 {
		t.Fatalf("DeviceTokens read %d times with no change, want 1", reads)
	}
}

// --token and --require-token together: a device with a token of its own must
// use it, a device without one may use the shared token, and a revoked device
// cannot fall back on the shared one.
func TestSharedAndDeviceTokens(t *testing.T) {
	src := newFakeTokens()
	src.add("own", tokA)
	src.add("gone", tokB)
	src.revoke("gone")
	const shared = "shared-secret"
	auth, _ := newAuth(t, listen.AuthConfig{Token: shared, Tokens: src, MaxFailedHellos: 100})
	ip := netip.MustParseAddr("192.0.2.1")
	for _, c := range []struct {
		device, token string
		ok            bool
	}{
		{"own", tokA, true},
		{"own", shared, false},
		{"other", shared, true},
		{"other", tokA, false},
		{"gone", shared, false},
		{"gone", tokB, false},
		{"other", "", false},
	} {
		if reason, _ := auth.Check(ip, c.device, c.token); (reason == "") != c.ok {
			t.Errorf("device %s with token %q: refused for %q, want accepted %v", c.device, c.token, reason, c.ok)
		}
	}
	// --token alone ignores the per-device tokens.
	only, _ := newAuth(t, listen.AuthConfig{Token: shared})
	if reason, _ := only.Check(ip, "own", shared); reason != "" {
		t.Errorf("--token alone: refused %q", reason)
	}
	if reason, _ := only.Check(ip, "own", tokA); reason != listen.AuthWrongToken {
		t.Errorf("--token alone, a device token: %q, want %s", reason, listen.AuthWrongToken)
	}
}

// --max-failed-hellos: after N refused hellos from one address its hellos are
// refused without being checked, even with the right token, and counted; other
// addresses are not affected.
func TestFailedHelloLimit(t *testing.T) {
	src := newFakeTokens()
	src.add("pump-1", tokA)
	var logs syncLog
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	auth, stats := newAuth(t, listen.AuthConfig{Tokens: src, MaxFailedHellos: 3, Logger: logger})
	sink := newFakeSink()
	ln, _ := startTCP(t, sink, listen.Config{Auth: auth, Stats: stats, Logger: logger})

	right := "INLET/1 id=pump-1 boot=b1 token=" + tokA + "\n"
	for i := range 3 {
		if got := helloAnswer(t, "127.0.0.40", ln.Addr(), "INLET/1 id=pump-1 boot=b1 token=guess"+string(rune('a'+i))+"\n"); got != "INLET/1 ERR unauthorized" {
			t.Fatalf("guess %d: %q", i, got)
		}
	}
	for range 5 {
		if got := helloAnswer(t, "127.0.0.40", ln.Addr(), right); got != "INLET/1 ERR unauthorized" {
			t.Fatalf("the right token from an address over the limit: %q, want refused unchecked", got)
		}
	}
	if n := stats.AuthFailures.Get(listen.AuthTooManyFailures); n != 5 {
		t.Errorf("AuthFailures[%s] = %d, want 5", listen.AuthTooManyFailures, n)
	}
	if n := stats.AuthFailures.Get(listen.AuthWrongToken); n != 3 {
		t.Errorf("AuthFailures[%s] = %d, want 3 (refusals over the limit are not checked)", listen.AuthWrongToken, n)
	}
	if !strings.Contains(logs.String(), "too many failed hellos") {
		t.Errorf("the limit was not logged:\n%s", logs.String())
	}
	// Another address, and the same device from it, are unaffected.
	if got := helloAnswer(t, "127.0.0.41", ln.Addr(), right); got != "INLET/1 OK last=0" {
		t.Fatalf("another address: %q", got)
	}
}

// The same limit over acknowledged UDP, which shares the Auth: a wrong token
// gets no answer, and once the address is over the limit neither does the
// right one.
func TestFailedHelloLimitUDP(t *testing.T) {
	src := newFakeTokens()
	src.add("pump-1", tokA)
	auth, stats := newAuth(t, listen.AuthConfig{Tokens: src, MaxFailedHellos: 2})
	sink := newFakeSink()
	u, _ := startUDP(t, sink, listen.Config{Auth: auth, Stats: stats})
	c, err := net.Dial("udp", u.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("INLET/1 id=pump-1 boot=b seq=1 token=" + tokA + "\nok"))
	buf := make([]byte, 64)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Read(buf); err != nil || string(buf[:n]) != "ACK 1\n" {
		t.Fatalf("right token: %q, %v", buf[:n], err)
	}
	c.Write([]byte("INLET/1 id=pump-1 boot=b seq=2 token=nope\nx"))
	c.Write([]byte("INLET/1 id=pump-9 boot=b seq=3 token=" + tokA + "\nx"))
	c.Write([]byte("INLET/1 id=pump-1 boot=b seq=4 token=" + tokA + "\nx"))
	waitFor(t, "the three datagrams", 5*time.Second, func() bool { return stats.HelloErrors.Load() == 3 })
	if n := stats.AuthFailures.Get(listen.AuthTooManyFailures); n != 1 {
		t.Errorf("AuthFailures[%s] = %d, want 1", listen.AuthTooManyFailures, n)
	}
	if got := sink.payloads("pump-1"); !slices.Equal(got, []string{"ok"}) {
		t.Errorf("queued %q, want only the first", got)
	}
}

// The refusal paths take the same time: an unknown device, a wrong token, a
// token of another length, no token and a revoked device. Each sample times
// a run of checks; the paths are interleaved in a new random order every
// round, so load on the machine falls on all of them alike, and their medians
// are compared. A check that returned early for an unknown device or a token
// of the wrong length (skipping the hash) is several times faster on that
// path and fails this; the bound is loose enough for a loaded machine.
func TestAuthTimingPaths(t *testing.T) {
	if testing.Short() {
		t.Skip("timing test")
	}
	src := newFakeTokens()
	src.add("pump-1", tokA)
	src.add("pump-2", tokB)
	src.revoke("pump-2")
	auth, _ := newAuth(t, listen.AuthConfig{Tokens: src, MaxFailedHellos: 1 << 30})
	ip := netip.MustParseAddr("192.0.2.1")
	paths := []struct{ name, device, token string }{
		{"unknown device", "pump-9", tokA},
		{"wrong token", "pump-1", tokB},
		{"wrong length", "pump-1", "guess"},
		{"no token", "pump-1", ""},
		{"revoked", "pump-2", tokB},
	}
	const rounds, perSample = 301, 32
	samples := make([][]time.Duration, len(paths))
	order := make([]int, len(paths))
	for i := range order {
		order[i] = i
	}
	for range rounds {
		rand.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		for _, p := range order {
			dev, tok := paths[p].device, paths[p].token
			start := time.Now()
			for range perSample {
				if r, _ := auth.Check(ip, dev, tok); r == "" {
					t.Fatalf("%s accepted", paths[p].name)
				}
			}
			samples[p] = append(samples[p], time.Since(start)/perSample)
		}
	}
	medians := make([]time.Duration, len(paths))
	for i, s := range samples {
		slices.Sort(s)
		medians[i] = s[len(s)/2]
		t.Logf("%-15s median %v per check", paths[i].name, medians[i])
	}
	lo, hi := slices.Min(medians), slices.Max(medians)
	if float64(hi) > 1.5*float64(lo) {
		t.Errorf("refusal paths differ in time: medians from %v to %v (more than 1.5×)", lo, hi)
	}
}

// BenchmarkAuthCheck is the cost of checking one hello's token (a refusal and
// an acceptance), against 1,000 device tokens.
func BenchmarkAuthCheck(b *testing.B) {
	src := newFakeTokens()
	for i := range 1000 {
		src.add("dev-"+strconv.Itoa(i), wire.NewToken())
	}
	src.add("pump-1", tokA)
	auth, _ := newAuth(b, listen.AuthConfig{Tokens: src, MaxFailedHellos: 1 << 30})
	ip := netip.MustParseAddr("192.0.2.1")
	b.Run("right", func(b *testing.B) {
		for b.Loop() {
			auth.Check(ip, "pump-1", tokA)
		}
	})
	b.Run("wrong", func(b *testing.B) {
		for b.Loop() {
			auth.Check(ip, "pump-1", tokB)
		}
	})
}

// FuzzAuthCheck: whatever the device and token, Check accepts exactly what
// the rules of docs/security.md accept, in each of the three modes (--token,
// --require-token, both).
func FuzzAuthCheck(f *testing.F) {
	f.Add(byte(0), "own", tokA)
	f.Add(byte(1), "gone", "shared-secret")
	f.Add(byte(2), "other", "shared-secret")
	f.Add(byte(2), "own", "")
	src := newFakeTokens()
	src.add("own", tokA)
	src.add("gone", tokB)
	src.revoke("gone")
	const shared = "shared-secret"
	auths := []*listen.Auth{
		listen.NewAuth(listen.AuthConfig{Token: shared, MaxFailedHellos: 1 << 30}),
		listen.NewAuth(listen.AuthConfig{Tokens: src, MaxFailedHellos: 1 << 30}),
		listen.NewAuth(listen.AuthConfig{Token: shared, Tokens: src, MaxFailedHellos: 1 << 30}),
	}
	for _, a := range auths {
		if err := a.Load(context.Background()); err != nil {
			f.Fatal(err)
		}
	}
	ip := netip.MustParseAddr("192.0.2.1")
	f.Fuzz(func(t *testing.T, mode byte, device, token string) {
		m := int(mode % 3)
		var want bool
		switch {
		case m == 0:
			want = token == shared
		case device == "own":
			want = token == tokA
		case device == "gone":
			want = false
		default:
			want = m == 2 && token == shared
		}
		reason, _ := auths[m].Check(ip, device, token)
		if (reason == "") != want {
			t.Fatalf("mode %d, device %q, token %q: refused for %q, want accepted %v", m, device, token, reason, want)
		}
		if reason != "" && !slices.Contains(listen.AuthReasons, reason) {
			t.Fatalf("unknown reason %q", reason)
		}
		if token == "" && reason != "" && reason != listen.AuthNoToken {
			t.Fatalf("no token refused as %q", reason)
		}
	})
}
