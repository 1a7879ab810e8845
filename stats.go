package inlet

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

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

	BatchSize     Histogram // messages per committed transaction (BatchSizeBuckets)
	CommitSeconds Histogram // time to write and sync one transaction (LatencyBuckets)
	AckSeconds    Histogram // acknowledged mode: queue entry to ACK handed over (LatencyBuckets)

	StreamSubscribers atomic.Int64 // gauge: open live-stream subscribers
	StreamDropped     atomic.Int64 // live-stream subscribers dropped for falling behind

	TLSHandshakes        atomic.Int64 // TLS handshakes completed (serve --tls)
	TLSHandshakeFailures Labeled      // failed TLS handshakes, by reason (tlsserve.Reasons)
	NotAllowed           atomic.Int64 // connections and datagrams from outside --allow, dropped unread
	RateLimited          atomic.Int64 // messages dropped and hellos refused over --max-msg-rate
	ConnsClosed          Labeled      // TCP and TLS connections closed by a limit, by reason (listen.CloseReasons)
	AuthFailures         Labeled      // hellos refused for their token, and connections closed on revocation, by reason (listen.AuthReasons)

	// Publishing to NATS JetStream (serve --publish); exported only when Publishing.
	Publishing        atomic.Bool  // publishing is configured
	Published         atomic.Int64 // messages JetStream acknowledged as new
	PublishDuplicates atomic.Int64 // messages JetStream acknowledged as already held (published again after a failure)
	PublishErrors     atomic.Int64 // failed publishes or reads (each retried from the position)
	PublishLag        atomic.Int64 // gauge: messages committed and not yet acknowledged by JetStream
	NATSConnected     atomic.Bool  // gauge: connected to a NATS server
}

// Labeled counts events by a label value (a metric's label), for labels whose
// values another package defines. Its zero value is ready; it is safe for
// concurrent use.
type Labeled struct {
	m sync.Map // string -> *atomic.Int64
}

// Add adds n to the count of label (n = 0 makes label exported as zero).
func (l *Labeled) Add(label string, n int64) {
	c, ok := l.m.Load(label)
	if !ok {
		c, _ = l.m.LoadOrStore(label, new(atomic.Int64))
	}
	c.(*atomic.Int64).Add(n)
}

// Get returns the count of label.
func (l *Labeled) Get(label string) int64 {
	if c, ok := l.m.Load(label); ok {
		return c.(*atomic.Int64).Load()
	}
	return 0
}

// Range calls f with every label and its count, in no particular order.
func (l *Labeled) Range(f func(label string, n int64)) {
	l.m.Range(func(k, v any) bool {
		f(k.(string), v.(*atomic.Int64).Load())
		return true
	})
}

// ObserveCommit records one committed transaction of n messages that took d.
func (s *Stats) ObserveCommit(n int, d time.Duration) {
	s.BatchSize.Observe(BatchSizeBuckets, float64(n))
	s.CommitSeconds.Observe(LatencyBuckets, d.Seconds())
}

// Bucket upper bounds of the histograms in Stats.
var (
	BatchSizeBuckets = []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384}
	LatencyBuckets   = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}
)

// maxBuckets bounds the bucket lists a Histogram can count.
const maxBuckets = 24

// Histogram counts observations into buckets without locks. Its zero value is
// ready; every Observe of one histogram must pass the same bounds (at most 24,
// ascending), which are the upper bounds of the buckets, Prometheus-style.
type Histogram struct {
	counts  [maxBuckets + 1]atomic.Uint64 // per bucket, not cumulative; the last is +Inf
	sumBits atomic.Uint64                 // float64 bits of the sum of observations
}

// Observe adds v.
func (h *Histogram) Observe(bounds []float64, v float64) {
	i := 0
	for i < len(bounds) && v > bounds[i] {
		i++
	}
	if i == len(bounds) {
		i = maxBuckets
	}
	h.counts[i].Add(1)
	for {
		old := h.sumBits.Load()
		if h.sumBits.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+v)) {
			return
		}
	}
}

// Snapshot returns the cumulative count at each bound, the total count and the
// sum, as Prometheus exports them. Concurrent Observes may be half included.
func (h *Histogram) Snapshot(bounds []float64) (cumulative []uint64, count uint64, sum float64) {
	cumulative = make([]uint64, len(bounds))
	for i := range bounds {
		count += h.counts[i].Load()
		cumulative[i] = count
	}
	count += h.counts[maxBuckets].Load()
	return cumulative, count, math.Float64frombits(h.sumBits.Load())
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
	case ReasonRateLimited:
		return &s.RateLimited
	}
	panic("inlet: unknown reason " + string(r))
}
