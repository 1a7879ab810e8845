package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Scenario is one kind of load. Every device of a run is a goroutine running
// the scenario's loop; new scenarios (acknowledged mode, say) are one more entry
// in the table below.
type Scenario struct {
	Name           string
	Transport      string // "tcp" or "udp": which of the server's addresses it sends to
	DefaultDevices int
	Summary        string // one line for --help
	// Acked scenarios speak INLET/1 and count acknowledgements and their latency.
	Acked bool
	// Plain names the plain scenario an acknowledged one is compared with: the
	// same load without acknowledgements (the bare baseline does not speak INLET/1).
	Plain string
	// Idle scenarios open every device's connection, hold them all open and
	// quiet, and send one more message on each at the end (see idle.go).
	Idle bool
	run  func(d *device) error
}

var scenarios = []*Scenario{
	{
		Name: "tutorial", Transport: "tcp", DefaultDevices: 32, run: runTutorial,
		Summary: "each device connects, writes one counter line and closes, over and over (the tutorial sketch)",
	},
	{
		Name: "stream", Transport: "tcp", DefaultDevices: 8, run: runStream,
		Summary: "each device keeps one connection and writes counter lines through a 64 KiB buffer",
	},
	{
		Name: "udp", Transport: "udp", DefaultDevices: 1, run: runUDP,
		Summary: "each device sends the tutorial's 10-byte datagrams: the counter, padded with NUL bytes",
	},
	{
		Name: "ack", Transport: "tcp", DefaultDevices: 64, run: runAck, Acked: true, Plain: "stream",
		Summary: "acknowledged mode (INLET/1): each device keeps one connection, pipelines \"<seq> <counter>\" lines\n" +
			"            with at most --window unacknowledged, and times each message until its ACK",
	},
	{
		Name: "ack-cpm", Transport: "tcp", DefaultDevices: 32, run: runAckCPM, Acked: true, Plain: "tutorial",
		Summary: "acknowledged connect per message: each device connects, writes the hello and one message,\n" +
			"            reads OK and ACK, closes, over and over; latency is from connecting to the ACK",
	},
	{
		Name: "idle", Transport: "tcp", DefaultDevices: 10000, Idle: true,
		Summary: "each device opens one connection and writes one counter line; all are held open and quiet for\n" +
			"            --duration, the server's memory per connection is measured, then each writes one more line",
	},
	{
		Name: "idle-ack", Transport: "tcp", DefaultDevices: 10000, Idle: true, Acked: true, Plain: "idle",
		Summary: "idle, acknowledged: each device sends the hello and one message and reads its ACK, all are held\n" +
			"            for --duration, memory is measured, then each sends one more message and reads its ACK",
	},
}

// Scenarios lists the known scenarios in a stable order.
func Scenarios() []*Scenario { return append([]*Scenario(nil), scenarios...) }

// Lookup finds a scenario by name.
func Lookup(name string) (*Scenario, error) {
	names := make([]string, len(scenarios))
	for i, s := range scenarios {
		if s.Name == name {
			return s, nil
		}
		names[i] = s.Name
	}
	return nil, fmt.Errorf("unknown scenario %q: want %s", name, strings.Join(names, ", "))
}

// appendLine appends the tutorial's TCP line for counter n.
func appendLine(b []byte, n int64) []byte {
	b = strconv.AppendInt(b, n, 10)
	return append(b, '\r', '\n')
}

// datagramSize is the tutorial's fixed UDP buffer.
const datagramSize = 10

// appendDatagram appends the tutorial's datagram for counter n: the decimal
// counter, then NUL bytes up to 10 bytes.
func appendDatagram(b []byte, n int64) []byte {
	start := len(b)
	b = strconv.AppendInt(b, n, 10)
	for len(b)-start < datagramSize {
		b = append(b, 0)
	}
	return b
}

// runTutorial is the tutorial sketch: connect, print one line, close.
func runTutorial(d *device) error {
	dialer := d.g.tcpDialer(d.src)
	line := make([]byte, 0, 32)
	for {
		due := d.pace.next(d.stop, 1)
		if due == 0 {
			return nil
		}
		for range due {
			if d.g.take(1) == 0 {
				return nil
			}
			line = appendLine(line[:0], d.counter)
			if err := d.sendOnce(dialer, line); err != nil {
				d.g.giveBack(1)
				if d.stopped() {
					return nil
				}
				d.failed(err)
				continue
			}
			d.counter++
			d.g.sent.Add(1)
			d.ok()
		}
	}
}

func (d *device) sendOnce(dialer *net.Dialer, line []byte) error {
	c, err := d.g.dial(d.stop, dialer, d.tls)
	if err != nil {
		return err
	}
	if _, err := c.Write(line); err != nil {
		c.Close()
		return fmt.Errorf("write: %w", err)
	}
	return c.Close()
}

// streamFlushTimeout bounds one flush: a server applying backpressure slows a
// stream down, a server that stopped reading ends it.
const streamFlushTimeout = 30 * time.Second

// streamSendBuffer is a stream's socket send buffer. Left to autotuning it grows
// to megabytes, and under backpressure the kernel wakes a blocked writer only
// once half of that has drained: a stream would run seconds past its duration,
// and "sent" would count megabytes the server has not seen yet. 256 KiB does not
// slow the baseline down.
const streamSendBuffer = 256 << 10

// runStream keeps one connection per device and writes counter lines through a
// 64 KiB buffer, reconnecting when the connection breaks.
func runStream(d *device) error {
	dialer := d.g.tcpDialer(d.src)
	dialer.Control = func(network, address string, c syscall.RawConn) error {
		if err := bindAddressNoPort(network, address, c); err != nil {
			return err
		}
		return setSendBuffer(c, streamSendBuffer)
	}
	for d.stop.Err() == nil {
		c, err := d.g.dial(d.stop, dialer, d.tls)
		if err != nil {
			if !d.stopped() {
				d.failed(err)
			}
			continue
		}
		done, err := d.stream(c)
		if err != nil && (done || !d.stopped()) {
			d.failed(err) // the last flush failing counts too
		}
		if done {
			return nil
		}
	}
	return nil
}

// stream writes lines to c until the load is over (done) or a write fails. A
// message counts as sent once the kernel has taken its last byte; a flush that
// fails part way (its write deadline passed) counts the lines that went out,
// and the cut-off line after them too, which the server stores when the
// connection closes cleanly (docs/protocol.md §1). Counter values are never
// reused.
func (d *device) stream(c net.Conn) (done bool, err error) {
	lw := &sentLines{c: c}
	defer func() {
		c.Close()
		d.g.sent.Add(lw.take(true))
	}()
	// An abandoned run (not its normal end) unblocks a write at once.
	unblock := context.AfterFunc(d.abort, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer unblock()
	w := bufio.NewWriterSize(lw, 64<<10)
	var pending int64
	flush := func() error {
		if pending == 0 {
			return nil
		}
		c.SetWriteDeadline(time.Now().Add(streamFlushTimeout))
		err := w.Flush()
		d.g.sent.Add(lw.take(false))
		pending = 0
		if err != nil {
			return fmt.Errorf("flush: %w", err)
		}
		d.ok()
		return nil
	}
	line := make([]byte, 0, 32)
	for {
		due := d.pace.next(d.stop, 256)
		if due == 0 {
			break
		}
		due = d.g.take(due)
		if due == 0 {
			break
		}
		for range due {
			line = appendLine(line[:0], d.counter)
			if w.Available() < len(line) {
				if err := flush(); err != nil {
					return false, err
				}
			}
			w.Write(line) // never flushes by itself: room was checked
			d.counter++
			pending++
		}
		if d.pace.rate > 0 {
			// At a set rate each message leaves when it is due.
			if err := flush(); err != nil {
				return false, err
			}
		}
	}
	if d.abort.Err() != nil {
		return true, nil
	}
	return true, flush()
}

// sentLines counts the lines a stream's writes handed to the kernel.
type sentLines struct {
	c     net.Conn
	lines int64 // complete lines written and not yet taken
	tail  bool  // what was written ends inside a line, with more than a '\r' of it
}

func (lw *sentLines) Write(p []byte) (int, error) {
	n, err := lw.c.Write(p)
	out := p[:n]
	if i := bytes.LastIndexByte(out, '\n'); i >= 0 {
		lw.lines += int64(bytes.Count(out, []byte{'\n'}))
		lw.tail = false
		out = out[i+1:]
	}
	for _, b := range out {
		lw.tail = lw.tail || b != '\r'
	}
	return n, err
}

// take returns the complete lines written since the last take; closed: the
// connection is closed, and a cut-off line it ended with is a message too.
func (lw *sentLines) take(closed bool) int64 {
	n := lw.lines
	lw.lines = 0
	if closed && lw.tail {
		n++
		lw.tail = false
	}
	return n
}

// runUDP sends the tutorial's datagrams from one socket per device.
func runUDP(d *device) error {
	if cpu := d.g.cfg.SenderCPU; cpu >= 0 {
		release, err := pinThread(cpu)
		if err != nil {
			return fmt.Errorf("loadgen: pin udp sender to CPU %d: %w", cpu, err)
		}
		defer release()
	}
	var laddr *net.UDPAddr
	if d.src.IsValid() {
		laddr = &net.UDPAddr{IP: d.src.AsSlice()}
	}
	c, err := net.DialUDP("udp", laddr, net.UDPAddrFromAddrPort(d.g.target))
	if err != nil {
		return fmt.Errorf("loadgen: udp socket from %s: %w", d.src, err)
	}
	defer c.Close()
	buf := make([]byte, 0, 32)
	for {
		due := d.pace.next(d.stop, 64)
		if due == 0 {
			return nil
		}
		due = d.g.take(due)
		if due == 0 {
			return nil
		}
		var sent int64
		var werr error
		for range due {
			buf = appendDatagram(buf[:0], d.counter)
			if _, werr = c.Write(buf); werr != nil {
				break
			}
			d.counter++
			sent++
		}
		d.g.sent.Add(sent)
		d.g.giveBack(due - sent)
		if werr != nil {
			if errors.Is(werr, net.ErrClosed) {
				return nil
			}
			d.failed(werr)
		} else {
			d.ok()
		}
	}
}
