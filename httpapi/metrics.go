package httpapi

import (
	"github.com/inletdev/inlet"
	"github.com/prometheus/client_golang/prometheus"
)

var (
	descConnsAccepted = prometheus.NewDesc("inlet_connections_accepted_total", "TCP connections accepted and served.", []string{"transport"}, nil)
	descConnsRefused  = prometheus.NewDesc("inlet_connections_refused_total", "TCP connections refused over --max-conns or --max-conns-per-ip.", []string{"transport"}, nil)
	descConnsOpen     = prometheus.NewDesc("inlet_connections_open", "TCP connections open now.", []string{"transport"}, nil)
	descMessages      = prometheus.NewDesc("inlet_messages_received_total", "Messages framed and queued for commit.", []string{"transport"}, nil)
	descBytes         = prometheus.NewDesc("inlet_payload_bytes_received_total", "Payload bytes of the messages received.", []string{"transport"}, nil)
	descDatagrams     = prometheus.NewDesc("inlet_udp_datagrams_total", "UDP datagrams received.", nil, nil)
	descRejected      = prometheus.NewDesc("inlet_rejected_total", "Input rejected or cut, by reason (too_long, truncated, refused, queue_full, rate_limited, not_allowed).", []string{"reason"}, nil)
	descKernelDrops   = prometheus.NewDesc("inlet_udp_kernel_drops_total", "Datagrams the kernel dropped because the socket receive buffer was full.", nil, nil)
	descCommitted     = prometheus.NewDesc("inlet_messages_committed_total", "Messages durably stored.", nil, nil)
	descBatches       = prometheus.NewDesc("inlet_batches_committed_total", "Transactions committed.", nil, nil)
	descBatchSize     = prometheus.NewDesc("inlet_batch_size_messages", "Messages per committed transaction.", nil, nil)
	descCommitSeconds = prometheus.NewDesc("inlet_commit_duration_seconds", "Time to write and sync one transaction.", nil, nil)
	descAckSeconds    = prometheus.NewDesc("inlet_ack_latency_seconds", "Acknowledged mode: from a message entering the commit queue to its ACK being handed to the connection.", nil, nil)
	descStoreErrors   = prometheus.NewDesc("inlet_store_errors_total", "Failed commits (each is retried).", nil, nil)
	descQueueDepth    = prometheus.NewDesc("inlet_queue_messages", "Messages waiting for the writer.", nil, nil)
	descStoreUp       = prometheus.NewDesc("inlet_store_healthy", "1 when the last commit succeeded.", nil, nil)
	descDuplicates    = prometheus.NewDesc("inlet_duplicates_total", "Acknowledged resends answered with ACK and not stored again.", nil, nil)
	descAckedConns    = prometheus.NewDesc("inlet_acked_connections_total", "TCP connections in acknowledged mode (hello answered OK).", nil, nil)
	descHelloErrors   = prometheus.NewDesc("inlet_hello_errors_total", "Acknowledged-mode hellos refused (bad-hello, unauthorized, busy).", nil, nil)
	descSeqErrors     = prometheus.NewDesc("inlet_seq_errors_total", "Acknowledged message lines refused as bad-seq.", nil, nil)
	descSubscribers   = prometheus.NewDesc("inlet_stream_subscribers", "Open /api/stream connections.", nil, nil)
	descStreamDropped = prometheus.NewDesc("inlet_stream_dropped_total", "Stream subscribers dropped for not taking data.", nil, nil)
	descTLSHandshakes = prometheus.NewDesc("inlet_tls_handshakes_total", "TLS handshakes completed on the --tls port.", nil, nil)
	descConnsClosed   = prometheus.NewDesc("inlet_connections_closed_total", "TCP and TLS connections closed by a limit, by reason (rate_limited, first_line_timeout, line_timeout, idle_timeout, evicted).", []string{"reason"}, nil)
	descTLSFailures   = prometheus.NewDesc("inlet_tls_handshake_failures_total", "Failed TLS handshakes on the --tls port, by reason (old_version, timeout, not_tls, closed, handshake).", []string{"reason"}, nil)
	descAuthFailures  = prometheus.NewDesc("inlet_auth_failures_total", "Hellos refused for their token (--token, --require-token, --max-failed-hellos), and authenticated connections closed on revocation, by reason.", []string{"reason"}, nil)

	// serve --publish only.
	descPublished     = prometheus.NewDesc("inlet_published_total", "Messages published to NATS JetStream and stored there (acknowledged as new).", nil, nil)
	descPublishDups   = prometheus.NewDesc("inlet_publish_duplicates_total", "Messages published again after a failure that JetStream already held (dropped by Nats-Msg-Id).", nil, nil)
	descPublishErrors = prometheus.NewDesc("inlet_publish_errors_total", "Failed publishes (each retried from the saved position).", nil, nil)
	descPublishLag    = prometheus.NewDesc("inlet_publish_lag_messages", "Messages committed and not yet acknowledged by JetStream.", nil, nil)
	descNATSConnected = prometheus.NewDesc("inlet_nats_connected", "1 while connected to a NATS server.", nil, nil)
)

var allDescs = []*prometheus.Desc{descConnsAccepted, descConnsRefused, descConnsOpen, descMessages, descBytes,
	descDatagrams, descRejected, descKernelDrops, descCommitted, descBatches, descBatchSize, descCommitSeconds,
	descAckSeconds, descStoreErrors, descQueueDepth, descStoreUp, descDuplicates, descAckedConns, descHelloErrors,
	descSeqErrors, descSubscribers, descStreamDropped, descTLSHandshakes, descTLSFailures, descConnsClosed, descAuthFailures,
	descPublished, descPublishDups, descPublishErrors, descPublishLag, descNATSConnected}

// statsCollector exports inlet.Stats as it is at each scrape.
type statsCollector struct{ s *inlet.Stats }

func (c *statsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range allDescs {
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
	histogram := func(d *prometheus.Desc, h *inlet.Histogram, bounds []float64) {
		cum, count, sum := h.Snapshot(bounds)
		buckets := make(map[float64]uint64, len(bounds))
		for i, b := range bounds {
			buckets[b] = cum[i]
		}
		ch <- prometheus.MustNewConstHistogram(d, count, sum, buckets)
	}
	counter(descConnsAccepted, s.ConnsAccepted.Load(), "tcp")
	counter(descConnsRefused, s.Refused.Load(), "tcp")
	gauge(descConnsOpen, s.ConnsOpen.Load(), "tcp")
	counter(descMessages, s.MessagesTCP.Load(), "tcp")
	counter(descMessages, s.MessagesUDP.Load(), "udp")
	counter(descBytes, s.BytesTCP.Load(), "tcp")
	counter(descBytes, s.BytesUDP.Load(), "udp")
	counter(descDatagrams, s.Datagrams.Load())
	for _, r := range inlet.Reasons {
		counter(descRejected, s.Rejected(r).Load(), string(r))
	}
	counter(descRejected, s.NotAllowed.Load(), "not_allowed") // connections and datagrams from outside --allow
	counter(descKernelDrops, s.UDPKernelDrops.Load())
	counter(descCommitted, s.Committed.Load())
	counter(descBatches, s.Batches.Load())
	histogram(descBatchSize, &s.BatchSize, inlet.BatchSizeBuckets)
	histogram(descCommitSeconds, &s.CommitSeconds, inlet.LatencyBuckets)
	histogram(descAckSeconds, &s.AckSeconds, inlet.LatencyBuckets)
	counter(descStoreErrors, s.StoreErrors.Load())
	gauge(descQueueDepth, s.QueueDepth.Load())
	counter(descDuplicates, s.Duplicates.Load())
	counter(descAckedConns, s.AckedConns.Load())
	counter(descHelloErrors, s.HelloErrors.Load())
	counter(descSeqErrors, s.SeqErrors.Load())
	gauge(descSubscribers, s.StreamSubscribers.Load())
	counter(descStreamDropped, s.StreamDropped.Load())
	counter(descTLSHandshakes, s.TLSHandshakes.Load())
	s.TLSHandshakeFailures.Range(func(reason string, n int64) { counter(descTLSFailures, n, reason) })
	s.ConnsClosed.Range(func(reason string, n int64) { counter(descConnsClosed, n, reason) })
	s.AuthFailures.Range(func(reason string, n int64) { counter(descAuthFailures, n, reason) })
	var up int64
	if s.StoreHealthy.Load() {
		up = 1
	}
	gauge(descStoreUp, up)
	if s.Publishing.Load() {
		counter(descPublished, s.Published.Load())
		counter(descPublishDups, s.PublishDuplicates.Load())
		counter(descPublishErrors, s.PublishErrors.Load())
		gauge(descPublishLag, s.PublishLag.Load())
		var conn int64
		if s.NATSConnected.Load() {
			conn = 1
		}
		gauge(descNATSConnected, conn)
	}
}
