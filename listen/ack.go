package listen

import (
	"context"
	"sync"
	"time"

	"github.com/inletdev/inlet/wire"
)

// maxPendingOut bounds what an acknowledged connection may owe its client (ERR
// lines, mostly): a client that stops reading is dropped at this point.
const maxPendingOut = 64 << 10

// onTooLong names a discarded over-long line: a hello is refused, an
// acknowledged message answered "ERR <seq> too-long".
func (r *connReader) onTooLong(head []byte) {
	if !r.started {
		r.started = true
		if wire.IsHello(head) {
			r.refuse = "bad-hello"
			r.t.cfg.Stats.HelloErrors.Add(1)
		}
		return
	}
	if r.ac != nil {
		seq, _ := wire.SeqPrefix(head)
		r.ac.reject(seq, "too-long")
	}
}

// startAcked answers a hello line and puts the connection in acknowledged mode
// (docs/protocol.md §2), or marks the hello to be refused. The token check
// (Auth.Check) never waits, so this runs on the accept goroutine too.
func (r *connReader) startAcked(line []byte) {
	h, err := wire.ParseHello(line)
	var cause string
	var g *grant
	switch {
	case err != nil:
		r.refuse = "bad-hello"
	case r.t.closing.Load():
		r.refuse = "busy"
	default:
		if cause, g = r.t.cfg.Auth.Check(r.remote.Addr(), h.Device, h.Token); cause != "" {
			r.refuse = "unauthorized"
		} else if r.helloOverRate(h.Device) { // over --max-msg-rate: come back later
			r.refuse = "busy"
		}
	}
	if r.refuse != "" {
		r.t.cfg.Stats.HelloErrors.Add(1)
		if ok, n := r.t.helloErrs.allow(); ok {
			args := []any{"remote", r.remote.String(), "reason", r.refuse}
			if cause != "" {
				args = append(args, "device", h.Device, "cause", cause) // never the token
			}
			r.t.cfg.Logger.Warn(r.t.proto+": hello refused", append(args, "suppressed", n)...)
		}
		return
	}
	r.hello = h
	r.t.cfg.Stats.AckedConns.Add(1)
	r.ac = newAckConn(r.t, r.tc)
	if r.t.cfg.Auth.perDevice {
		r.ac.grant = g
	}
	if !r.inline {
		r.ac.out = wire.AppendOK(r.ac.out, r.t.sink.Durable(h.Device, h.Boot))
	} else if d, ok := r.t.sink.KnownDurable(h.Device, h.Boot); ok {
		r.ac.out = wire.AppendOK(r.ac.out, d)
	} else {
		// The answer needs the store, which the accept goroutine must not wait
		// on: the reader's own goroutine answers (resume), and the ack writer
		// writes nothing before it.
		r.needDurable = true
		r.ac.helloPending = true
	}
	r.t.mu.Lock()
	r.t.ackConns[r.ac] = struct{}{}
	r.t.mu.Unlock()
	r.t.acks.Add(1) // done when the connection is released
	// Tokens that changed since the check may have missed this connection in
	// recheckAuth (it was not registered yet): check it again against them.
	if r.ac.grant != nil && !r.t.cfg.Auth.still(r.ac.grant) {
		r.t.closeRevoked(r.ac)
	}
	r.ac.kick()
}

// watchAuth has the listener recheck its acknowledged connections whenever
// the device tokens change.
func (t *TCP) watchAuth() {
	if t.cfg.Auth.perDevice {
		t.cfg.Auth.onChange(t.recheckAuth)
	}
}

// recheckAuth closes every acknowledged connection whose hello the tokens in
// force now would refuse: its device's token was revoked or replaced. Messages
// it sent and that were queued are stored; those not yet acknowledged get no
// ACK (the device resends them, and is refused).
func (t *TCP) recheckAuth() {
	// Copied under the lock, checked outside it: the accept loop takes it too.
	t.mu.Lock()
	conns := make([]*ackConn, 0, len(t.ackConns))
	for a := range t.ackConns {
		if a.grant != nil {
			conns = append(conns, a)
		}
	}
	t.mu.Unlock()
	for _, a := range conns {
		if !t.cfg.Auth.still(a.grant) {
			t.closeRevoked(a)
		}
	}
}

// closeRevoked drops an authenticated connection whose token is no longer valid.
func (t *TCP) closeRevoked(a *ackConn) {
	a.mu.Lock()
	if a.revoked {
		a.mu.Unlock()
		return
	}
	a.revoked = true
	a.mu.Unlock()
	t.cfg.Stats.AuthFailures.Add(AuthConnClosed, 1)
	if ok, n := t.cfg.Auth.closeLog.allow(); ok {
		t.cfg.Logger.Warn(t.proto+": connection closed: its device's token was revoked or replaced",
			"remote", a.tc.RemoteAddr().String(), "device", a.grant.device, "suppressed", n)
	}
	a.abort()
}

// ackConn writes one acknowledged connection's answers: the hello's OK, ERR lines
// and cumulative ACKs, coalesced, from a goroutine of its own, so that a client
// that does not read its acks stalls nobody: past a write deadline or
// maxPendingOut it is dropped. It closes the connection once the reader is done
// and every message the reader queued has been acknowledged.
//
// The writer goroutine runs only while there is something to write: it starts
// when an answer is owed and ends when it has written everything, so that an
// idle acknowledged connection costs one goroutine (its reader), not two. At
// most one runs at a time (running), which keeps the answers in order.
type ackConn struct {
	t  *TCP
	tc *tcpConn

	mu          sync.Mutex
	out         []byte // owed to the client, not yet written
	ack         int64  // the latest acknowledged seq not yet written; 0: none
	outstanding int    // messages queued and not yet acknowledged
	done        bool   // the reader has finished
	failed      bool   // the client is gone or not reading: stop writing
	running     bool   // a writer goroutine is running; it clears this under mu as it ends
	// helloPending: the hello's OK is not known yet (the store is being read);
	// nothing is written before it.
	helloPending bool
	// released: the connection has been released, once and for all. No writer
	// starts after it, so a late Acked (or any kick) cannot release it twice.
	released bool

	closed bool // the writer closed the connection; only the running writer touches it

	// grant, with per-device tokens, is what the hello was granted on, for
	// recheckAuth; revoked: closed for it (under mu).
	grant   *grant
	revoked bool
}

func newAckConn(t *TCP, tc *tcpConn) *ackConn {
	return &ackConn{t: t, tc: tc}
}

// kick starts the writer unless it is running. Call it after changing what
// the writer looks at, without holding mu.
func (a *ackConn) kick() {
	a.mu.Lock()
	start := a.startLocked()
	a.mu.Unlock()
	if start {
		go a.run()
	}
}

// startLocked reports whether the caller is to start the writer goroutine:
// none is running and the connection has not been released.
func (a *ackConn) startLocked() bool {
	if a.running || a.released {
		return false
	}
	a.running = true
	return true
}

// Acked is called by the commit writer, in stream order, after the batch holding
// the message has committed. It must not block.
func (a *ackConn) Acked(seq int64) {
	a.mu.Lock()
	a.ack = seq
	a.outstanding--
	start := a.startLocked()
	a.mu.Unlock()
	if start {
		go a.run()
	}
}

// answerHello owes the client the hello's OK, ahead of anything already owed.
func (a *ackConn) answerHello(durable int64) {
	a.mu.Lock()
	a.out = append(wire.AppendOK(nil, durable), a.out...)
	a.helloPending = false
	a.mu.Unlock()
	a.kick()
}

// expect counts n messages queued (negative: n taken back).
func (a *ackConn) expect(n int) {
	a.mu.Lock()
	a.outstanding += n
	done := a.done
	a.mu.Unlock()
	if done {
		a.kick() // the writer may now be able to close the connection
	}
}

// reject owes the client "ERR <seq> <reason>".
func (a *ackConn) reject(seq int64, reason string) {
	a.mu.Lock()
	a.out = wire.AppendErr(a.out, seq, reason)
	if len(a.out) > maxPendingOut {
		a.failed = true
	}
	a.mu.Unlock()
	a.kick()
}

func (a *ackConn) readerDone() {
	a.mu.Lock()
	a.done = true
	a.mu.Unlock()
	a.kick()
}

// abort drops the client (shutdown ran out of time, or it stopped reading).
func (a *ackConn) abort() {
	a.mu.Lock()
	a.failed = true
	a.mu.Unlock()
	a.kick()
}

// run writes what is owed until nothing is, then ends; once the reader is done
// and nothing is outstanding (or the client failed) it releases the connection.
func (a *ackConn) run() {
	var buf []byte
	for {
		a.mu.Lock()
		buf = buf[:0]
		if !a.helloPending {
			buf = append(buf, a.out...)
			a.out = nil // an idle connection keeps no buffer
			if a.ack != 0 {
				buf = wire.AppendAck(buf, a.ack)
				a.ack = 0
			}
		}
		failed, readerDone := a.failed, a.done
		end := (readerDone && a.outstanding <= 0) || (failed && readerDone)
		if !end && (len(buf) == 0 || a.closed) && (!failed || a.closed) {
			// Nothing to do until the next answer, the reader's end, or an abort.
			a.running = false
			a.mu.Unlock()
			return
		}
		a.mu.Unlock()
		if failed && !a.closed {
			// Closing ends the reader too; the writer runs again when it has finished.
			a.tc.Close()
			a.closed = true
		}
		if len(buf) > 0 && !a.closed {
			a.tc.SetWriteDeadline(time.Now().Add(a.t.cfg.AckWriteTimeout))
			if _, err := a.tc.Write(buf); err != nil {
				a.t.cfg.Logger.Debug("tcp: client not taking acks; dropping it", "remote", a.tc.RemoteAddr().String(), "err", err)
				a.mu.Lock()
				a.failed = true
				a.mu.Unlock()
				continue
			}
		}
		if end {
			// The one release: released keeps every later kick from starting a
			// writer (running stays true too, but that is not what guards it).
			a.mu.Lock()
			a.released = true
			a.running = false
			a.mu.Unlock()
			a.t.release(a.tc)
			a.t.mu.Lock()
			delete(a.t.ackConns, a)
			a.t.mu.Unlock()
			a.t.acks.Done()
			return
		}
	}
}

// WaitAcks waits, after the commit writer has closed, for every acknowledged
// connection to write its last ACKs and close. When ctx ends first, the rest are
// dropped.
func (t *TCP) WaitAcks(ctx context.Context) error {
	done := make(chan struct{})
	go func() { t.acks.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		t.mu.Lock()
		for a := range t.ackConns {
			a.abort() // starts an idle connection's writer: it closes the connection
		}
		for c := range t.conns {
			c.Close() // ends a pending write
		}
		t.mu.Unlock()
		<-done
		return ctx.Err()
	}
}
