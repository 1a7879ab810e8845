package listen

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/inletdev/inlet"
	"github.com/inletdev/inlet/tlsserve"
	"github.com/inletdev/inlet/wire"
)

// readBufSize is the read buffer each active connection borrows from a pool.
const readBufSize = 16 << 10

var readBufs = sync.Pool{New: func() any { b := make([]byte, readBufSize); return &b }}

// TCP is the plain-mode TCP listener (docs/protocol.md §1), or, made by
// ListenTLS, the same protocols inside TLS (docs/protocol.md §4).
type TCP struct {
	cfg  Config
	ln   net.Listener
	sink Sink

	// tls, when set, makes every connection TLS: its reader runs the
	// handshake on its own goroutine before anything else.
	tls *tlsserve.Server
	// handshakes ends the handshakes in progress when Close begins: a client
	// still in its handshake has sent no message.
	handshakes    context.Context
	endHandshakes context.CancelFunc
	tlsErrs       limiter
	outside       limiter // connections from outside cfg.Allow
	proto         string  // "tcp" or "tls", for the log

	// The abuse limits (limit.go): new connections per address, messages per
	// device, and their logs.
	connRates   *rates[netip.Addr]
	msgs        *rates[string]
	connLimited limiter
	msgLimited  limiter
	limited     limiter // connections closed by a timeout or evicted

	// hard ends blocked submits when shutdown runs out of time.
	hard     context.Context
	hardStop context.CancelFunc

	mu       sync.Mutex
	closing  atomic.Bool
	drainAt  atomic.Int64 // unix nanoseconds: when draining readers stop, set by Close
	conns    map[*tcpConn]struct{}
	perIP    map[netip.Addr]ipConns
	wg       sync.WaitGroup
	acks     sync.WaitGroup // ack writers of acknowledged connections
	ackConns map[*ackConn]struct{}
	// held maps an IP address to the latest of its connections holding lines
	// it has read and not yet queued: closed once they are queued.
	held       map[netip.Addr]chan struct{}
	holding    atomic.Int64 // connections holding read lines until the queue has room
	framed     atomic.Int64 // messages framed by the TCP readers (for tests: read, queued or not)
	refused    limiter
	acceptErrs limiter
	helloErrs  limiter
	tooLongs   limiter
	quit       chan struct{} // closed by Close: ends an accept back-off
	done       chan struct{} // closed when the accept loop has returned
}

type tcpConn struct {
	net.Conn // after a TLS handshake, the *tlsserve.Conn (set under TCP.mu)
	ip       netip.Addr
	tls      *tlsserve.Conn // a TLS connection once its handshake is done
	raw      net.Conn       // the accepted TCP connection

	// For choosing whom to evict at a connection limit (victimLocked), in unix
	// nanoseconds: the accept, the last read that completed a line (0: none
	// yet), and the start of the line pending (0: none). The reader sets them.
	accepted  int64
	lineAt    atomic.Int64
	pendingAt atomic.Int64
	// prev and next link the connections of one address (TCP.perIP), under TCP.mu.
	prev, next *tcpConn
}

// ListenTCP binds addr ("" is not allowed; the caller skips a disabled listener).
func ListenTCP(addr string, sink Sink, cfg Config) (*TCP, error) {
	cfg.setDefaults()
	// No TCP keep-alive: it costs four setsockopt calls per accepted connection,
	// and the idle timeout already closes connections from vanished devices.
	lc := net.ListenConfig{KeepAlive: -1}
	ln, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		return nil, err
	}
	t := &TCP{
		cfg:         cfg,
		ln:          ln,
		sink:        sink,
		conns:       make(map[*tcpConn]struct{}),
		perIP:       make(map[netip.Addr]ipConns),
		ackConns:    make(map[*ackConn]struct{}),
		held:        make(map[netip.Addr]chan struct{}),
		refused:     limiter{every: 10 * time.Second},
		acceptErrs:  limiter{every: 10 * time.Second},
		helloErrs:   limiter{every: 10 * time.Second},
		tooLongs:    limiter{every: 10 * time.Second},
		outside:     limiter{every: 10 * time.Second},
		proto:       "tcp",
		connRates:   newRates[netip.Addr](cfg.ConnRate, cfg.ConnBurst, maxRateKeys),
		msgs:        newRates[string](cfg.MsgRate, cfg.MsgBurst, maxRateKeys),
		connLimited: limiter{every: 10 * time.Second},
		msgLimited:  limiter{every: 10 * time.Second},
		limited:     limiter{every: 10 * time.Second},
		quit:        make(chan struct{}),
		done:        make(chan struct{}),
	}
	t.hard, t.hardStop = context.WithCancel(context.Background())
	t.handshakes, t.endHandshakes = context.WithCancel(context.Background())
	for _, r := range CloseReasons {
		cfg.Stats.ConnsClosed.Add(r, 0) // exported as zeros from the start
	}
	t.watchAuth()
	return t, nil
}

// ListenTLS binds addr for the protocols of the TCP port (plain lines and
// INLET/1) inside TLS, with srv's certificate (docs/protocol.md §4). The limits
// of cfg apply before the handshake, which runs on the connection's own
// goroutine: the accept loop never waits for one. Handshakes and their
// failures by reason are counted in cfg.Stats (TLSHandshakes,
// TLSHandshakeFailures) and refusals logged at a bounded rate.
func ListenTLS(addr string, srv *tlsserve.Server, sink Sink, cfg Config) (*TCP, error) {
	t, err := ListenTCP(addr, sink, cfg)
	if err != nil {
		return nil, err
	}
	t.tls = srv
	t.proto = "tls"
	t.tlsErrs = limiter{every: 10 * time.Second}
	for _, r := range tlsserve.Reasons {
		t.cfg.Stats.TLSHandshakeFailures.Add(r, 0) // exported as zeros from the start
	}
	return t, nil
}

// Addr is the bound address.
func (t *TCP) Addr() net.Addr { return t.ln.Addr() }

// Serve runs the accept loop until Close.
func (t *TCP) Serve() {
	defer close(t.done)
	var backoff time.Duration
	for {
		c, err := t.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if t.closing.Load() {
				// Past the drain deadline: connections still waiting in the
				// backlog carry lines their clients sent before the shutdown;
				// a listener starved of CPU until now takes them still.
				if n, ok := backlog(t.ln); ok && n > 0 && t.hard.Err() == nil {
					if dl, ok := t.ln.(interface{ SetDeadline(time.Time) error }); ok && dl.SetDeadline(time.Now().Add(50*time.Millisecond)) == nil {
						continue
					}
				}
				return
			}
			// Temporary (EMFILE, ECONNABORTED, ...): back off, 5 ms doubling to 1 s.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			if ok, n := t.acceptErrs.allow(); ok {
				t.cfg.Logger.Warn("tcp: accept failed; backing off", "err", err, "backoff", backoff, "suppressed", n)
			}
			select {
			case <-time.After(backoff):
			case <-t.quit:
				return
			}
			continue
		}
		backoff = 0
		t.admit(c)
	}
}

// admit registers c and starts its reader, or refuses it when over a limit.
// Connections accepted while Close drains the backlog are served too: their
// clients sent before the shutdown.
func (t *TCP) admit(c net.Conn) {
	ra, ok := c.RemoteAddr().(*net.TCPAddr)
	if !ok { // the peer is already gone
		c.Close()
		return
	}
	// A dual-stack listener reports IPv4 peers as ::ffff:a.b.c.d: store them as IPv4.
	ap := netip.AddrPortFrom(ra.AddrPort().Addr().Unmap(), ra.AddrPort().Port())
	ip := ap.Addr()
	if !t.cfg.allowed(ip) {
		c.Close()
		notAllowed(&t.cfg, &t.outside, t.proto+": connection", ap)
		return
	}
	at := time.Now()
	if t.connRates != nil && !t.connRates.allow(rateKey(ip), at.UnixNano()) {
		c.Close()
		t.cfg.Stats.ConnsClosed.Add(ClosedRateLimited, 1)
		if ok, n := t.connLimited.allow(); ok {
			t.cfg.Logger.Warn(t.proto+": connection over --max-conn-rate closed", "remote", ap.String(), "suppressed", n)
		}
		return
	}
	tc := &tcpConn{Conn: c, ip: ip, raw: c, accepted: at.UnixNano()}
	t.mu.Lock()
	over, evicted := t.makeRoomLocked(ip, tc.accepted)
	if over != "" {
		t.mu.Unlock()
		t.evicted(evicted)
		c.Close()
		t.cfg.Stats.Refused.Add(1)
		if ok, n := t.refused.allow(); ok {
			t.cfg.Logger.Warn(t.proto+": connection refused", "remote", ap.String(), "limit", over, "suppressed", n)
		}
		return
	}
	r := &connReader{t: t, tc: tc, remote: ap, device: deviceID(ap.Addr()), fr: wire.Framer{Max: t.cfg.MaxMessage}, inline: true}
	t.conns[tc] = struct{}{}
	t.linkLocked(tc)
	// An earlier connection of this address may hold lines waiting to be
	// queued: this one queues nothing before them.
	r.after = t.held[ip]
	t.wg.Add(1)
	t.mu.Unlock()
	t.evicted(evicted)
	t.cfg.Stats.ConnsAccepted.Add(1)
	t.cfg.Stats.ConnsOpen.Add(1)

	r.emitFn = r.emit
	r.fr.TooLong = r.onTooLong
	if t.tls != nil {
		// The handshake waits on the client: never here.
		r.inline = false
		go r.serveTLS()
		return
	}
	// A connect-per-message device has usually sent its line and FIN before the
	// accept: read that here, in accept order, without starting a goroutine. This
	// keeps one device's messages in the order it sent them and saves the
	// goroutine's cost on the commonest traffic of all. Nothing here waits: when
	// the queue is full, or a hello's answer needs the store, the connection
	// goes on in its own goroutine with what was read.
	if r.readInline() {
		return
	}
	go r.serve()
}

// release closes a connection and frees its place under the limits.
func (t *TCP) release(tc *tcpConn) {
	tc.Close()
	t.mu.Lock()
	t.dropLocked(tc)
	t.mu.Unlock()
	t.cfg.Stats.ConnsOpen.Add(-1)
}

// dropLocked frees tc's place under the limits, once (an evicted connection's
// was freed when it was evicted).
func (t *TCP) dropLocked(tc *tcpConn) {
	if _, ok := t.conns[tc]; !ok {
		return
	}
	delete(t.conns, tc)
	t.unlinkLocked(tc)
}

// connReader frames one connection's bytes and hands its messages to the sink.
// The first line decides the mode: a hello (INLET/1) makes it acknowledged.
type connReader struct {
	t      *TCP
	tc     *tcpConn
	remote netip.AddrPort
	device string
	fr     wire.Framer
	emitFn func([]byte)
	msgs   []inlet.Message
	arena  []byte // payload bytes of one read's messages, owned by the sink after submit
	readN  int

	started bool     // the first line has been seen
	ac      *ackConn // acknowledged mode: the connection's ack writer
	hello   wire.Hello
	refuse  string // a hello to refuse with this reason; the reader then stops

	// inline: the reader runs on the accept goroutine, where nothing may wait.
	// What cannot be done at once is held for the connection's own goroutine:
	// messages the queue has no room for, the answer to a hello that needs the
	// store (needDurable), and the end of a stream read to its end (ended).
	inline      bool
	held        bool
	needDurable bool
	ended       bool
	// after, when set, is closed once the connection from the same address
	// whose lines were read before this one's has queued them: until then this
	// one queues nothing, so that a connect-per-message device's next line
	// never overtakes the one before. queued is this connection's own while it
	// holds lines (see hold).
	after  chan struct{}
	queued chan struct{}

	// The line deadlines (limit.go), with the times in tc: lines counts the
	// lines framed, why is the reason to count if the current deadline passes.
	lines    int
	why      string
	fed      bool // a read was fed since setDeadline last ran
	fedLines bool // and it completed lines
	// overRate: a message of this acknowledged connection went over
	// --max-msg-rate; it and everything after it are dropped unacknowledged,
	// and the connection closes once the messages before it are acknowledged.
	overRate bool
}

func (r *connReader) emit(line []byte) {
	r.lines++
	if !r.started {
		r.started = true
		if wire.IsHello(line) {
			r.startAcked(line)
			return
		}
	}
	if r.refuse != "" {
		return
	}
	if r.overRate {
		r.t.cfg.Stats.RateLimited.Add(1)
		return
	}
	device := r.device
	if r.ac != nil {
		device = r.hello.Device
	}
	if r.t.cfg.overRate(r.t.msgs, &r.t.msgLimited, r.t.proto, device) {
		// Plain: dropped. Acknowledged: never an ACK past a dropped message,
		// so the connection takes nothing more and closes after its ACKs; the
		// device resends on its next connection.
		r.overRate = r.ac != nil
		return
	}
	var seq int64
	boot := ""
	var acker inlet.Acker
	if r.ac != nil {
		var err error
		seq, line, err = wire.ParseMessage(line)
		if err != nil {
			r.t.cfg.Stats.SeqErrors.Add(1)
			r.ac.reject(0, "bad-seq")
			return
		}
		boot, acker = r.hello.Boot, r.ac
	}
	if r.arena == nil {
		r.arena = make([]byte, 0, max(r.readN, len(line)))
	}
	start := len(r.arena)
	r.arena = append(r.arena, line...)
	r.msgs = append(r.msgs, inlet.Message{
		Device: device, Transport: inlet.TCP, Remote: r.remote, Boot: boot, Seq: seq, Ack: acker,
		Payload: r.arena[start:len(r.arena):len(r.arena)],
	})
}

// feed frames p and queues its messages; false means the connection must end
// (the sink refused them, or a hello was refused).
func (r *connReader) feed(p []byte) bool {
	r.readN = len(p)
	n0, lines0 := len(r.msgs), r.lines
	k := r.fr.Feed(p, r.emitFn)
	if k > 0 {
		tooLong(&r.t.cfg, &r.t.tooLongs, "tcp", r.device, k)
	}
	if lines := k > 0 || r.lines != lines0; r.inline {
		r.progress(r.tc.accepted, lines) // read at once after the accept
	} else {
		r.fed, r.fedLines = true, r.fedLines || lines // noted by setDeadline, which reads the clock anyway
	}
	r.t.framed.Add(int64(len(r.msgs) - n0))
	if r.refuse != "" {
		return false
	}
	if r.overRate {
		r.fr.Reset() // the rest is not taken: no truncated tail either
		r.submit()   // what came before the limit is acknowledged
		return false
	}
	return r.submit()
}

// submit queues the messages framed so far. On the accept goroutine (inline)
// it never waits: when the queue has no room, or an earlier connection from
// the same address still holds lines, or the hello's answer needs the store,
// it holds them for the connection's own goroutine.
func (r *connReader) submit() bool {
	if len(r.msgs) == 0 {
		return true
	}
	if r.after != nil && !isClosed(r.after) {
		r.hold() // behind an earlier connection's lines
	}
	if r.inline && (r.held || r.needDurable) {
		r.hold()
		return true
	}
	if !r.inline {
		r.waitTurn()
	}
	compact(r.msgs, r.arena)
	n, bytes := len(r.msgs), len(r.arena)
	if r.ac != nil {
		r.ac.expect(n)
	}
	ok, err := r.t.sink.TrySubmit(r.msgs)
	if !ok && err == nil {
		// The queue is full.
		r.hold()
		if r.inline {
			if r.ac != nil {
				r.ac.expect(-n)
			}
			return true
		}
		r.waitTurn()
		err = r.t.sink.Submit(r.t.hard, r.msgs)
	}
	r.held = false
	clear(r.msgs)
	r.msgs, r.arena = r.msgs[:0], nil
	r.ordered()
	if err != nil {
		if r.ac != nil {
			r.ac.expect(-n) // never to be acknowledged
		}
		r.t.cfg.Logger.Warn("tcp: messages not queued at shutdown", "remote", r.remote.String(), "messages", n, "err", err)
		return false
	}
	r.t.cfg.Stats.MessagesTCP.Add(int64(n))
	r.t.cfg.Stats.BytesTCP.Add(int64(bytes))
	return true
}

// waitTurn waits, in the connection's own goroutine, until the connection from
// the same address whose lines were read before this one's has queued them.
func (r *connReader) waitTurn() {
	if r.after == nil {
		return
	}
	select {
	case <-r.after:
	case <-r.t.hard.Done():
	}
	r.after = nil
}

// hold keeps the framed messages for later (the connection's own goroutine, or
// room in the queue), and makes the next connection from the same address wait
// for them: lines already read keep their order per address.
func (r *connReader) hold() {
	r.held = true
	if r.queued != nil && !isClosed(r.queued) {
		return
	}
	r.queued = make(chan struct{})
	r.t.holding.Add(1)
	r.t.mu.Lock()
	if prev := r.t.held[r.tc.ip]; prev != nil {
		r.after = prev // the latest holder: it waits for any earlier one
	}
	r.t.held[r.tc.ip] = r.queued
	r.t.mu.Unlock()
}

// ordered lets the next connection from the same address queue its lines.
func (r *connReader) ordered() {
	if r.queued == nil || isClosed(r.queued) {
		return
	}
	close(r.queued)
	r.t.holding.Add(-1)
	r.t.mu.Lock()
	if r.t.held[r.tc.ip] == r.queued {
		delete(r.t.held, r.tc.ip)
	}
	r.t.mu.Unlock()
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// resume does, in the connection's own goroutine, what the accept goroutine
// held: answer the hello from the store, then queue the held messages,
// waiting for room. It reports false when the connection must end.
func (r *connReader) resume() bool {
	r.inline = false
	if r.needDurable {
		r.needDurable = false
		r.ac.answerHello(r.t.sink.Durable(r.hello.Device, r.hello.Boot))
	}
	r.held = false
	return r.submit()
}

// finish ends the stream (keeping the tail on a clean close), queues the rest and
// releases the connection. On the accept goroutine it reports false when what
// remains is held: the connection's own goroutine then queues it and closes.
func (r *connReader) finish(clean bool) bool {
	n0 := len(r.msgs)
	// In acknowledged mode a message is a whole line: a "<seq> <payload>" cut
	// off by a close (a proxy or a WiFi drop ending the stream mid-line) is not
	// stored, or it would be acknowledged and its full resend taken for a
	// duplicate. Plain mode keeps the tail a sketch sends before closing.
	truncated, long := r.fr.End(clean && r.ac == nil, r.emitFn)
	r.t.framed.Add(int64(len(r.msgs) - n0))
	if truncated {
		r.t.cfg.Stats.Truncated.Add(1)
	}
	if long {
		tooLong(&r.t.cfg, &r.t.tooLongs, "tcp", r.device, 1)
	}
	if r.refuse == "" {
		r.submit()
	}
	if r.inline && r.needDurable {
		r.hold() // a hello with no message after it: answered from the reader's goroutine
	}
	if r.held {
		r.ended = true
		return false
	}
	r.close()
	return true
}

// close releases the connection once its reader has finished: a refused hello
// is answered, an acknowledged connection closes when its last ACK is written.
func (r *connReader) close() {
	r.ordered()
	r.t.wg.Done()
	switch {
	case r.refuse != "":
		r.tc.SetWriteDeadline(time.Now().Add(time.Second))
		r.tc.Write(wire.AppendHelloErr(nil, r.refuse))
		r.t.release(r.tc)
	case r.ac != nil:
		r.ac.readerDone() // the ack writer closes once everything is acknowledged
	default:
		r.t.release(r.tc)
	}
}

// readInline reads whatever the socket already holds without waiting. It reports
// true when the connection is finished (EOF or error) and released.
func (r *connReader) readInline() bool {
	bp := readBufs.Get().(*[]byte)
	defer readBufs.Put(bp)
	for range 4 {
		n, eof, err := readNow(r.tc.Conn, *bp)
		switch {
		case n > 0:
			if !r.feed((*bp)[:n]) {
				return r.finish(false)
			}
			if r.held {
				return false
			}
		case eof:
			return r.finish(true)
		case errors.Is(err, os.ErrDeadlineExceeded):
			// Close has set the drain deadline since the accept: the
			// connection's goroutine takes what the socket holds.
			return false
		case err != nil:
			return r.finish(false)
		default: // nothing more yet
			return false
		}
	}
	return false
}

// serveTLS runs the TLS handshake, then serves the connection as serve does.
func (r *connReader) serveTLS() {
	t := r.t
	// The handshake counts toward the first-line timeout.
	timeout := min(tlsserve.HandshakeTimeout, time.Until(time.Unix(0, r.tc.accepted).Add(t.cfg.FirstLineTimeout)))
	tc, err := t.tls.Handshake(t.handshakes, r.tc.Conn, max(timeout, time.Millisecond))
	if err != nil {
		reason := tlsserve.Reason(err)
		t.cfg.Stats.TLSHandshakeFailures.Add(reason, 1)
		if t.closing.Load() && reason == tlsserve.ReasonClosed {
			t.cfg.Logger.Debug("tls: handshake ended by shutdown", "remote", r.remote.String())
		} else if ok, n := t.tlsErrs.allow(); ok {
			t.cfg.Logger.Warn("tls: handshake failed", "remote", r.remote.String(), "reason", reason, "err", err, "suppressed", n)
		}
		r.finish(false) // Handshake has closed the connection
		return
	}
	t.cfg.Stats.TLSHandshakes.Add(1)
	t.mu.Lock()
	r.tc.Conn, r.tc.tls = tc, tc // Close sets deadlines on it under t.mu
	t.mu.Unlock()
	r.serve() // sets the idle or drain deadline the handshake cleared
}

// wait blocks until the connection has bytes to read (see waitReadable), for
// TLS until a record of application data has come.
func (r *connReader) wait() error {
	if r.tc.tls != nil {
		return r.tc.tls.Wait()
	}
	return waitReadable(r.tc.Conn)
}

// serve reads the connection until EOF, error, idle timeout or shutdown. It
// borrows a read buffer only once bytes are waiting, so idle connections hold none.
func (r *connReader) serve() {
	if r.inline {
		// Handed over by the accept goroutine, maybe with held work.
		ok := r.resume()
		switch {
		case r.ended:
			r.close()
			return
		case !ok:
			r.finish(false)
			return
		}
	}
	for {
		r.setDeadline()
		if err := r.wait(); err != nil {
			// Idle timeout, shutdown drain, or the connection broke. At the
			// drain deadline, what the client sent before it is still taken:
			// a reader starved of CPU until then must not leave it unread.
			if errors.Is(err, os.ErrDeadlineExceeded) {
				if r.t.closing.Load() {
					if r.readRest() {
						return
					}
				} else {
					r.t.closedBy(r.why, r.remote.String())
				}
			}
			// A TLS connection's Wait meets the client's close_notify (io.EOF):
			// a clean end, whose tail is kept as at a TCP FIN.
			r.finish(errors.Is(err, io.EOF))
			return
		}
		bp := readBufs.Get().(*[]byte)
		n, err := r.tc.Read(*bp)
		ok := n == 0 || r.feed((*bp)[:n]) // feed copies what it keeps
		readBufs.Put(bp)
		if !ok {
			r.finish(false)
			return
		}
		if err != nil {
			if n == 0 && errors.Is(err, os.ErrDeadlineExceeded) {
				// The deadline came between the wait and the read.
				if r.t.closing.Load() {
					if r.readRest() {
						return
					}
				} else {
					r.t.closedBy(r.why, r.remote.String())
				}
			}
			r.finish(errors.Is(err, io.EOF))
			return
		}
	}
}

// readRest reads, once the drain deadline has passed, what the socket already
// holds, without waiting for more, and queues it: a connect-per-message
// device's line and its FIN. A read that fills the buffer is the last: the
// client is still streaming, and is cut as at any drain deadline (its socket
// may hold megabytes, and shutdown must stay prompt). It reports true when the
// stream ended and the connection is finished.
func (r *connReader) readRest() bool {
	// readNow never waits, and a deadline would stop it. Under t.mu: Close sets
	// every connection's drain deadline under it, and must not set this one's
	// again after.
	r.t.mu.Lock()
	r.tc.SetReadDeadline(time.Time{})
	r.t.mu.Unlock()
	bp := readBufs.Get().(*[]byte)
	defer readBufs.Put(bp)
	for range 64 { // a client trickling bytes as fast as they are read is cut too
		n, eof, _ := readNow(r.tc.Conn, *bp)
		switch {
		case n > 0:
			if !r.feed((*bp)[:n]) {
				r.finish(false)
				return true
			}
			if n == len(*bp) {
				return false
			}
		case eof:
			r.finish(true)
			return true
		default: // nothing more, or an error: the caller finishes
			return false
		}
	}
	return false
}

// setDeadline gives the next read its deadline: the idle, line or first-line
// timeout (deadline), or the drain deadline once shutdown has begun. It checks
// closing after setting, so a Close that ran in between is not overwritten
// (Close sets closing first).
func (r *connReader) setDeadline() {
	t, tc := r.t, r.tc
	if !t.closing.Load() {
		now := time.Now()
		if r.fed {
			r.progress(now.UnixNano(), r.fedLines)
			r.fed, r.fedLines = false, false
		}
		var dl time.Time
		dl, r.why = r.deadline(now)
		tc.SetReadDeadline(dl)
		if !t.closing.Load() {
			return
		}
	}
	// The drain deadline is fixed: a client that keeps sending cannot extend it.
	tc.SetReadDeadline(time.Unix(0, t.drainAt.Load()))
}

// Close stops accepting, lets every connection read what its client already sent
// (up to DrainTimeout), waits for the readers to queue it, and closes them. If ctx
// ends first, blocked readers give up their messages.
func (t *TCP) Close(ctx context.Context) error {
	drain := time.Now().Add(t.cfg.DrainTimeout)
	t.mu.Lock()
	if t.closing.Load() {
		t.mu.Unlock()
		<-t.done
		return nil
	}
	t.drainAt.Store(drain.UnixNano())
	t.closing.Store(true)
	close(t.quit)
	t.endHandshakes()
	// Keep accepting until the drain deadline: connections already in the backlog
	// carry messages their clients consider sent.
	if dl, ok := t.ln.(interface{ SetDeadline(time.Time) error }); !ok || dl.SetDeadline(drain) != nil {
		t.ln.Close()
	}
	for c := range t.conns {
		c.SetReadDeadline(drain)
	}
	t.mu.Unlock()
	var err error
	select {
	case <-t.done:
	case <-ctx.Done():
		t.hardStop()
		<-t.done
		err = ctx.Err()
	}
	t.ln.Close()
	waited := make(chan struct{})
	go func() { t.wg.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-ctx.Done():
		t.hardStop()
		<-waited
		err = ctx.Err()
	}
	t.hardStop()
	t.endHandshakes()
	return err
}
