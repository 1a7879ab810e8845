package client

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/inletdev/inlet/wire"
)

// errAckTimeout fails a connection whose server stopped acknowledging.
var errAckTimeout = errors.New("no acknowledgement in time")

// helloError is the server refusing a hello.
type helloError struct{ reason string }

func (e *helloError) Error() string { return "server refused hello: " + e.reason }

// event is a line from the server, or why there are no more.
type event struct {
	line wire.Answer
	err  error
}

// tcpSession runs one connection for boot: hello, then messages until the boot
// has nothing left and a later boot has messages waiting, or until something
// fails. greeted reports a successful hello (it resets the back-off).
// A nil error means the connection ended normally.
func (s *Sender) tcpSession(boot string) (greeted bool, err error) {
	d := net.Dialer{Timeout: s.cfg.AckTimeout}
	if s.cfg.LocalAddr != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(s.cfg.LocalAddr)}
	}
	conn, err := d.DialContext(s.ctx, "tcp", s.cfg.Addr)
	if err != nil {
		return false, fmt.Errorf("connect: %w", err)
	}
	stop := context.AfterFunc(s.ctx, func() { conn.Close() })
	defer func() {
		stop()
		conn.Close()
	}()
	br := bufio.NewReaderSize(conn, wire.MaxAnswer)

	conn.SetDeadline(time.Now().Add(s.cfg.AckTimeout))
	if _, err := conn.Write(wire.AppendHello(nil, wire.Hello{Device: s.cfg.Device, Boot: boot, Token: s.cfg.Token})); err != nil {
		return false, fmt.Errorf("write hello: %w", err)
	}
	raw, err := readLine(br)
	if err != nil {
		return false, fmt.Errorf("read hello answer: %w", err)
	}
	hello, err := parseAnswer(raw)
	if err != nil {
		return false, err
	}
	switch hello.Kind {
	case wire.AnswerOK:
	case wire.AnswerHelloErr:
		return false, &helloError{reason: hello.Reason}
	default:
		return false, fmt.Errorf("%w: %s before the hello answer", errProtocol, hello.Kind)
	}
	conn.SetDeadline(time.Time{})
	s.setLastError("")
	s.acceptLast(boot, hello.N)

	events := make(chan event, 16)
	quit := make(chan struct{})
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		for {
			raw, err := readLine(br)
			var ev event
			if err != nil {
				ev.err = err
			} else {
				ev.line, ev.err = parseAnswer(raw)
			}
			select {
			case events <- ev:
			case <-quit:
				return
			}
			if ev.err != nil {
				return
			}
		}
	}()
	defer func() {
		conn.Close()
		close(quit)
		<-readerDone
	}()

	var (
		inflight []*entry // sent on this connection, not yet answered, in seq order
		last     int64    // highest seq sent on this connection
		sentAny  bool
		since    time.Time // start of the current wait for an answer
		timer    = time.NewTimer(time.Hour)
		buf      []byte
	)
	defer timer.Stop()
	perMessage := s.cfg.ConnectPerMessage
	for {
		room := s.cfg.Window - len(inflight)
		if perMessage {
			room = 0
			if !sentAny {
				room = 1
			}
		}
		if room > 0 {
			es, resent := s.ob.take(boot, last, room)
			if len(es) > 0 {
				buf = buf[:0]
				for _, e := range es {
					buf = wire.AppendMessage(buf, e.seq, e.payload)
				}
				// Counted before the write: part of a failed write may still
				// reach the server.
				s.sent.Add(int64(len(es) - resent))
				s.retried.Add(int64(resent))
				// The deadline keeps a server that stopped reading from holding
				// this goroutine; Send never waits for it anyway.
				conn.SetWriteDeadline(time.Now().Add(s.cfg.AckTimeout))
				if _, err := conn.Write(buf); err != nil {
					return true, fmt.Errorf("write: %w", err)
				}
				if len(inflight) == 0 {
					since = time.Now()
				}
				inflight = append(inflight, es...)
				last = es[len(es)-1].seq
				sentAny = true
			}
		}
		if len(inflight) == 0 {
			if perMessage {
				return true, nil // answered, or nothing of this boot was left
			}
			if b, ok := s.ob.firstBoot(); ok && b != boot {
				return true, nil // an older boot is done: the next one needs its own hello
			}
		}
		var expired <-chan time.Time
		if len(inflight) > 0 {
			timer.Reset(time.Until(since.Add(s.cfg.AckTimeout)))
			expired = timer.C
		}
		select {
		case ev := <-events:
			if ev.err != nil {
				if len(inflight) == 0 && errors.Is(ev.err, io.EOF) {
					return true, nil // the server closed an idle connection
				}
				return true, fmt.Errorf("read: %w", ev.err)
			}
			switch ev.line.Kind {
			case wire.AnswerAck:
				n := ev.line.N
				if n > last {
					return true, fmt.Errorf("%w: ACK %d for a message not sent (last sent %d)", errProtocol, n, last)
				}
				k := 0
				for k < len(inflight) && inflight[k].seq <= n {
					k++
				}
				if k > 0 {
					s.ob.remove(boot, inflight[:k], &s.acked)
					inflight = append(inflight[:0], inflight[k:]...)
					since = time.Now()
				}
			case wire.AnswerErr:
				if ev.line.N == 0 {
					// The server could not read a seq at the start of a line this
					// client wrote: the stream is out of step. Start afresh.
					return true, fmt.Errorf("%w: the server could not read a message line (ERR 0 %s)", errProtocol, ev.line.Reason)
				}
				k := -1
				for i, e := range inflight {
					if e.seq == ev.line.N {
						k = i
						break
					}
				}
				if k < 0 {
					return true, fmt.Errorf("%w: ERR %d for a message not outstanding", errProtocol, ev.line.N)
				}
				if s.ob.remove(boot, inflight[k:k+1], &s.errs) > 0 {
					s.rejected(boot, ev.line.N, ev.line.Reason)
				}
				inflight = append(inflight[:k], inflight[k+1:]...)
				since = time.Now()
			default:
				return true, fmt.Errorf("%w: unexpected %s", errProtocol, ev.line.Kind)
			}
		case <-s.wake:
		case <-expired:
			return true, fmt.Errorf("%w: %d messages outstanding for %v", errAckTimeout, len(inflight), s.cfg.AckTimeout)
		case <-s.ctx.Done():
			return true, s.ctx.Err()
		}
	}
}

// acceptLast drops the messages of boot the server already stores.
func (s *Sender) acceptLast(boot string, last int64) {
	// A server holding seqs of this boot that this outbox never handed out means
	// the boot was reused with a lost outbox: the server would take the messages
	// numbered up to last for duplicates. Count them as lost and number new
	// messages above last.
	if !s.ob.bumpSeq(boot, last) {
		s.ob.removeThrough(boot, last, &s.acked)
		return
	}
	n := s.ob.removeThrough(boot, last, &s.errs)
	s.log.Error("inlet client: the server holds seqs of this boot beyond any this outbox used "+
		"(was the outbox deleted while Boot stayed fixed?); continuing above them",
		"boot", boot, "last", last, "lost", n)
}

// readLine reads one line of at most wire.MaxAnswer bytes.
func readLine(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		return nil, fmt.Errorf("%w: line longer than %d bytes", errProtocol, wire.MaxAnswer)
	}
	if err != nil {
		if errors.Is(err, io.EOF) && len(line) > 0 {
			return nil, io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return line, nil
}
