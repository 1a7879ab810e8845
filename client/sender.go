package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/inletdev/inlet/wire"
)

// Defaults for the zero fields of Config.
const (
	DefaultMaxOutbox  = 100000
	DefaultWindow     = 64
	DefaultAckTimeout = 5 * time.Second
	DefaultMinBackoff = 100 * time.Millisecond
	DefaultMaxBackoff = 30 * time.Second
	// DefaultMaxMessage is the server's default --max-message: the longest
	// "<seq> <payload>" it accepts.
	DefaultMaxMessage = wire.DefaultMaxMessage
)

var (
	// ErrOutboxFull is returned by Send when Config.MaxOutbox messages are
	// waiting for acknowledgement. Send does not block: retry later.
	ErrOutboxFull = errors.New("client: outbox full")
	// ErrTooLong is returned by Send for a payload that would make
	// "<seq> <payload>" longer than Config.MaxMessage.
	ErrTooLong = errors.New("client: message too long")
	// ErrBadPayload is returned by Send for a payload the protocol cannot carry
	// unchanged: empty (plain mode skips empty lines, so an empty reading is no
	// reading), over TCP containing '\n' or ending in '\r', over UDP ending in
	// '\n'.
	ErrBadPayload = errors.New("client: bad payload")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("client: sender closed")
)

// Config says where and how a Sender delivers. Only Addr and Device are required.
type Config struct {
	Addr    string // server host:port
	Network string // "tcp" (default) or "udp"
	Device  string // 1–64 characters of A-Z a-z 0-9 . _ : -
	// Boot names this run of the device: 1–32 characters of A-Z a-z 0-9. Empty:
	// a random one per New, so that numbering restarts safely at 1. A fixed Boot
	// needs an Outbox, where the highest seq used is kept, or a restart would
	// reuse seqs the server already holds and see new messages discarded as
	// duplicates.
	Boot  string
	Token string // optional, sent as token=<token> in the hello
	// Outbox is the directory of the durable outbox, created if missing. Empty:
	// the outbox is in memory and lost when the process ends.
	Outbox string
	// MaxOutbox bounds the messages waiting for acknowledgement (default
	// 100000); beyond it Send returns ErrOutboxFull.
	MaxOutbox int
	// Window bounds the messages sent and not yet acknowledged (default 64).
	Window int
	// ConnectPerMessage: over TCP, connect, say hello, send one message, wait for
	// its ACK and close, for every message (docs/protocol.md).
	ConnectPerMessage bool
	// AckTimeout: no answer to a hello, or no ACK for an outstanding message,
	// within this long fails the connection; it is retried and the messages are
	// resent (default 5s). Over UDP it caps the per-message retry interval.
	AckTimeout time.Duration
	// MinBackoff and MaxBackoff bound the wait before reconnecting after a
	// failure: exponential with full jitter (defaults 100ms and 30s), reset by a
	// successful hello.
	MinBackoff, MaxBackoff time.Duration
	// MaxMessage is the server's --max-message (default 4096).
	MaxMessage int
	// LocalAddr, if set, is the local IP address to send from.
	LocalAddr string
	Logger    *slog.Logger // default: discard
}

// Stats counts what a Sender did since New.
type Stats struct {
	Queued     int64  // messages accepted by Send
	Loaded     int64  // unacknowledged messages found in the outbox by New
	Sent       int64  // messages transmitted at least once
	Acked      int64  // messages the server confirmed as stored (ACK, or last= in its hello)
	Retried    int64  // retransmissions of messages sent before
	Errors     int64  // messages the server rejected (ERR) and that were dropped
	Reconnects int64  // TCP connection attempts after a failed one
	Pending    int64  // messages in the outbox not yet acknowledged
	LastError  string // the latest connection failure; empty after a successful hello
}

// Sender delivers messages to an inlet server with acknowledgements. Its methods
// are safe for concurrent use.
type Sender struct {
	cfg  Config
	log  *slog.Logger
	boot string
	ob   *outbox
	udp  bool

	ctx     context.Context
	cancel  context.CancelFunc
	wake    chan struct{} // a message became sendable
	stopped chan struct{} // the delivery goroutine ended

	closeOnce sync.Once
	closeErr  error

	queued, loaded, sent, acked, retried, errs, reconnects atomic.Int64

	mu         sync.Mutex
	lastError  string
	logged     time.Time // rate limit for failure logs
	suppressed int
}

// New checks cfg, opens the outbox (reloading what an earlier process left
// unacknowledged) and starts delivering in the background. Close stops it.
func New(cfg Config) (*Sender, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("device", cfg.Device)
	boot := cfg.Boot
	if boot == "" {
		var b [8]byte
		rand.Read(b[:])
		boot = hex.EncodeToString(b[:])
	}
	ob, loaded, err := openOutbox(cfg.Outbox, cfg.Device, boot, cfg.Boot != "", cfg.MaxOutbox, log)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	if loaded > 0 {
		log.Info("inlet client: resending messages left in the outbox", "messages", loaded)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Sender{
		cfg: cfg, log: log, boot: boot, ob: ob, udp: cfg.Network == "udp",
		ctx: ctx, cancel: cancel,
		wake:    make(chan struct{}, 1),
		stopped: make(chan struct{}),
	}
	s.loaded.Store(int64(loaded))
	go s.run()
	return s, nil
}

func (c *Config) setDefaults() error {
	if c.Addr == "" {
		return errors.New("client: config: Addr is required")
	}
	switch c.Network {
	case "":
		c.Network = "tcp"
	case "tcp", "udp":
	default:
		return fmt.Errorf("client: config: Network %q: want tcp or udp", c.Network)
	}
	if !wire.ValidDevice(c.Device) {
		return fmt.Errorf("client: config: Device %q: want 1 to 64 characters of A-Z a-z 0-9 . _ : -", c.Device)
	}
	if c.Boot != "" && !wire.ValidBoot(c.Boot) {
		return fmt.Errorf("client: config: Boot %q: want 1 to 32 characters of A-Z a-z 0-9", c.Boot)
	}
	if c.Boot != "" && c.Outbox == "" {
		return errors.New("client: config: a fixed Boot needs an Outbox to remember its last seq across restarts")
	}
	if c.Token != "" && !wire.ValidToken(c.Token) {
		return errors.New("client: config: Token: want printable ASCII without spaces, at most 256 bytes")
	}
	if c.LocalAddr != "" && net.ParseIP(c.LocalAddr) == nil {
		return fmt.Errorf("client: config: LocalAddr %q: want an IP address", c.LocalAddr)
	}
	if c.ConnectPerMessage && c.Network == "udp" {
		return errors.New("client: config: ConnectPerMessage is for TCP")
	}
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.MaxOutbox, DefaultMaxOutbox)
	def(&c.Window, DefaultWindow)
	def(&c.MaxMessage, DefaultMaxMessage)
	defDur(&c.AckTimeout, DefaultAckTimeout)
	defDur(&c.MinBackoff, DefaultMinBackoff)
	defDur(&c.MaxBackoff, DefaultMaxBackoff)
	if c.MaxBackoff < c.MinBackoff {
		c.MaxBackoff = c.MinBackoff
	}
	return nil
}

// Boot is the boot of the messages this Sender numbers.
func (s *Sender) Boot() string { return s.boot }

// Send puts payload in the outbox under the next seq, which it returns, and
// leaves delivery to the background. With an Outbox directory it returns only
// once the message is on disk (fsync). It never waits for the network: when the
// outbox is full it returns ErrOutboxFull at once. If an fsync of the outbox
// fails, what is on disk is unknown: that Send and every later one fail, while
// the messages already accepted are still delivered.
func (s *Sender) Send(payload []byte) (int64, error) {
	if len(payload) == 0 {
		return 0, fmt.Errorf("%w: empty", ErrBadPayload)
	}
	if s.udp {
		if payload[len(payload)-1] == '\n' {
			return 0, fmt.Errorf("%w: ends in a newline, which the server would strip", ErrBadPayload)
		}
	} else {
		if bytes.IndexByte(payload, '\n') >= 0 {
			return 0, fmt.Errorf("%w: contains a newline, which ends a message over TCP", ErrBadPayload)
		}
		if payload[len(payload)-1] == '\r' {
			return 0, fmt.Errorf("%w: ends in '\\r', which the server would strip", ErrBadPayload)
		}
	}
	seq, gen, err := s.ob.add(bytes.Clone(payload), s.cfg.MaxMessage)
	if err != nil {
		return 0, err
	}
	if err := s.ob.sync(gen); err != nil {
		return 0, fmt.Errorf("client: %w", err)
	}
	s.queued.Add(1)
	s.poke()
	return seq, nil
}

// poke wakes the delivery goroutine.
func (s *Sender) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Flush waits until every message handed to Send before it, and every message
// loaded from the outbox, has been acknowledged, or rejected by the server (see
// Stats.Errors). It returns ctx's error if ctx ends first, ErrClosed if the
// Sender is closed.
func (s *Sender) Flush(ctx context.Context) error {
	target := s.ob.last()
	for {
		done, changed := s.ob.doneThrough(target)
		if done {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		case <-s.stopped:
			return ErrClosed
		}
	}
}

// Close stops delivery and closes the outbox. Messages not yet acknowledged stay
// in it for the next New with the same Outbox. Safe to call more than once.
func (s *Sender) Close() error {
	s.closeOnce.Do(func() {
		s.ob.setClosed()
		s.cancel()
		<-s.stopped
		if err := s.ob.close(); err != nil {
			s.closeErr = fmt.Errorf("client: close: %w", err)
		}
	})
	return s.closeErr
}

// Stats returns the counters so far.
func (s *Sender) Stats() Stats {
	s.mu.Lock()
	last := s.lastError
	s.mu.Unlock()
	return Stats{
		Queued:     s.queued.Load(),
		Loaded:     s.loaded.Load(),
		Sent:       s.sent.Load(),
		Acked:      s.acked.Load(),
		Retried:    s.retried.Load(),
		Errors:     s.errs.Load(),
		Reconnects: s.reconnects.Load(),
		Pending:    int64(s.ob.pending()),
		LastError:  last,
	}
}

// run delivers until Close: one connection (or UDP socket) at a time, for the
// oldest boot with messages waiting, with back-off after failures.
func (s *Sender) run() {
	defer close(s.stopped)
	failures := 0
	for {
		boot, ok := s.ob.firstBoot()
		if !ok {
			select {
			case <-s.wake:
				continue
			case <-s.ctx.Done():
				return
			}
		}
		if failures > 0 {
			s.reconnects.Add(1)
		}
		var greeted bool
		var err error
		if s.udp {
			err = s.udpSession(boot)
			greeted = err == nil
		} else {
			greeted, err = s.tcpSession(boot)
		}
		if s.ctx.Err() != nil {
			return
		}
		if greeted {
			failures = 0
		}
		if err == nil {
			continue
		}
		failures++
		wait := s.backoff(failures)
		s.failed(err, wait)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-s.ctx.Done():
			t.Stop()
			return
		}
	}
}

// backoff is the wait after the n-th failure in a row: a uniform random
// duration up to MinBackoff·2^(n-1), capped at MaxBackoff ("full jitter"), so
// that devices cut off together do not come back together.
func (s *Sender) backoff(n int) time.Duration {
	d := s.cfg.MaxBackoff
	if n < 32 {
		d = min(d, s.cfg.MinBackoff<<(n-1))
	}
	if d <= 0 {
		d = s.cfg.MaxBackoff
	}
	return time.Duration(mrand.Int64N(int64(d) + 1))
}

// jitter returns a duration between d/2 and d, for retry timers.
func jitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	return d/2 + time.Duration(mrand.Int64N(int64(d/2)+1))
}

func (s *Sender) setLastError(msg string) {
	s.mu.Lock()
	s.lastError = msg
	s.mu.Unlock()
}

// failed records and logs a connection failure, at most one log line per 10 s.
func (s *Sender) failed(err error, wait time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastError = err.Error()
	now := time.Now()
	if now.Sub(s.logged) < 10*time.Second {
		s.suppressed++
		s.log.Debug("inlet client: delivery failed", "remote", s.cfg.Addr, "err", err, "retry_in", wait)
		return
	}
	s.log.Warn("inlet client: delivery failed", "remote", s.cfg.Addr, "err", err,
		"retry_in", wait.Round(time.Millisecond), "pending", s.ob.pending(), "suppressed", s.suppressed)
	s.logged, s.suppressed = now, 0
}

// rejected logs a message the server refused (already counted in errs).
func (s *Sender) rejected(boot string, seq int64, reason string) {
	s.log.Warn("inlet client: server rejected a message; dropped", "boot", boot, "seq", seq, "reason", reason)
}
