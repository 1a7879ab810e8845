package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/inletdev/inlet/wire"
)

// The acknowledged scenarios speak INLET/1 (docs/protocol.md, grammar in wire): a hello, then
// "<seq> <payload>\n" lines answered by cumulative "ACK <seq>\n" after the commit.
// The payload is the tutorial's counter, equal to the seq.

// ackTimeout bounds the waits on the server: for the hello's answer, for an ack
// connect-per-message device's ACK, and, after the run, for the acks still
// outstanding. The server answers within a commit interval; ten seconds means
// it is not answering.
const ackTimeout = 10 * time.Second

// helloLine is device i's hello line.
func helloLine(i int, boot string) []byte {
	return wire.AppendHello(nil, wire.Hello{Device: "bench-" + strconv.Itoa(i), Boot: boot})
}

// appendAckLine appends the message line "<seq> <counter>\n"; the counter is the
// seq, formatted in num (scratch space, so that nothing is allocated).
func appendAckLine(b, num []byte, seq int64) ([]byte, []byte) {
	num = strconv.AppendInt(num[:0], seq, 10)
	return wire.AppendMessage(b, seq, num), num
}

// parseOK reads the hello's answer, "INLET/1 OK last=<n>".
func parseOK(line []byte) (last int64, err error) {
	a, err := wire.ParseAnswer(line)
	if err != nil {
		return 0, fmt.Errorf("hello answered: %w", err)
	}
	if a.Kind != wire.AnswerOK {
		return 0, fmt.Errorf("hello answered %q", bytes.TrimRight(line, "\r\n"))
	}
	return a.N, nil
}

// expectAck checks that line is "ACK <seq>".
func expectAck(line []byte, seq int64) error {
	a, err := wire.ParseAnswer(line)
	switch {
	case err != nil:
		return err
	case a.Kind != wire.AnswerAck:
		return fmt.Errorf("server: %s", bytes.TrimRight(line, "\r\n"))
	case a.N != seq:
		return fmt.Errorf("sent %d, answered ACK %d", seq, a.N)
	}
	return nil
}

// ackWindow is one connection's messages in flight: their send times in a ring
// indexed by seq % window, and how far the acks have come. The device's
// goroutine writes; a reader goroutine per connection reads the answers.
type ackWindow struct {
	size   int64
	ring   []atomic.Int64 // send time of seq at seq % size, ns since base; -1: answered ERR
	base   time.Time      // carries the monotonic clock
	issued atomic.Int64   // the highest seq given a send time
	acked  atomic.Int64   // every seq up to here is acknowledged or refused
	wake   chan struct{}  // acked moved
	dead   chan struct{}  // the reader stopped: the connection broke or was closed
	rerr   error          // why, to read once dead is closed
}

func newAckWindow(size int) *ackWindow {
	return &ackWindow{size: int64(size), ring: make([]atomic.Int64, size)}
}

// runAck keeps one acknowledged connection per device, pipelining messages with
// at most the window unacknowledged, and reconnects when the connection breaks.
// Messages in flight on a broken connection are not sent again: they count as
// sent and not acknowledged.
func runAck(d *device) error {
	dialer := d.g.tcpDialer(d.src)
	hello := helloLine(d.index, d.g.boot)
	w := newAckWindow(d.g.cfg.Window)
	for d.stop.Err() == nil {
		c, err := d.g.dial(d.stop, dialer, d.tls)
		if err != nil {
			if !d.stopped() {
				d.failed(err)
			}
			continue
		}
		done, err := d.ackStream(c, hello, w)
		if err != nil && (done || !d.stopped()) {
			d.failed(err)
		}
		if done {
			return nil
		}
	}
	return nil
}

// ackStream runs one acknowledged connection until the load is over (done) or
// the connection fails. A message counts as sent once the write that carried it
// succeeded, and as acknowledged when an ACK covering it has been read.
func (d *device) ackStream(c net.Conn, hello []byte, w *ackWindow) (done bool, err error) {
	unblock := context.AfterFunc(d.abort, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer unblock()
	r := bufio.NewReaderSize(c, 4096)
	c.SetDeadline(time.Now().Add(ackTimeout))
	if _, err := c.Write(hello); err != nil {
		c.Close()
		return false, fmt.Errorf("write hello: %w", err)
	}
	line, err := r.ReadSlice('\n')
	if err != nil {
		c.Close()
		return false, fmt.Errorf("read the hello's answer: %w", err)
	}
	last, err := parseOK(line)
	if err != nil {
		c.Close()
		return false, err
	}
	c.SetDeadline(time.Time{})
	if d.abort.Err() != nil {
		c.Close()
		return true, nil
	}
	// A fresh boot starts at last=0. After a reconnect the server may hold more
	// than the device counted; never reuse a seq it has.
	d.counter = max(d.counter, last+1)
	w.base = time.Now()
	w.issued.Store(d.counter - 1)
	w.acked.Store(d.counter - 1)
	w.wake = make(chan struct{}, 1)
	w.dead = make(chan struct{})
	w.rerr = nil
	go d.readAcks(r, w)
	defer func() {
		c.Close()
		<-w.dead // the reader records into d.hist: let it finish first
	}()

	buf, num := make([]byte, 0, 64), make([]byte, 0, 20)
	for {
		room := w.size - (w.issued.Load() - w.acked.Load())
		for room <= 0 {
			select {
			case <-w.wake:
			case <-w.dead:
				return false, w.deadErr()
			case <-d.stop.Done():
			}
			if d.stop.Err() != nil {
				break
			}
			room = w.size - (w.issued.Load() - w.acked.Load())
		}
		if room <= 0 {
			break // the run is over
		}
		due := d.pace.next(d.stop, room)
		if due == 0 {
			break
		}
		due = d.g.take(due)
		if due == 0 {
			break
		}
		buf = buf[:0]
		for seq := d.counter; seq < d.counter+due; seq++ {
			buf, num = appendAckLine(buf, num, seq)
		}
		c.SetWriteDeadline(time.Now().Add(streamFlushTimeout))
		// The latency a device sees runs from its write: stamp the messages
		// just before it, and publish them (issued) before the write, so that
		// an ACK read the moment after finds them.
		sentAt := int64(time.Since(w.base))
		for seq := d.counter; seq < d.counter+due; seq++ {
			w.ring[seq%w.size].Store(sentAt)
		}
		d.counter += due // never reused, even if the write fails
		w.issued.Store(d.counter - 1)
		if _, err := c.Write(buf); err != nil {
			return false, fmt.Errorf("write: %w", err)
		}
		d.g.sent.Add(due)
		d.ok()
	}
	if d.abort.Err() != nil {
		return true, nil
	}
	// The load is over: wait, bounded, for the acks still outstanding.
	timer := time.NewTimer(ackTimeout)
	defer timer.Stop()
	for w.acked.Load() < w.issued.Load() {
		select {
		case <-w.wake:
		case <-w.dead:
			if w.acked.Load() < w.issued.Load() {
				return true, w.deadErr()
			}
		case <-timer.C:
			return true, fmt.Errorf("%d messages not acknowledged %s after the end of the load",
				w.issued.Load()-w.acked.Load(), ackTimeout)
		case <-d.abort.Done():
			return true, nil
		}
	}
	return true, nil
}

func (w *ackWindow) deadErr() error {
	if w.rerr != nil {
		return fmt.Errorf("read acks: %w", w.rerr)
	}
	return errors.New("read acks: connection closed")
}

// readAcks reads one connection's answers until it fails or is closed.
func (d *device) readAcks(r *bufio.Reader, w *ackWindow) {
	defer close(w.dead)
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			w.rerr = err
			return
		}
		now := int64(time.Since(w.base))
		a, err := wire.ParseAnswer(line)
		if err == nil && a.Kind != wire.AnswerAck && a.Kind != wire.AnswerErr {
			err = fmt.Errorf("unexpected answer %q", bytes.TrimRight(line, "\r\n"))
		}
		if err != nil {
			w.rerr = err
			return
		}
		seq := a.N
		acked, issued := w.acked.Load(), w.issued.Load()
		if a.Kind == wire.AnswerErr {
			d.g.countError(fmt.Errorf("server: %s", bytes.TrimRight(line, "\r\n")))
			if seq <= acked || seq > issued {
				continue // ERR 0 bad-seq, or not a message in flight
			}
			w.ring[seq%w.size].Store(-1)
			if seq != acked+1 {
				continue // an ACK covers those before it, and moves past this one
			}
			// Nothing before it is outstanding: move past it, so that a refused
			// last message does not hold the window.
		}
		if seq <= acked {
			continue
		}
		if seq > issued {
			w.rerr = fmt.Errorf("ACK %d for a message not sent (sent up to %d)", seq, issued)
			return
		}
		var n int64
		for s := acked + 1; s <= seq; s++ {
			if t := w.ring[s%w.size].Load(); t >= 0 {
				d.hist.record(time.Duration(now - t))
				n++
			}
		}
		d.g.acked.Add(n)
		// Refused messages right after it are answered too: move past them.
		for seq < issued && w.ring[(seq+1)%w.size].Load() < 0 {
			seq++
		}
		w.acked.Store(seq)
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
}

// runAckCPM is the acknowledged connect-per-message device: connect, write the
// hello and one message in one write, read "INLET/1 OK last=.." and "ACK <seq>",
// close; over and over.
func runAckCPM(d *device) error {
	dialer := d.g.tcpDialer(d.src)
	hello := helloLine(d.index, d.g.boot)
	out, num := make([]byte, 0, len(hello)+48), make([]byte, 0, 20)
	in := make([]byte, 256)
	for {
		due := d.pace.next(d.stop, 1)
		if due == 0 {
			return nil
		}
		for range due {
			if d.g.take(1) == 0 {
				return nil
			}
			out, num = appendAckLine(append(out[:0], hello...), num, d.counter)
			written, err := d.ackOnce(dialer, out, in, d.counter)
			if !written {
				d.g.giveBack(1)
				if d.stopped() {
					return nil
				}
			} else {
				d.counter++
				d.g.sent.Add(1)
			}
			if err != nil {
				d.failed(err)
				continue
			}
			d.ok()
		}
	}
}

// ackOnce sends one acknowledged message on a connection of its own and waits
// for its ACK; the latency is from the start of the connect (and TLS handshake)
// to the ACK read.
func (d *device) ackOnce(dialer *net.Dialer, out, in []byte, seq int64) (written bool, err error) {
	start := time.Now()
	c, err := d.g.dial(d.stop, dialer, d.tls)
	if err != nil {
		return false, err
	}
	defer c.Close()
	unblock := context.AfterFunc(d.abort, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer unblock()
	c.SetDeadline(start.Add(ackTimeout))
	if _, err := c.Write(out); err != nil {
		return false, fmt.Errorf("write: %w", err)
	}
	// Two answer lines: the hello's OK, then the ACK (or an ERR).
	n := 0
	for bytes.Count(in[:n], []byte{'\n'}) < 2 {
		if n == len(in) {
			return true, fmt.Errorf("answer too long: %q", in[:n])
		}
		k, err := c.Read(in[n:])
		n += k
		if err != nil && bytes.Count(in[:n], []byte{'\n'}) < 2 {
			if d.abort.Err() != nil {
				return true, nil
			}
			return true, fmt.Errorf("read the answer: %w (got %q)", err, in[:n])
		}
	}
	now := time.Now()
	first, rest, _ := bytes.Cut(in[:n], []byte{'\n'})
	if _, err := parseOK(first); err != nil {
		return true, err
	}
	second, _, _ := bytes.Cut(rest, []byte{'\n'})
	if err := expectAck(second, seq); err != nil {
		return true, err
	}
	d.hist.record(now.Sub(start))
	d.g.acked.Add(1)
	return true, nil
}
