package listen

import (
	"math"
	"net/netip"
	"sync"
	"time"
)

// Limits are the abuse limits of the listeners (docs/security.md, Limits).
type Limits struct {
	// LineTimeout bounds how long one line may take from its first byte to its
	// '\n' (--line-timeout): a client trickling bytes cannot hold a
	// connection by sending one now and then.
	LineTimeout time.Duration
	// FirstLineTimeout bounds how long a connection may live, TLS handshake
	// included, before its first line is complete (--first-line-timeout).
	FirstLineTimeout time.Duration
	// ConnRate is how many new TCP connections per second one IP address
	// (IPv6: one /64) may open on one listener, with bursts of ConnBurst
	// (--max-conn-rate, --max-conn-burst). More are closed at once, unread.
	// 0: no limit (a zero Config field keeps it off).
	ConnRate  float64
	ConnBurst int
	// MsgRate is how many messages per second one device (plain: its IP
	// address; INLET/1: the hello's id) may send on one listener, with bursts
	// of MsgBurst (--max-msg-rate, --max-msg-burst). 0: no limit.
	MsgRate  float64
	MsgBurst int
}

// burst is the burst of a rate: b, or twice the rate when b is 0.
func burst(rate float64, b int) float64 {
	if b > 0 {
		return float64(b)
	}
	return max(1, math.Ceil(2*rate))
}

// Reasons a TCP or TLS connection is closed by a limit, the label values of
// inlet.Stats.ConnsClosed (inlet_connections_closed_total{reason}).
const (
	ClosedRateLimited = "rate_limited"       // over --max-conn-rate: closed at accept, unread
	ClosedFirstLine   = "first_line_timeout" // no complete line within --first-line-timeout of the accept
	ClosedLine        = "line_timeout"       // a line not complete within --line-timeout of its first byte
	ClosedIdle        = "idle_timeout"       // nothing within --idle-timeout
	ClosedEvicted     = "evicted"            // the slowest connection, closed to admit a new one at a connection limit
)

// CloseReasons lists every reason of Stats.ConnsClosed, for metrics that show zeros.
var CloseReasons = []string{ClosedRateLimited, ClosedFirstLine, ClosedLine, ClosedIdle, ClosedEvicted}

// maxRateKeys bounds a rate table: past it, keys not in the table share one
// bucket (see rates.allow).
const maxRateKeys = 16384

// bucket is a token bucket: tokens at the time last (nanoseconds).
type bucket struct {
	tokens float64
	last   int64
}

// rates is a token bucket per key, bounded in memory: a bucket that has
// refilled is the same as no bucket, so it is dropped when the table is full;
// when nothing can be dropped (a flood from more than maxRateKeys addresses
// within one refill time), new keys share one overflow bucket, so that such a
// flood is limited as one sender instead of growing the table.
type rates[K comparable] struct {
	mu        sync.Mutex
	rate      float64 // tokens per nanosecond
	burst     float64
	fill      int64 // nanoseconds for an empty bucket to refill
	max       int
	m         map[K]bucket
	overflow  bucket
	nextSweep int64
}

// newRates returns nil (no limit) for a rate of 0.
func newRates[K comparable](perSecond float64, burstN int, maxKeys int) *rates[K] {
	if perSecond <= 0 {
		return nil
	}
	b := burst(perSecond, burstN)
	r := &rates[K]{rate: perSecond / 1e9, burst: b, max: maxKeys, m: make(map[K]bucket)}
	r.fill = int64(math.Ceil(b / r.rate))
	r.overflow.tokens = b
	return r
}

// refill brings b to now.
func (r *rates[K]) refill(b *bucket, now int64) {
	if now > b.last {
		b.tokens = min(r.burst, b.tokens+float64(now-b.last)*r.rate)
		b.last = now
	}
}

// allow takes a token for k at now (nanoseconds), reporting false when its
// bucket is empty. It never waits on anything but the table's lock.
func (r *rates[K]) allow(k K, now int64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	b, ok := r.m[k]
	switch {
	case ok:
		r.refill(&b, now)
	case len(r.m) < r.max || r.sweep(now):
		b = bucket{tokens: r.burst, last: now}
	default:
		r.refill(&r.overflow, now)
		if r.overflow.tokens < 1 {
			return false
		}
		r.overflow.tokens--
		return true
	}
	if b.tokens < 1 {
		r.m[k] = b
		return false
	}
	b.tokens--
	r.m[k] = b
	return true
}

// ready reports whether k has a token, without taking it.
func (r *rates[K]) ready(k K, now int64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	b, ok := r.m[k]
	if !ok {
		return true // a new key, or the overflow's: allow decides
	}
	r.refill(&b, now)
	return b.tokens >= 1
}

// sweep drops the buckets that have refilled, at most once per half refill
// time (a sweep walks the whole table), and reports whether there is room.
func (r *rates[K]) sweep(now int64) bool {
	if now < r.nextSweep {
		return false
	}
	r.nextSweep = now + max(r.fill/2, int64(100*time.Millisecond))
	for k, b := range r.m {
		if now-b.last >= r.fill {
			delete(r.m, k)
		}
	}
	return len(r.m) < r.max
}

// len is the number of keys held.
func (r *rates[K]) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.m)
}

// rateKey is the key of a connecting address: IPv4 as it is, IPv6 by its /64
// (one host commonly holds a whole /64).
func rateKey(ip netip.Addr) netip.Addr {
	if ip.Is4() {
		return ip
	}
	p, _ := ip.Prefix(64)
	return p.Addr()
}

// now is the clock of the limits, in nanoseconds.
func now() int64 { return time.Now().UnixNano() }

// evictGrace is how long a connection may be without progress before it can be
// evicted for a newcomer: a device that has just connected gets to send.
const evictGrace = time.Second

// makeRoomLocked makes room, under t.mu, for a connection from ip accepted
// at (unix nanoseconds) by evicting the connections longest without progress
// (victimLocked). It returns the limit that refuses the newcomer ("" when
// there is room) and the remote addresses of the connections it evicted, for
// evicted to count once t.mu is released.
func (t *TCP) makeRoomLocked(ip netip.Addr, at int64) (over string, evicted []string) {
	for {
		perIP := false
		switch {
		case t.perIP[ip].n >= t.cfg.MaxConnsPerIP:
			perIP = true // one of ip's own makes room under both limits
		case len(t.conns) >= t.cfg.MaxConns:
		default:
			return "", evicted
		}
		v := t.victimLocked(ip, perIP, at)
		if v == nil {
			if perIP {
				return "max-conns-per-ip", evicted
			}
			return "max-conns", evicted
		}
		t.evictLocked(v)
		evicted = append(evicted, v.raw.RemoteAddr().String())
	}
}

// evicted counts and logs the connections makeRoomLocked closed.
func (t *TCP) evicted(remotes []string) {
	for _, r := range remotes {
		t.closedBy(ClosedEvicted, r)
	}
}

// ipConns are the open connections of one address: how many, and a list of
// them through tcpConn.prev and next.
type ipConns struct {
	n    int
	head *tcpConn
}

// linkLocked counts c under its address, under t.mu.
func (t *TCP) linkLocked(c *tcpConn) {
	l := t.perIP[c.ip]
	c.prev, c.next = nil, l.head
	if l.head != nil {
		l.head.prev = c
	}
	l.head = c
	l.n++
	t.perIP[c.ip] = l
}

// unlinkLocked undoes linkLocked.
func (t *TCP) unlinkLocked(c *tcpConn) {
	l := t.perIP[c.ip]
	if l.n--; l.n <= 0 {
		delete(t.perIP, c.ip)
	} else {
		if c.prev != nil {
			c.prev.next = c.next
		} else {
			l.head = c.next
		}
		if c.next != nil {
			c.next.prev = c.prev
		}
		t.perIP[c.ip] = l
	}
	c.prev, c.next = nil, nil
}

// maxVictimScan bounds how many open connections one newcomer at --max-conns
// looks at: a sample (a map's walk starts at a random place), so that a
// flood at the limit does not cost a walk of every connection per newcomer.
const maxVictimScan = 128

// victimLocked picks, under t.mu, the connection to close so that a
// newcomer from ip fits under the limit over: the one longest without
// progress, preferring connections with no complete line or with a line
// pending over idle ones that have sent lines. For max-conns-per-ip only ip's
// connections count (all of them); for max-conns a sample of up to
// maxVictimScan. It returns nil when every candidate made progress within
// evictGrace.
func (t *TCP) victimLocked(ip netip.Addr, perIP bool, now int64) *tcpConn {
	var best *tcpConn
	bestIdle, bestSince := true, int64(math.MaxInt64)
	limit := now - int64(evictGrace)
	consider := func(c *tcpConn) {
		idle, since := c.stall()
		if since > limit {
			return
		}
		if best == nil || (!idle && bestIdle) || (idle == bestIdle && since < bestSince) {
			best, bestIdle, bestSince = c, idle, since
		}
	}
	if perIP {
		for c := t.perIP[ip].head; c != nil; c = c.next {
			consider(c)
		}
		return best
	}
	n := 0
	for c := range t.conns {
		consider(c)
		if n++; n >= maxVictimScan {
			break
		}
	}
	return best
}

// stall reports since when c has made no progress: idle is true when it has
// completed lines and has none pending (a quiet device), false when it has
// never completed one or has one pending (trickling, or still in its TLS
// handshake).
func (c *tcpConn) stall() (idle bool, since int64) {
	line, pending := c.lineAt.Load(), c.pendingAt.Load()
	switch {
	case line == 0:
		return false, c.accepted
	case pending != 0:
		return false, pending
	}
	return true, line
}

// evictLocked closes c, under t.mu, to make room: its place is freed now, not
// when its reader notices.
func (t *TCP) evictLocked(c *tcpConn) {
	t.dropLocked(c)
	c.raw.Close() // the TCP socket: closing a TLS connection could wait to write an alert
}

// closedBy counts and logs, at a bounded rate, a connection closed by a limit.
func (t *TCP) closedBy(reason string, remote string) {
	t.cfg.Stats.ConnsClosed.Add(reason, 1)
	if ok, n := t.limited.allow(); ok {
		t.cfg.Logger.Warn(t.proto+": connection closed by a limit", "remote", remote, "reason", reason, "suppressed", n)
	}
}

// deadline is the read deadline of the connection at now, after a read, and
// the reason to count when it passes: the idle timeout since the last byte
// (since the last line when none is pending, so empty lines do not count),
// capped by the first-line timeout until a line is complete and by the line
// timeout while one is pending. The times are the tcpConn's, which only the
// reader sets.
func (r *connReader) deadline(now time.Time) (time.Time, string) {
	cfg, tc := &r.t.cfg, r.tc
	dl, why := now.Add(cfg.IdleTimeout), ClosedIdle
	pending := r.fr.Pending()
	if line := tc.lineAt.Load(); !pending && line != 0 {
		dl = time.Unix(0, line).Add(cfg.IdleTimeout)
	}
	if pending {
		if d := time.Unix(0, tc.pendingAt.Load()).Add(cfg.LineTimeout); d.Before(dl) {
			dl, why = d, ClosedLine
		}
	}
	if !r.started {
		if d := time.Unix(0, tc.accepted).Add(cfg.FirstLineTimeout); d.Before(dl) {
			dl, why = d, ClosedFirstLine
		}
	}
	return dl, why
}

// progress notes, after feeding one read at now (unix nanoseconds), whether it
// completed lines and whether a line is pending, for the deadlines and for
// eviction.
func (r *connReader) progress(now int64, lines bool) {
	tc := r.tc
	if lines {
		tc.lineAt.Store(now)
	}
	switch {
	case !r.fr.Pending():
		if tc.pendingAt.Load() != 0 {
			tc.pendingAt.Store(0)
		}
	case lines || tc.pendingAt.Load() == 0:
		tc.pendingAt.Store(now) // a new line has begun in this read
	}
}

// overRate reports whether a message of device is over --max-msg-rate; it
// counts and logs (at a bounded rate) the ones that are.
func (c *Config) overRate(m *rates[string], l *limiter, transport, device string) bool {
	if m == nil || m.allow(device, now()) {
		return false
	}
	c.Stats.RateLimited.Add(1)
	if ok, n := l.allow(); ok {
		c.Logger.Warn(transport+": message over --max-msg-rate dropped", "device", device, "suppressed", n)
	}
	return true
}

// helloOverRate reports whether device has no message left under --max-msg-rate,
// for its hello to be refused "busy" (the device retries later); counted as
// rate_limited and logged at a bounded rate.
func (r *connReader) helloOverRate(device string) bool {
	t := r.t
	if t.msgs == nil || t.msgs.ready(device, now()) {
		return false
	}
	t.cfg.Stats.RateLimited.Add(1)
	if ok, n := t.msgLimited.allow(); ok {
		t.cfg.Logger.Warn(t.proto+": hello over --max-msg-rate refused busy", "device", device, "remote", r.remote.String(), "suppressed", n)
	}
	return true
}
