package listen

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/inletdev/inlet"
	"github.com/inletdev/inlet/internal/sockopt"
	"github.com/inletdev/inlet/wire"
)

// UDP is the plain-mode UDP listener (docs/protocol.md §1).
type UDP struct {
	cfg       Config
	conn      *net.UDPConn
	sink      Sink
	closing   atomic.Bool
	done      chan struct{}
	full      limiter
	helloErrs limiter
	tooLongs  limiter
	outside   limiter        // datagrams from outside cfg.Allow
	msgs      *rates[string] // --max-msg-rate per device
	overRate  limiter
	// RecvBuffer is the socket receive buffer the kernel granted, in bytes.
	RecvBuffer int
	// drops is the kernel's drop counter as last counted: bit 32 set once
	// known, the low 32 bits the counter (it wraps).
	drops    atomic.Uint64
	ino      uint64 // the socket's inode, to read its drops from /proc; 0: unknown
	stopPoll chan struct{}
}

// dropPoll is how often the kernel's drop counter is read when no datagram
// arrives to carry it: drops in a burst's tail would otherwise show only with
// the next datagram, maybe never.
const dropPoll = time.Second

// ListenUDP binds addr and sizes its receive buffer.
func ListenUDP(addr string, sink Sink, cfg Config) (*UDP, error) {
	cfg.setDefaults()
	la, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, err
	}
	conn, err := net.ListenUDP("udp", la)
	if err != nil {
		return nil, err
	}
	u := &UDP{cfg: cfg, conn: conn, sink: sink, done: make(chan struct{}), full: limiter{every: 10 * time.Second},
		helloErrs: limiter{every: 10 * time.Second}, tooLongs: limiter{every: 10 * time.Second}, outside: limiter{every: 10 * time.Second}, stopPoll: make(chan struct{}),
		msgs: newRates[string](cfg.MsgRate, cfg.MsgBurst, maxRateKeys), overRate: limiter{every: 10 * time.Second}}
	u.ino, _ = sockopt.Inode(conn)
	if cfg.UDPBuffer > 0 {
		u.RecvBuffer = sockopt.SetRecvBuffer(conn, cfg.UDPBuffer)
	}
	if err := sockopt.EnableDropCount(conn); err != nil {
		cfg.Logger.Warn("udp: kernel drop count unavailable", "err", err)
	}
	return u, nil
}

// Addr is the bound address.
func (u *UDP) Addr() net.Addr { return u.conn.LocalAddr() }

// noteDrops counts the kernel's drop counter d, from a datagram or from /proc.
// The two sources race, so a value older than the one counted is ignored.
func (u *UDP) noteDrops(d uint32) {
	for {
		old := u.drops.Load()
		var delta uint32
		if old&(1<<32) == 0 {
			delta = d // the first reading: everything so far
		} else if delta = d - uint32(old); int32(delta) <= 0 {
			return // not newer (the counter only grows, modulo 2^32)
		}
		if u.drops.CompareAndSwap(old, 1<<32|uint64(d)) {
			u.cfg.Stats.UDPKernelDrops.Add(int64(delta))
			return
		}
	}
}

// pollDrops reads the drop counter from /proc every dropPoll until Close.
func (u *UDP) pollDrops() {
	if u.ino == 0 {
		return
	}
	t := time.NewTicker(dropPoll)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			if d, ok := sockopt.UDPDrops(u.ino); ok {
				u.noteDrops(d)
			}
		case <-u.stopPoll:
			if d, ok := sockopt.UDPDrops(u.ino); ok {
				u.noteDrops(d) // the final count, for the stop log and the last scrape
			}
			return
		}
	}
}

// Serve reads datagrams until Close.
func (u *UDP) Serve() {
	defer close(u.done)
	polled := make(chan struct{})
	go func() { u.pollDrops(); close(polled) }()
	defer func() { close(u.stopPoll); <-polled }()
	buf := make([]byte, 64<<10)
	oob := make([]byte, 128)
	names := make(map[netip.Addr]string) // device names, so a datagram costs no string
	var msgs []inlet.Message
	var arena []byte
	var from netip.AddrPort
	var device string
	emit := func(line []byte) {
		if u.cfg.overRate(u.msgs, &u.overRate, "udp", device) {
			return
		}
		start := len(arena)
		arena = append(arena, line...)
		msgs = append(msgs, inlet.Message{
			Device: device, Transport: inlet.UDP, Remote: from,
			Payload: arena[start:len(arena):len(arena)],
		})
	}
	for {
		n, oobn, _, addr, err := u.conn.ReadMsgUDPAddrPort(buf, oob)
		if err != nil {
			if u.closing.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			u.cfg.Logger.Warn("udp: read failed", "err", err)
			time.Sleep(5 * time.Millisecond)
			continue
		}
		if drops, ok := sockopt.ParseDropCount(oob[:oobn]); ok {
			u.noteDrops(drops)
		}
		u.cfg.Stats.Datagrams.Add(1)
		from = netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())
		if !u.cfg.allowed(from.Addr()) {
			notAllowed(&u.cfg, &u.outside, "udp: datagram", from)
			continue
		}
		var ok bool
		if device, ok = names[from.Addr()]; !ok {
			if len(names) >= 4096 {
				clear(names)
			}
			device = deviceID(from.Addr())
			names[from.Addr()] = device
		}
		if wire.IsHello(buf[:n]) {
			u.acked(buf[:n], from)
			continue
		}
		arena = make([]byte, 0, n)
		if k := wire.SplitDatagram(buf[:n], u.cfg.MaxMessage, emit); k > 0 {
			tooLong(&u.cfg, &u.tooLongs, "udp", deviceID(from.Addr()), k)
		}
		if len(msgs) == 0 {
			continue
		}
		compact(msgs, arena)
		queued, err := u.sink.TrySubmit(msgs)
		switch {
		case err != nil:
			u.cfg.Logger.Warn("udp: messages not queued at shutdown", "err", err)
		case !queued:
			u.cfg.Stats.QueueFull.Add(int64(len(msgs)))
			if ok, n := u.full.allow(); ok {
				u.cfg.Logger.Warn("udp: commit queue full; dropping datagrams", "suppressed", n)
			}
		default:
			u.cfg.Stats.MessagesUDP.Add(int64(len(msgs)))
			u.cfg.Stats.BytesUDP.Add(int64(len(arena)))
		}
		clear(msgs)
		msgs = msgs[:0]
	}
}

// acked handles an acknowledged datagram (docs/protocol.md §2, Acknowledged UDP): it
// is queued with an Acker that answers "ACK <seq>" to the sender once durable.
// A datagram the queue has no room for gets no answer: the device repeats it.
func (u *UDP) acked(p []byte, from netip.AddrPort) {
	h, payload, err := wire.ParseDatagram(p)
	reason, cause := "", ""
	if err != nil {
		reason = "bad-hello"
	} else if cause, _ = u.cfg.Auth.Check(from.Addr(), h.Device, h.Token); cause != "" {
		reason = "unauthorized"
	}
	if reason != "" {
		u.cfg.Stats.HelloErrors.Add(1)
		if ok, n := u.helloErrs.allow(); ok {
			u.cfg.Logger.Warn("udp: acknowledged datagram refused", "remote", from.String(), "reason", reason, "cause", cause, "suppressed", n)
		}
		return
	}
	if u.cfg.overRate(u.msgs, &u.overRate, "udp", h.Device) {
		return // no answer: the device repeats the datagram, as for queue_full
	}
	if len(payload) > u.cfg.MaxMessage {
		// Answered, unlike plain mode: otherwise the device would repeat it forever.
		tooLong(&u.cfg, &u.tooLongs, "udp", h.Device, 1)
		u.conn.WriteToUDPAddrPort(wire.AppendErr(nil, h.Seq, "too-long"), from)
		return
	}
	msg := []inlet.Message{{
		Device: h.Device, Transport: inlet.UDP, Remote: from, Boot: h.Boot, Seq: h.Seq,
		Payload: append([]byte{}, payload...), Ack: udpAck{conn: u.conn, to: from}, // never nil: the column is NOT NULL
	}}
	queued, err := u.sink.TrySubmit(msg)
	switch {
	case err != nil:
	case !queued:
		u.cfg.Stats.QueueFull.Add(1)
	default:
		u.cfg.Stats.MessagesUDP.Add(1)
		u.cfg.Stats.BytesUDP.Add(int64(len(payload)))
	}
}

// udpAck answers one acknowledged datagram.
type udpAck struct {
	conn *net.UDPConn
	to   netip.AddrPort
}

func (a udpAck) Acked(seq int64) {
	var b [32]byte
	a.conn.WriteToUDPAddrPort(wire.AppendAck(b[:0], seq), a.to)
}

// Close stops reading after what is already in the socket buffer (up to
// DrainTimeout) and waits for the reader; Release closes the socket.
func (u *UDP) Close(ctx context.Context) error {
	if u.closing.Swap(true) {
		<-u.done
		return nil
	}
	u.conn.SetReadDeadline(time.Now().Add(u.cfg.DrainTimeout))
	select {
	case <-u.done:
	case <-ctx.Done():
		u.conn.Close()
		<-u.done
	}
	return nil
}

// Release closes the socket. Call it after the commit writer has closed: until
// then the socket stays open so that acknowledged datagrams read before the
// shutdown still get their ACK after the final commit.
func (u *UDP) Release() error { return u.conn.Close() }
