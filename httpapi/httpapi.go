// Package httpapi owns inlet's HTTP surface: health and readiness probes and the
// Prometheus metrics. It reads the shared inlet.Stats; it never writes to the
// store or the sockets.
package httpapi

import (
	"net/http"

	"github.com/inletdev/inlet"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Ready reports whether the server can take data: listeners bound and the store
// accepting commits.
type Ready func() bool

// Handler serves /healthz, /readyz and /metrics.
func Handler(stats *inlet.Stats, ready Ready) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(&statsCollector{s: stats})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if !ready() {
			http.Error(w, "not ready: store is failing commits", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ready\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	return mux
}

var (
	descConnsAccepted = prometheus.NewDesc("inlet_connections_accepted_total", "TCP connections accepted and served.", []string{"transport"}, nil)
	descConnsOpen     = prometheus.NewDesc("inlet_connections_open", "TCP connections open now.", []string{"transport"}, nil)
	descMessages      = prometheus.NewDesc("inlet_messages_received_total", "Messages framed and queued for commit.", []string{"transport"}, nil)
	descBytes         = prometheus.NewDesc("inlet_payload_bytes_received_total", "Payload bytes of the messages received.", []string{"transport"}, nil)
	descDatagrams     = prometheus.NewDesc("inlet_udp_datagrams_total", "UDP datagrams received.", nil, nil)
	descRejected      = prometheus.NewDesc("inlet_rejected_total", "Input rejected or cut, by reason (too_long, truncated, refused, queue_full).", []string{"reason"}, nil)
	descKernelDrops   = prometheus.NewDesc("inlet_udp_kernel_drops_total", "Datagrams the kernel dropped because the socket receive buffer was full.", nil, nil)
	descCommitted     = prometheus.NewDesc("inlet_messages_committed_total", "Messages durably stored.", nil, nil)
	descBatches       = prometheus.NewDesc("inlet_batches_committed_total", "Transactions committed.", nil, nil)
	descStoreErrors   = prometheus.NewDesc("inlet_store_errors_total", "Failed commits (each is retried).", nil, nil)
	descQueueDepth    = prometheus.NewDesc("inlet_queue_messages", "Messages waiting for the writer.", nil, nil)
	descStoreUp       = prometheus.NewDesc("inlet_store_healthy", "1 when the last commit succeeded.", nil, nil)
	descDuplicates    = prometheus.NewDesc("inlet_duplicates_total", "Acknowledged resends answered with ACK and not stored again.", nil, nil)
	descAckedConns    = prometheus.NewDesc("inlet_acked_connections_total", "TCP connections in acknowledged mode (hello answered OK).", nil, nil)
	descHelloErrors   = prometheus.NewDesc("inlet_hello_errors_total", "Acknowledged-mode hellos refused (bad-hello, unauthorized, busy).", nil, nil)
	descSeqErrors     = prometheus.NewDesc("inlet_seq_errors_total", "Acknowledged message lines refused as bad-seq.", nil, nil)
)

// statsCollector exports inlet.Stats as it is at each scrape.
type statsCollector struct{ s *inlet.Stats }

func (c *statsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descConnsAccepted, descConnsOpen, descMessages, descBytes, descDatagrams,
		descRejected, descKernelDrops, descCommitted, descBatches, descStoreErrors, descQueueDepth, descStoreUp,
		descDuplicates, descAckedConns, descHelloErrors, descSeqErrors} {
		ch <- d
	}
}

func (c *statsCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.s
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), labels...)
	}
	counter(descConnsAccepted, s.ConnsAccepted.Load(), "tcp")
	gauge(descConnsOpen, s.ConnsOpen.Load(), "tcp")
	counter(descMessages, s.MessagesTCP.Load(), "tcp")
	counter(descMessages, s.MessagesUDP.Load(), "udp")
	counter(descBytes, s.BytesTCP.Load(), "tcp")
	counter(descBytes, s.BytesUDP.Load(), "udp")
	counter(descDatagrams, s.Datagrams.Load())
	for _, r := range inlet.Reasons {
		counter(descRejected, s.Rejected(r).Load(), string(r))
	}
	counter(descKernelDrops, s.UDPKernelDrops.Load())
	counter(descCommitted, s.Committed.Load())
	counter(descBatches, s.Batches.Load())
	counter(descStoreErrors, s.StoreErrors.Load())
	gauge(descQueueDepth, s.QueueDepth.Load())
	counter(descDuplicates, s.Duplicates.Load())
	counter(descAckedConns, s.AckedConns.Load())
	counter(descHelloErrors, s.HelloErrors.Load())
	counter(descSeqErrors, s.SeqErrors.Load())
	var up int64
	if s.StoreHealthy.Load() {
		up = 1
	}
	gauge(descStoreUp, up)
}
