package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/inletdev/inlet/wire"
)

// firstRetry is the first UDP retry interval; it doubles up to AckTimeout.
const firstRetry = 200 * time.Millisecond

// flight is a datagram waiting for its ACK.
type flight struct {
	e    *entry
	dg   []byte
	next time.Time // when to send it again
	rto  time.Duration
}

// udpSession sends the messages of boot as acknowledged datagrams from one
// socket, each repeated until its ACK arrives, until the boot has nothing left
// and a later boot has messages waiting. Each boot gets its own socket (and so
// its own source port): an ACK names only a seq, and a late ACK for an earlier
// boot must not acknowledge the same seq of the next one.
func (s *Sender) udpSession(boot string) error {
	raddr, err := net.ResolveUDPAddr("udp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("resolve: %w", err)
	}
	var laddr *net.UDPAddr
	if s.cfg.LocalAddr != "" {
		laddr = &net.UDPAddr{IP: net.ParseIP(s.cfg.LocalAddr)}
	}
	conn, err := net.ListenUDP("udp", laddr)
	if err != nil {
		return fmt.Errorf("open socket: %w", err)
	}
	stop := context.AfterFunc(s.ctx, func() { conn.Close() })
	defer func() {
		stop()
		conn.Close()
	}()

	acks := make(chan int64, 64)
	readErr := make(chan error, 1)
	quit := make(chan struct{})
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		buf := make([]byte, 2*wire.MaxAnswer)
		for {
			n, from, err := conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				readErr <- err
				return
			}
			if int(from.Port()) != raddr.Port {
				continue
			}
			l, err := parseAnswer(buf[:n])
			if err != nil || l.Kind != wire.AnswerAck {
				s.log.Debug("inlet client: ignoring a datagram", "remote", from, "err", err)
				continue
			}
			select {
			case acks <- l.N:
			case <-quit:
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
		inflight = map[int64]*flight{}
		last     int64
		timer    = time.NewTimer(time.Hour)
		rto0     = min(firstRetry, s.cfg.AckTimeout)
	)
	defer timer.Stop()
	send := func(f *flight) {
		conn.SetWriteDeadline(time.Now().Add(s.cfg.AckTimeout))
		if _, err := conn.WriteToUDP(f.dg, raddr); err != nil {
			s.failed(fmt.Errorf("udp write: %w", err), f.rto)
		}
		f.next = time.Now().Add(jitter(f.rto))
	}
	for {
		if room := s.cfg.Window - len(inflight); room > 0 {
			es, resent := s.ob.take(boot, last, room)
			for _, e := range es {
				f := &flight{e: e, rto: rto0,
					dg: wire.AppendDatagram(nil, wire.Hello{Device: s.cfg.Device, Boot: boot, Token: s.cfg.Token, Seq: e.seq}, e.payload)}
				inflight[e.seq] = f
				send(f)
				last = e.seq
			}
			s.sent.Add(int64(len(es) - resent))
			s.retried.Add(int64(resent))
		}
		if len(inflight) == 0 {
			if b, ok := s.ob.firstBoot(); ok && b != boot {
				return nil
			}
		}
		var due <-chan time.Time
		if len(inflight) > 0 {
			var next time.Time
			for _, f := range inflight {
				if next.IsZero() || f.next.Before(next) {
					next = f.next
				}
			}
			timer.Reset(time.Until(next))
			due = timer.C
		}
		select {
		case seq := <-acks:
			if f, ok := inflight[seq]; ok {
				delete(inflight, seq)
				s.ob.remove(boot, []*entry{f.e}, &s.acked)
			}
		case <-due:
			now := time.Now()
			for _, f := range inflight {
				if !f.next.After(now) {
					f.rto = min(2*f.rto, s.cfg.AckTimeout)
					send(f)
					s.retried.Add(1)
				}
			}
		case err := <-readErr:
			if errors.Is(err, net.ErrClosed) && s.ctx.Err() != nil {
				return s.ctx.Err()
			}
			return fmt.Errorf("udp read: %w", err)
		case <-s.wake:
		case <-s.ctx.Done():
			return s.ctx.Err()
		}
	}
}
