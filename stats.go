package inlet

import "sync/atomic"

// Stats are the server's counters, shared by the listeners, the writer and the
// HTTP layer that exports them. Every field only ever grows, except the gauges
// marked as such.
type Stats struct {
	ConnsAccepted atomic.Int64 // TCP connections accepted and served
	ConnsOpen     atomic.Int64 // gauge: TCP connections open now

	MessagesTCP atomic.Int64 // messages framed and queued, by transport
	MessagesUDP atomic.Int64
	BytesTCP    atomic.Int64 // payload bytes of those messages
	BytesUDP    atomic.Int64
	Datagrams   atomic.Int64 // UDP datagrams received

	TooLong   atomic.Int64
	Truncated atomic.Int64
	Refused   atomic.Int64
	QueueFull atomic.Int64

	UDPKernelDrops atomic.Int64 // datagrams the kernel dropped for a full socket buffer

	Committed    atomic.Int64 // messages durably stored
	Duplicates   atomic.Int64 // acknowledged resends not stored again
	AckedConns   atomic.Int64 // acknowledged-mode TCP connections accepted (hello answered OK)
	HelloErrors  atomic.Int64 // hellos refused (bad-hello, unauthorized, busy)
	SeqErrors    atomic.Int64 // acknowledged lines refused with ERR (bad-seq; too-long counts as too_long)
	Batches      atomic.Int64 // transactions committed
	StoreErrors  atomic.Int64 // failed commits (each retried)
	QueueDepth   atomic.Int64 // gauge: messages waiting for the writer
	StoreHealthy atomic.Bool  // gauge: the last commit succeeded
}

// Rejected returns the counter for a reason.
func (s *Stats) Rejected(r Reason) *atomic.Int64 {
	switch r {
	case ReasonTooLong:
		return &s.TooLong
	case ReasonTruncated:
		return &s.Truncated
	case ReasonRefused:
		return &s.Refused
	case ReasonQueueFull:
		return &s.QueueFull
	}
	panic("inlet: unknown reason " + string(r))
}
