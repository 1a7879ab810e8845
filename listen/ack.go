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
// (PROTOCOL.md §2), or marks the hello to be refused.
func (r *connReader) startAcked(line []byte) {
	h, err := wire.ParseHello(line)
	switch {
	case err != nil:
		r.refuse = "bad-hello"
	case r.t.cfg.Token != "" && h.Token != r.t.cfg.Token:
		r.refuse = "unauthorized"
	case r.t.closing.Load():
		r.refuse = "busy"
	}
	if r.refuse != "" {
		r.t.cfg.Stats.HelloErrors.Add(1)
		if ok, n := r.t.helloErrs.allow(); ok {
			r.t.cfg.Logger.Warn("tcp: hello refused", "remote", r.remote.String(), "reason", r.refuse, "suppressed", n)
		}
		return
	}
	r.hello = h
	r.t.cfg.Stats.AckedConns.Add(1)
	r.ac = newAckConn(r.t, r.tc)
	r.ac.out = wire.AppendOK(r.ac.out, r.t.sink.Durable(h.Device, h.Boot))
	r.t.mu.Lock()
	r.t.ackConns[r.ac] = struct{}{}
	r.t.mu.Unlock()
	r.t.acks.Add(1)
	go r.ac.run()
	r.ac.signal()
}

// ackConn writes one acknowledged connection's answers: the hello's OK, ERR lines
// and cumulative ACKs, coalesced, from its own goroutine, so that a client that
// does not read its acks stalls nobody: past a write deadline or maxPendingOut it
// is dropped. It closes the connection once the reader is done and every message
// the reader queued has been acknowledged.
type ackConn struct {
	t  *TCP
	tc *tcpConn

	mu          sync.Mutex
	out         []byte // owed to the client, not yet written
	ack         int64  // the latest acknowledged seq not yet written; 0: none
	outstanding int    // messages queued and not yet acknowledged
	done        bool   // the reader has finished
	failed      bool   // the client is gone or not reading: stop writing

	wake chan struct{}
}

func newAckConn(t *TCP, tc *tcpConn) *ackConn {
	return &ackConn{t: t, tc: tc, wake: make(chan struct{}, 1)}
}

func (a *ackConn) signal() {
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// Acked is called by the commit writer, in stream order, after the batch holding
// the message has committed. It must not block.
func (a *ackConn) Acked(seq int64) {
	a.mu.Lock()
	a.ack = seq
	a.outstanding--
	a.mu.Unlock()
	a.signal()
}

// expect counts n messages queued (negative: n taken back).
func (a *ackConn) expect(n int) {
	a.mu.Lock()
	a.outstanding += n
	a.mu.Unlock()
	a.signal()
}

// reject owes the client "ERR <seq> <reason>".
func (a *ackConn) reject(seq int64, reason string) {
	a.mu.Lock()
	a.out = wire.AppendErr(a.out, seq, reason)
	if len(a.out) > maxPendingOut {
		a.failed = true
	}
	a.mu.Unlock()
	a.signal()
}

func (a *ackConn) readerDone() {
	a.mu.Lock()
	a.done = true
	a.mu.Unlock()
	a.signal()
}

// abort drops the client (shutdown ran out of time, or it stopped reading).
func (a *ackConn) abort() {
	a.mu.Lock()
	a.failed = true
	a.mu.Unlock()
	a.signal()
}

func (a *ackConn) run() {
	defer a.t.acks.Done()
	defer func() {
		a.t.mu.Lock()
		delete(a.t.ackConns, a)
		a.t.mu.Unlock()
	}()
	var buf []byte
	closed := false
	for range a.wake {
		a.mu.Lock()
		buf = append(buf[:0], a.out...)
		a.out = a.out[:0]
		if a.ack != 0 {
			buf = wire.AppendAck(buf, a.ack)
			a.ack = 0
		}
		failed, readerDone := a.failed, a.done
		finished := readerDone && a.outstanding <= 0
		a.mu.Unlock()
		if failed && !closed {
			// Closing ends the reader too; keep running until it has finished.
			a.tc.Close()
			closed = true
		}
		if len(buf) > 0 && !closed {
			a.tc.SetWriteDeadline(time.Now().Add(a.t.cfg.AckWriteTimeout))
			if _, err := a.tc.Write(buf); err != nil {
				a.t.cfg.Logger.Debug("tcp: client not taking acks; dropping it", "remote", a.tc.RemoteAddr().String(), "err", err)
				a.abort()
				continue
			}
		}
		if finished || (failed && readerDone) {
			a.t.release(a.tc)
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
			a.abort() // wakes an idle ack writer: it closes its connection and ends
		}
		for c := range t.conns {
			c.Close() // ends a pending write
		}
		t.mu.Unlock()
		<-done
		return ctx.Err()
	}
}
