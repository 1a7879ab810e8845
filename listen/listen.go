// Package listen owns inlet's sockets: the TCP accept loop and per-connection
// readers, the UDP reader, connection limits, idle timeouts, the token check of
// hellos (Auth), and the draining of what clients already sent at shutdown. It
// frames bytes with package wire and hands messages to a Sink (the commit
// writer); it never touches storage (device tokens come from a TokenSource).
package listen

import (
	"context"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/inletdev/inlet"
	"github.com/inletdev/inlet/wire"
)

// Sink takes framed messages; commit.Writer is one.
type Sink interface {
	// Submit queues msgs, blocking while the sink is full.
	Submit(ctx context.Context, msgs []inlet.Message) error
	// TrySubmit queues msgs only if there is room at once.
	TrySubmit(msgs []inlet.Message) (bool, error)
	// Durable is the seq a hello from (device, boot) is answered with. It may
	// read the store, so the accept goroutine never calls it.
	Durable(device, boot string) int64
	// KnownDurable is Durable from memory, without waiting: ok is false when the
	// answer needs the store.
	KnownDurable(device, boot string) (seq int64, ok bool)
}

// Config holds the limits shared by both listeners.
type Config struct {
	MaxMessage    int           // --max-message
	IdleTimeout   time.Duration // --idle-timeout
	MaxConns      int           // --max-conns
	MaxConnsPerIP int           // --max-conns-per-ip
	UDPBuffer     int           // --udp-buffer: socket receive buffer in bytes
	// DrainTimeout is how long, at shutdown, readers keep reading what clients
	// already sent before their connections are closed.
	DrainTimeout time.Duration
	// Token, when set, is required in every acknowledged-mode hello; ignored
	// when Auth is set.
	Token string
	// Auth checks the tokens of hellos (auth.go), shared by the listeners;
	// nil: one is made from Token.
	Auth *Auth
	// Allow, when not empty, limits both listeners (TCP and TLS connections,
	// UDP datagrams) to these networks (--allow): anything from elsewhere is
	// closed or dropped at once, unread, before any handshake, counted in
	// Stats.NotAllowed and logged at a bounded rate. Prefixes of IPv4
	// addresses are IPv4 (not IPv4-mapped IPv6), as peers are compared.
	Allow []netip.Prefix
	// AckWriteTimeout is how long a write of acks may block before the client is
	// dropped as not reading.
	AckWriteTimeout time.Duration
	// Limits are the abuse limits (limit.go, docs/security.md).
	Limits
	Logger *slog.Logger
	Stats  *inlet.Stats
}

// DefaultConfig holds the listeners' defaults, the ones docs/cli.md documents
// for the flags; a zero field of a Config passed to ListenTCP or ListenUDP takes
// its value from here (UDPBuffer excepted: 0 leaves the system's buffer; and
// ConnRate and MsgRate: 0 is no limit).
func DefaultConfig() Config {
	return Config{
		MaxMessage:      wire.DefaultMaxMessage,
		IdleTimeout:     120 * time.Second,
		MaxConns:        10000,
		MaxConnsPerIP:   500,
		UDPBuffer:       8 << 20,
		DrainTimeout:    250 * time.Millisecond,
		AckWriteTimeout: 10 * time.Second,
		Limits: Limits{
			// A tutorial device connects per message, a few times a second at
			// most; a few dozen of them behind one NAT share an address.
			ConnRate:  DefaultConnRate,
			ConnBurst: 2 * DefaultConnRate,
			// A line of a slow ESP8266 over TLS takes well under a second; the
			// first-line bound covers a TLS handshake (an ESP8266 takes
			// seconds; tlsserve.HandshakeTimeout is 20 s) and a sketch that
			// reads its sensor before sending.
			LineTimeout:      30 * time.Second,
			FirstLineTimeout: 60 * time.Second,
			// Messages per device: off. A device that was offline sends its
			// whole outbox at once on reconnecting, and the connection limits
			// already bound what one address can cost.
		},
	}
}

// DefaultConnRate is --max-conn-rate's default, new connections per second per
// IP address; the burst is twice it.
const DefaultConnRate = 100

func (c *Config) setDefaults() {
	d := DefaultConfig()
	if c.MaxMessage <= 0 {
		c.MaxMessage = d.MaxMessage
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = d.IdleTimeout
	}
	if c.MaxConns <= 0 {
		c.MaxConns = d.MaxConns
	}
	if c.MaxConnsPerIP <= 0 {
		c.MaxConnsPerIP = d.MaxConnsPerIP
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = d.DrainTimeout
	}
	if c.AckWriteTimeout <= 0 {
		c.AckWriteTimeout = d.AckWriteTimeout
	}
	if c.LineTimeout <= 0 {
		c.LineTimeout = d.LineTimeout
	}
	if c.FirstLineTimeout <= 0 {
		c.FirstLineTimeout = d.FirstLineTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Stats == nil {
		c.Stats = new(inlet.Stats)
	}
	if c.Auth == nil {
		c.Auth = NewAuth(AuthConfig{Token: c.Token, Logger: c.Logger, Stats: c.Stats})
	}
}

// allowed reports whether a peer at ip may send (Config.Allow).
func (c *Config) allowed(ip netip.Addr) bool {
	if len(c.Allow) == 0 {
		return true
	}
	for _, p := range c.Allow {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// notAllowed counts and logs, at most once per interval of l, input from
// outside Config.Allow; what is "tcp: connection", "udp: datagram", ...
func notAllowed(cfg *Config, l *limiter, what string, from netip.AddrPort) {
	cfg.Stats.NotAllowed.Add(1)
	if ok, n := l.allow(); ok {
		cfg.Logger.Warn(what+" from outside --allow dropped", "remote", from.String(), "suppressed", n)
	}
}

// deviceID is the device name of a plain-mode sender: its IP address, with an
// IPv4-mapped IPv6 address shown as IPv4 (a dual-stack socket reports those).
func deviceID(a netip.Addr) string { return a.Unmap().WithZone("").String() }

// limiter rate-limits a repeated log line: at most one per interval, with the
// number of events suppressed since the last one.
type limiter struct {
	mu         sync.Mutex
	every      time.Duration
	last       time.Time
	suppressed int
}

// tooLong counts k discarded over-long messages from device and logs them, at
// most once per interval of l (docs/protocol.md §1: counted and logged).
func tooLong(cfg *Config, l *limiter, transport, device string, k int) {
	cfg.Stats.TooLong.Add(int64(k))
	if ok, n := l.allow(); ok {
		cfg.Logger.Warn(transport+": message longer than --max-message discarded", "device", device,
			"max", cfg.MaxMessage, "discarded", k, "suppressed", n)
	}
}

// allow reports whether to log now, and how many events went unlogged before.
func (l *limiter) allow() (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now := time.Now(); now.Sub(l.last) >= l.every {
		n := l.suppressed
		l.last, l.suppressed = now, 0
		return true, n
	}
	l.suppressed++
	return false, 0
}

// compact copies the payloads of msgs into an arena of their exact size when the
// one they point into is mostly other bytes (a read that held one short message
// and a long discarded one, say). The queue bounds payload bytes; without this a
// 1-byte message could keep a whole 64 KiB read buffer alive in it.
func compact(msgs []inlet.Message, arena []byte) {
	var n int
	for i := range msgs {
		n += len(msgs[i].Payload)
	}
	if cap(arena) <= 2*n+256 {
		return
	}
	exact := make([]byte, 0, n)
	for i := range msgs {
		start := len(exact)
		exact = append(exact, msgs[i].Payload...)
		msgs[i].Payload = exact[start:len(exact):len(exact)]
	}
}
