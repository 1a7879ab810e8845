package publish_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/inletdev/inlet"
	"github.com/inletdev/inlet/publish"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// BenchmarkIngest measures the durable ingest rate of the commit writer into
// SQLite with and without a publisher to JetStream (an embedded server, file
// storage) running beside it: issue 11 asks that publishing cost at most 20%
// of the ingest rate. msgs/s is the ingest rate (until the last message is
// committed); published_msgs/s, with publishing, the rate until JetStream has
// acknowledged the last one; cpu_us/msg is this process's CPU time per
// message (getrusage). With $INLET_BENCH_NATS set to a NATS server's URL it
// publishes there (a stream INLET for inlet.msg.> is created, or purged, for
// each run) instead of to a server embedded in the test process, so that
// cpu_us/msg is inlet's own. Run (BENCHMARKS.md):
//
//	go test ./publish/ -run '^$' -bench Ingest -benchtime 100000x -count 3
func BenchmarkIngest(b *testing.B) {
	for _, on := range []bool{false, true} {
		b.Run(fmt.Sprintf("publish=%v", on), func(b *testing.B) {
			benchIngest(b, on)
		})
	}
}

func benchIngest(b *testing.B, publishing bool) {
	n := newNode(b, b.TempDir()+"/inlet.db")
	defer n.close()
	var st *inlet.Stats
	if publishing {
		url := os.Getenv("INLET_BENCH_NATS")
		if url == "" {
			ns := startNATS(b)
			defer ns.stop()
			ns.createStream()
			url = ns.url()
		} else {
			externalStream(b, url)
		}
		st = n.startPublisher(url, publish.Config{})
	}
	remote := netip.MustParseAddrPort("192.168.1.7:40000")
	const batch = 1000
	b.ResetTimer()
	cpu0 := cpuTime()
	start := time.Now()
	for done := 0; done < b.N; done += batch {
		k := min(batch, b.N-done)
		msgs := make([]inlet.Message, k)
		for i := range msgs {
			msgs[i] = inlet.Message{ReceivedAt: time.Now().UnixNano(), Device: fmt.Sprintf("10.0.%d.%d", i%4, i%50),
				Transport: inlet.TCP, Remote: remote, Payload: fmt.Appendf(nil, "temp=%d.%d hum=%d", i%40, i%10, i%100)}
		}
		if err := n.writer.Submit(context.Background(), msgs); err != nil {
			b.Fatal(err)
		}
	}
	for n.lastID() < int64(b.N) {
		time.Sleep(time.Millisecond)
	}
	ingest := time.Since(start)
	b.ReportMetric(float64(b.N)/ingest.Seconds(), "msgs/s")
	if publishing {
		for st.Published.Load() < int64(b.N) {
			time.Sleep(time.Millisecond)
		}
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "published_msgs/s")
	}
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu_us/msg")
	b.StopTimer()
}

// externalStream makes an empty stream INLET for inlet.msg.> on the server at url.
func externalStream(b *testing.B, url string) {
	nc, err := nats.Connect(url)
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	js.DeleteStream(ctx, stream)
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: stream, Subjects: []string{publish.SubjectPrefix + ">"},
		Storage: jetstream.FileStorage, Duplicates: time.Hour}); err != nil {
		b.Fatal(err)
	}
}

// cpuTime is this process's user and system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
