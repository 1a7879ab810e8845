package loadgen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// The idle scenarios measure what an open, quiet connection costs the server.
// Every device opens one connection and sends one message on it (idle-ack: the
// INLET/1 hello and one message, and waits for its ACK); once all of them are
// open the generator holds them, silent, for the run's duration and then calls
// Config.OnIdle, where the caller measures the server. Then every device sends
// one more message on the connection it held (idle-ack: and waits for its ACK),
// which proves the server still serves each one, and closes.

// idleDialers bounds the connections being opened at once, so that thousands of
// devices do not overflow the server's accept backlog (a dropped SYN is retried
// only after a second).
const idleDialers = 64

// idleAttempts is how often a device tries to open its connection.
const idleAttempts = 3

// idleAnswerTimeout bounds the wait for an ACK in the idle scenarios: after the
// hold, every device sends at once and the acks of thousands of connections
// come from a few commits.
const idleAnswerTimeout = 30 * time.Second

// IdleStats is what the idle scenarios tell Config.OnIdle.
type IdleStats struct {
	Open   int // connections open, each with its first message sent (and acknowledged)
	Failed int // devices that could not open theirs
}

// idleConn is one device's held connection.
type idleConn struct {
	c   net.Conn
	in  []byte // answer bytes read and not yet parsed
	buf []byte
	num []byte // scratch for the counter
}

// runIdle is Run for the idle scenarios.
func (g *Generator) runIdle(ctx context.Context) (Result, error) {
	start := time.Now()
	conns := make([]*idleConn, g.cfg.Devices)
	var (
		wg     sync.WaitGroup
		sem    = make(chan struct{}, idleDialers)
		failed atomic.Int64
	)
	for i := range g.cfg.Devices {
		wg.Go(func() {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			defer func() { <-sem }()
			ic, err := g.idleOpen(ctx, i)
			if err != nil {
				failed.Add(1)
				if ctx.Err() == nil {
					g.countError(err)
				}
				return
			}
			conns[i] = ic
		})
	}
	wg.Wait()
	defer func() {
		for _, ic := range conns {
			if ic != nil {
				ic.c.Close()
			}
		}
	}()
	result := func() Result {
		res := Result{Sent: g.sent.Load(), Errors: g.errs.Load(), Elapsed: time.Since(start), Acked: g.acked.Load(),
			Handshakes: g.handshakes.Load(), Resumed: g.resumed.Load()}
		res.Latency = g.hist.summary()
		if p := g.firstErr.Load(); p != nil {
			res.FirstError = *p
		}
		return res
	}
	if ctx.Err() != nil {
		return result(), ctx.Err()
	}
	st := IdleStats{Failed: int(failed.Load())}
	st.Open = g.cfg.Devices - st.Failed
	if st.Open == 0 {
		return result(), fmt.Errorf("loadgen: no connection opened: %s", result().FirstError)
	}
	// Hold them, silent.
	t := time.NewTimer(g.cfg.Duration)
	select {
	case <-t.C:
	case <-ctx.Done():
		t.Stop()
		return result(), ctx.Err()
	}
	if g.cfg.OnIdle != nil {
		if err := g.cfg.OnIdle(ctx, st); err != nil {
			return result(), err
		}
	}
	// Every held connection is still served: one more message on each.
	for i, ic := range conns {
		if ic == nil {
			continue
		}
		wg.Go(func() {
			if err := g.idleSecond(ctx, i, ic); err != nil && ctx.Err() == nil {
				g.countError(fmt.Errorf("held connection: %w", err))
			}
			ic.c.Close()
		})
	}
	wg.Wait()
	return result(), ctx.Err()
}

// idleOpen opens device i's connection and sends its first message (idle-ack:
// the hello and message 1, and reads the OK and the ACK), trying a few times.
func (g *Generator) idleOpen(ctx context.Context, i int) (*idleConn, error) {
	dialer := g.tcpDialer(sourceAddr(g.target.Addr(), i))
	tc := g.deviceTLS()
	var err error
	for attempt := range idleAttempts {
		if attempt > 0 {
			select {
			case <-time.After(time.Duration(attempt) * 100 * time.Millisecond):
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		var c net.Conn
		if c, err = g.dial(ctx, dialer, tc); err != nil {
			continue
		}
		ic := &idleConn{c: c}
		if err = g.idleSend(ctx, i, ic, 1); err == nil {
			return ic, nil
		}
		c.Close()
	}
	return nil, err
}

// idleSecond sends message 2 on a held connection.
func (g *Generator) idleSecond(ctx context.Context, i int, ic *idleConn) error {
	return g.idleSend(ctx, i, ic, 2)
}

// idleSend sends message seq (1 with the hello in idle-ack) and, in idle-ack,
// waits for its ACK. The message counts as sent once written.
func (g *Generator) idleSend(ctx context.Context, i int, ic *idleConn, seq int64) error {
	stop := context.AfterFunc(ctx, func() { ic.c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	b := ic.buf[:0]
	if !g.cfg.Scenario.Acked {
		b = appendLine(b, seq)
	} else {
		if seq == 1 {
			b = append(b, helloLine(i, g.boot)...)
		}
		b, ic.num = appendAckLine(b, ic.num, seq)
	}
	ic.buf = b
	sentAt := time.Now()
	ic.c.SetDeadline(sentAt.Add(idleAnswerTimeout))
	if _, err := ic.c.Write(b); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	g.sent.Add(1)
	if !g.cfg.Scenario.Acked {
		return nil
	}
	if seq == 1 {
		line, err := ic.readLine()
		if err != nil {
			return fmt.Errorf("read the hello's answer: %w", err)
		}
		if _, err := parseOK(line); err != nil {
			return err
		}
	}
	line, err := ic.readLine()
	if err != nil {
		return fmt.Errorf("read the ACK: %w", err)
	}
	if err := expectAck(line, seq); err != nil {
		return err
	}
	now := time.Now()
	g.histMu.Lock()
	g.hist.record(now.Sub(sentAt))
	g.histMu.Unlock()
	g.acked.Add(1)
	ic.c.SetDeadline(time.Time{})
	return nil
}

// readLine reads one answer line; the idle scenarios expect short ones only.
func (ic *idleConn) readLine() ([]byte, error) {
	for {
		if line, rest, ok := bytes.Cut(ic.in, []byte{'\n'}); ok {
			ic.in = rest
			return line, nil
		}
		if len(ic.in) >= 256 {
			return nil, fmt.Errorf("answer too long: %q", ic.in)
		}
		var p [256]byte
		n, err := ic.c.Read(p[:256-len(ic.in)])
		ic.in = append(ic.in, p[:n]...)
		if err != nil && !bytes.Contains(ic.in, []byte{'\n'}) {
			if errors.Is(err, net.ErrClosed) {
				return nil, err
			}
			return nil, fmt.Errorf("%w (got %q)", err, ic.in)
		}
	}
}
