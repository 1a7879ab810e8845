// Package wire owns inlet's framing and its one grammar of INLET/1
// (docs/protocol.md): how a byte stream or a datagram becomes messages, and, in
// both directions, the hellos, message lines and datagrams a device sends and
// the answers the server gives — parsed by the side that reads them and built by
// the side that writes them. The server, the Go client, the load generator and
// the test fakes all call it; none writes INLET/1 by hand. It is pure functions
// and state machines over bytes, standard library only, with no I/O, so that it
// can be fuzzed and benchmarked on its own and the device client stays light.
package wire

import "bytes"

// DefaultMaxMessage is the default --max-message.
const DefaultMaxMessage = 4096

// HeadLen is how many bytes of a too-long message Framer.TooLong is shown: a
// 19-digit seq and its space fit.
const HeadLen = 24

// reportTooLong passes the head of a discarded message, a then b, to TooLong.
func (f *Framer) reportTooLong(a, b []byte) {
	if f.TooLong == nil {
		return
	}
	var buf [HeadLen]byte
	n := copy(buf[:], a)
	n += copy(buf[n:], b)
	f.TooLong(buf[:n])
}

// Framer splits a byte stream into messages: the bytes up to each '\n', with one
// '\r' before it removed, whatever the segment boundaries. Empty messages are
// skipped. A message longer than Max is discarded through its '\n' and counted.
// The zero value is not usable: set Max.
type Framer struct {
	Max int
	// TooLong, when set, is called with the first bytes (up to HeadLen) of each
	// message discarded as too long, so that acknowledged mode can name its seq.
	TooLong func(head []byte)

	partial    []byte // the unfinished message, up to Max+1 bytes
	discarding bool   // the unfinished message is over Max and being skipped
}

// Feed frames p, calling emit for every message it completes. The slice passed to
// emit is valid only during the call (it may point into p or into the framer).
// Feed returns how many messages were discarded as too long; a too-long message is
// counted once: when more than Max+1 of its bytes are held (the last could be
// the '\r' of a valid message), or at its '\n'.
func (f *Framer) Feed(p []byte, emit func(msg []byte)) (tooLong int) {
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			tooLong += f.hold(p)
			return tooLong
		}
		line := p[:i]
		p = p[i+1:]
		if f.discarding {
			f.discarding = false
			continue
		}
		if len(f.partial) > 0 {
			if len(f.partial)+len(line) > f.Max+1 {
				f.reportTooLong(f.partial, line)
				f.partial = f.partial[:0]
				tooLong++
				continue
			}
			f.partial = append(f.partial, line...)
			line = f.partial
			f.partial = f.partial[:0]
		}
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		if len(line) > f.Max {
			f.reportTooLong(line, nil)
			tooLong++
			continue
		}
		if len(line) > 0 {
			emit(line)
		}
	}
	return tooLong
}

// hold keeps an unfinished message, or starts discarding it once it is too long.
func (f *Framer) hold(p []byte) (tooLong int) {
	if f.discarding {
		return 0
	}
	// Max+1 bytes may still end as a valid message: the last may be the '\r'.
	if len(f.partial)+len(p) > f.Max+1 {
		f.reportTooLong(f.partial, p)
		f.partial = f.partial[:0]
		f.discarding = true
		return 1
	}
	f.partial = append(f.partial, p...)
	return 0
}

// Pending reports whether an unfinished message is held.
func (f *Framer) Pending() bool { return len(f.partial) > 0 }

// End finishes the stream. When the peer closed cleanly, the unfinished message is
// a final message (with a trailing '\r' removed, like a line) and emitted if not
// empty; otherwise it is dropped and End reports truncated. A final message over
// Max is reported as tooLong. Either way the framer is then ready for a new stream.
func (f *Framer) End(clean bool, emit func(msg []byte)) (truncated, tooLong bool) {
	tail := f.partial
	f.partial = f.partial[:0]
	f.discarding = false
	if len(tail) == 0 {
		return false, false
	}
	if !clean {
		return true, false
	}
	if n := len(tail); tail[n-1] == '\r' {
		tail = tail[:n-1]
	}
	if len(tail) > f.Max {
		f.reportTooLong(tail, nil)
		return false, true // a tail of Max+1 bytes that did not end in '\r'
	}
	if len(tail) > 0 {
		emit(tail)
	}
	return false, false
}

// Reset drops any unfinished message and frees a large buffer.
func (f *Framer) Reset() {
	f.discarding = false
	if cap(f.partial) > 4*1024 {
		f.partial = nil
	} else {
		f.partial = f.partial[:0]
	}
}

// SplitDatagram frames one datagram (docs/protocol.md, plain mode over UDP): trailing NUL padding is
// removed, then the rest is framed like a stream that ends cleanly; a datagram
// without '\n' is one message. It returns how many messages were too long.
func SplitDatagram(p []byte, max int, emit func(msg []byte)) (tooLong int) {
	end := len(p)
	for end > 0 && p[end-1] == 0 {
		end--
	}
	p = p[:end]
	for len(p) > 0 {
		var line []byte
		if i := bytes.IndexByte(p, '\n'); i >= 0 {
			line, p = p[:i], p[i+1:]
		} else {
			line, p = p, nil
		}
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		switch {
		case len(line) > max:
			tooLong++
		case len(line) > 0:
			emit(line)
		}
	}
	return tooLong
}
