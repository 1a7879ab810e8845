package listen

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/inletdev/inlet"
	"github.com/inletdev/inlet/wire"
)

// DeviceToken is one device's credential as the listeners check it: the
// digest of its token (wire.TokenHash), never the token.
type DeviceToken struct {
	Device  string
	Hash    wire.TokenDigest
	Revoked bool // the device is refused whatever it presents
}

// TokenSource holds the per-device tokens (--require-token); in inlet serve it
// is the store, which other processes change (inlet token). An Auth reads it
// only from its own goroutine (Run), never on an accept loop.
type TokenSource interface {
	// TokensVersion changes whenever the tokens do; it is read every TokenPoll.
	TokensVersion(ctx context.Context) (int64, error)
	// DeviceTokens returns every device's token.
	DeviceTokens(ctx context.Context) ([]DeviceToken, error)
}

// AuthConfig configures an Auth.
type AuthConfig struct {
	// Token, when set, is one token shared by every device (--token).
	Token string
	// Tokens, when set, makes every hello carry its own device's token
	// (--require-token). With Token as well, a device without a token of its
	// own (never added) may use the shared one; a device with one, valid or
	// revoked, must use its own.
	Tokens TokenSource
	// MaxFailedHellos is how many refused hellos an address may have per
	// minute (a bucket refilled at that rate) before its hellos are refused
	// without being checked (--max-failed-hellos). IPv6 addresses count per
	// /64. 0 takes DefaultMaxFailedHellos.
	MaxFailedHellos int
	Logger          *slog.Logger
	Stats           *inlet.Stats
}

// Defaults of AuthConfig.
const (
	DefaultMaxFailedHellos = 10
	// TokenPoll is how often Run reads TokensVersion: a revocation made by
	// another process takes effect within it (plus the read).
	TokenPoll = time.Second
	// maxFailingAddrs bounds the addresses whose failures are tracked.
	maxFailingAddrs = 1 << 16
)

// Reasons an Auth refuses a hello, or closes an authenticated connection: the
// label of Stats.AuthFailures (inlet_auth_failures_total). On the wire every
// one is the same "INLET/1 ERR unauthorized" (or, over UDP, no answer).
const (
	AuthNoToken         = "no_token"           // the hello has no token=
	AuthUnknownDevice   = "unknown_device"     // --require-token: the device has no token (and no --token)
	AuthWrongToken      = "wrong_token"        // the token is not the device's (or the shared one), whatever its length
	AuthRevoked         = "revoked"            // the device's token is revoked
	AuthTooManyFailures = "too_many_failures"  // the address is over --max-failed-hellos: refused unchecked
	AuthConnClosed      = "revoked_connection" // an authenticated connection closed: its token was revoked or replaced
)

// AuthReasons are the labels of Stats.AuthFailures, all exported from the start.
var AuthReasons = []string{AuthNoToken, AuthUnknownDevice, AuthWrongToken, AuthRevoked, AuthTooManyFailures, AuthConnClosed}

// Auth checks the credentials of acknowledged-mode hellos for the TCP, TLS
// and UDP listeners, which share one (Config.Auth), and counts the failed
// hellos of each address. A check never waits: the tokens are held in memory
// and replaced by Run whenever the source changes, and tokens are compared
// as digests in constant time, so an unknown device, a wrong token, a token of
// the wrong length and a revoked one take the same time and get the same reply.
type Auth struct {
	cfg       AuthConfig
	perDevice bool
	hasShared bool
	shared    wire.TokenDigest
	dummy     wire.TokenDigest // compared against when the device has no token
	set       atomic.Pointer[tokenSet]

	mu      sync.Mutex
	fails   map[netip.Addr]failState
	subs    []func() // called after the tokens change (listeners recheck their connections)
	version int64    // of the set held; Run's
	loaded  bool

	loadMu   sync.Mutex // one Load at a time, so that sets are stored in order
	limitLog limiter    // addresses going over MaxFailedHellos
	loadLog  limiter    // failed reads of the source
	closeLog limiter    // connections closed on revocation
}

type tokenSet struct{ m map[string]tokenEntry }

type tokenEntry struct {
	hash    wire.TokenDigest
	revoked bool
}

// failState is an address's bucket of failures: left of MaxFailedHellos,
// refilled at MaxFailedHellos a minute since at.
type failState struct {
	left float64
	at   time.Time
}

// NewAuth returns an Auth; with cfg.Tokens it holds no token until Load.
func NewAuth(cfg AuthConfig) *Auth {
	if cfg.MaxFailedHellos <= 0 {
		cfg.MaxFailedHellos = DefaultMaxFailedHellos
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Stats == nil {
		cfg.Stats = new(inlet.Stats)
	}
	a := &Auth{
		cfg:       cfg,
		perDevice: cfg.Tokens != nil,
		hasShared: cfg.Token != "",
		shared:    wire.TokenHash(cfg.Token),
		fails:     make(map[netip.Addr]failState),
		limitLog:  limiter{every: 10 * time.Second},
		loadLog:   limiter{every: 10 * time.Second},
		closeLog:  limiter{every: 10 * time.Second},
	}
	rand.Read(a.dummy[:])
	a.set.Store(&tokenSet{})
	if a.Enabled() {
		for _, r := range AuthReasons {
			cfg.Stats.AuthFailures.Add(r, 0) // exported as zeros from the start
		}
	}
	return a
}

// Enabled reports whether hellos need a token at all.
func (a *Auth) Enabled() bool { return a.perDevice || a.hasShared }

// Load reads the tokens from the source now, if they changed since the last
// read. inlet serve calls it once before serving; Run calls it every TokenPoll.
func (a *Auth) Load(ctx context.Context) error {
	if !a.perDevice {
		return nil
	}
	a.loadMu.Lock()
	defer a.loadMu.Unlock()
	v, err := a.cfg.Tokens.TokensVersion(ctx)
	if err != nil {
		return err
	}
	a.mu.Lock()
	same := a.loaded && v == a.version
	a.mu.Unlock()
	if same {
		return nil
	}
	toks, err := a.cfg.Tokens.DeviceTokens(ctx)
	if err != nil {
		return err
	}
	s := &tokenSet{m: make(map[string]tokenEntry, len(toks))}
	for _, t := range toks {
		s.m[t.Device] = tokenEntry{hash: t.Hash, revoked: t.Revoked}
	}
	a.set.Store(s)
	a.mu.Lock()
	first := !a.loaded
	a.version, a.loaded = v, true
	subs := a.subs
	a.mu.Unlock()
	if !first {
		a.cfg.Logger.Info("auth: device tokens reloaded", "devices", len(toks))
	}
	for _, f := range subs {
		f()
	}
	return nil
}

// Run reloads the tokens every TokenPoll until ctx ends, and forgets the
// failures of addresses that have been quiet long enough. A failed read is
// logged (at most once per 10 s); the tokens held stay in force.
func (a *Auth) Run(ctx context.Context) {
	t := time.NewTicker(TokenPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if err := a.Load(ctx); err != nil && ctx.Err() == nil {
				if ok, n := a.loadLog.allow(); ok {
					a.cfg.Logger.Warn("auth: cannot read device tokens; keeping the ones in force", "err", err, "suppressed", n)
				}
			}
			a.forget(now)
		}
	}
}

// onChange registers f, called (from Run) after the tokens have changed.
func (a *Auth) onChange(f func()) {
	a.mu.Lock()
	a.subs = append(a.subs, f)
	a.mu.Unlock()
}

// failKey is the address failures are counted under: an IPv4 address, or an
// IPv6 address's /64 (one host usually has a whole /64).
func failKey(ip netip.Addr) netip.Addr {
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.WithZone("").Prefix(64)
		return p.Addr()
	}
	return ip
}

// refill returns f's bucket as of now.
func (a *Auth) refill(f failState, now time.Time) failState {
	max := float64(a.cfg.MaxFailedHellos)
	f.left = min(max, f.left+now.Sub(f.at).Minutes()*max)
	f.at = now
	return f
}

// limited reports whether ip has used up its failed hellos.
func (a *Auth) limited(ip netip.Addr, now time.Time) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	f, ok := a.fails[failKey(ip)]
	return ok && a.refill(f, now).left < 1
}

// failed counts a refused hello from ip, and logs (bounded) when that uses
// up its failed hellos.
func (a *Auth) failed(ip netip.Addr, now time.Time) {
	k := failKey(ip)
	a.mu.Lock()
	f, ok := a.fails[k]
	if !ok {
		if len(a.fails) >= maxFailingAddrs {
			for old := range a.fails { // make room: forget an arbitrary address
				delete(a.fails, old)
				break
			}
		}
		f = failState{left: float64(a.cfg.MaxFailedHellos), at: now}
	}
	f = a.refill(f, now)
	f.left--
	a.fails[k] = f
	over := f.left < 1
	a.mu.Unlock()
	if over {
		if ok, n := a.limitLog.allow(); ok {
			a.cfg.Logger.Warn("auth: too many failed hellos; refusing this address's hellos unchecked for a while",
				"ip", k.String(), "max_per_minute", a.cfg.MaxFailedHellos, "suppressed", n)
		}
	}
}

// forget drops the addresses whose buckets are full again.
func (a *Auth) forget(now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for k, f := range a.fails {
		if a.refill(f, now).left >= float64(a.cfg.MaxFailedHellos) {
			delete(a.fails, k)
		}
	}
}

// A grant is what a successful check hands the connection, for rechecking it
// when the tokens change.
type grant struct {
	device string
	digest wire.TokenDigest
	// set is the tokens it was last checked against; still moves it on, so
	// that a long-lived connection does not keep old tokens in memory.
	set atomic.Pointer[tokenSet]
}

// Check decides a hello from ip naming device with token ("" when the hello
// has none). It returns "" and the grant when the hello may go on, else the
// reason it is refused (counted in Stats.AuthFailures, and as a failure of
// ip). It never waits: on an accept loop is fine.
func (a *Auth) Check(ip netip.Addr, device, token string) (string, *grant) {
	if !a.Enabled() {
		return "", nil
	}
	now := time.Now()
	if a.limited(ip, now) {
		a.cfg.Stats.AuthFailures.Add(AuthTooManyFailures, 1)
		return AuthTooManyFailures, nil
	}
	g := &grant{device: device, digest: wire.TokenHash(token)}
	s := a.set.Load()
	reason := a.decide(s, device, &g.digest, token == "")
	if reason != "" {
		a.cfg.Stats.AuthFailures.Add(reason, 1)
		a.failed(ip, now)
		return reason, nil
	}
	g.set.Store(s)
	return "", g
}

// still reports whether a connection granted g would be granted by the
// tokens in force now.
func (a *Auth) still(g *grant) bool {
	s := a.set.Load()
	if g.set.Load() == s {
		return true
	}
	if a.decide(s, g.device, &g.digest, false) != "" {
		return false
	}
	g.set.Store(s)
	return true
}

// decide is the check proper, in constant time: whatever the device and the
// token, it looks the device up once, compares the digest with two stored
// ones (the device's, or a random dummy, and the shared token's) and combines
// the results without branching. Only once decided does it branch, to name the
// reason.
func (a *Auth) decide(s *tokenSet, device string, d *wire.TokenDigest, noToken bool) string {
	e, known := s.m[device]
	own := &a.dummy
	if known {
		own = &e.hash
	}
	mOwn := subtle.ConstantTimeCompare(d[:], own[:])
	mShared := subtle.ConstantTimeCompare(d[:], a.shared[:])
	k, r, p, sh := b2i(known), b2i(e.revoked), b2i(a.perDevice), b2i(a.hasShared)
	ok := p&k&(1-r)&mOwn | sh&(1-k*p)&mShared
	if ok == 1 {
		return ""
	}
	switch {
	case noToken:
		return AuthNoToken
	case known && e.revoked && a.perDevice:
		return AuthRevoked
	case a.perDevice && !known && !a.hasShared:
		return AuthUnknownDevice
	}
	return AuthWrongToken
}

func b2i(b bool) int {
	var i int
	if b {
		i = 1
	}
	return i
}
