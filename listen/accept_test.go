package listen_test

import (
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/inletdev/inlet/listen"
)

// deviceAddr is the loopback address of emulated device i (1,000s of them).
func deviceAddr(i int) string { return fmt.Sprintf("127.1.%d.%d", i/250, i%250+1) }

// With the queue held full by a stream, the accept loop still takes every new
// connection at once: 1,000 connect-per-message devices are all accepted, and
// new acknowledged devices are answered, while nothing can be queued. Then, with
// room again, every line is queued.
func TestAcceptNeverWaitsOnAFullQueue(t *testing.T) {
	sink := newFakeSink()
	sink.stored["late/b2"] = 41
	sink.durable["known/b1"] = 9
	ln, stats := startTCP(t, sink, listen.Config{})
	sink.setFull(true)

	// A stream keeps sending into the full queue: its reader waits, nobody else.
	stream := dialFrom(t, "127.0.0.2", ln.Addr())
	if _, err := stream.Write([]byte("s1\ns2\n")); err != nil {
		t.Fatal(err)
	}

	const devs = 1000
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for i := range devs {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			sendOnce(t, deviceAddr(i), ln.Addr(), strconv.Itoa(i)+"\r\n")
		})
	}
	wg.Wait()
	waitFor(t, "every connection accepted while the queue is full", 30*time.Second, func() bool {
		return stats.ConnsAccepted.Load() == devs+1
	})

	// New acknowledged devices are answered while the queue stays full: one the
	// writer knows, and one whose answer is read from the store.
	for _, c := range []struct{ src, device, boot, want string }{
		{"127.0.0.3", "known", "b1", "INLET/1 OK last=9"},
		{"127.0.0.4", "late", "b2", "INLET/1 OK last=41"},
		{"127.0.0.5", "new", "b3", "INLET/1 OK last=0"},
	} {
		a := dialAck(t, c.src, ln.Addr())
		a.send(t, hello(c.device, c.boot))
		if got := a.line(t, 10*time.Second); got != c.want {
			t.Errorf("%s: hello answered %q, want %q", c.device, got, c.want)
		}
	}
	if n := sink.count(); n != 0 {
		t.Fatalf("%d messages queued into a full queue", n)
	}

	sink.setFull(false)
	waitFor(t, "every line queued", 30*time.Second, func() bool { return sink.count() == devs+2 })
	for i := range devs {
		if got := sink.payloads(deviceAddr(i)); !slices.Equal(got, []string{strconv.Itoa(i)}) {
			t.Fatalf("device %s queued %q, want [%d]", deviceAddr(i), got, i)
		}
	}
	if got := sink.payloads("127.0.0.2"); !slices.Equal(got, []string{"s1", "s2"}) {
		t.Errorf("stream queued %q", got)
	}
}

// A hello whose answer needs the store does not hold up the accept loop: while
// those reads wait, other devices are accepted and answered; then each gets its
// OK, and the ACK of the message it sent with its hello after it.
func TestHelloNeedingTheStoreDoesNotBlockAccept(t *testing.T) {
	const slowDevs = 20
	sink := newFakeSink()
	for i := range slowDevs {
		sink.stored[fmt.Sprintf("slow%d/b1", i)] = 7
	}
	sink.durable["quick/b2"] = 3
	sink.storeReq = make(chan string, slowDevs)
	gate := make(chan struct{})
	sink.store = gate
	ln, _ := startTCP(t, sink, listen.Config{})
	open := sync.OnceFunc(func() { close(gate) })
	t.Cleanup(open) // before the listener's Close: a failed test must not hang there

	// Each sends its hello and a message at once: most are read by the accept
	// loop itself, which must not be the one to read the store.
	var slow []*ackClient
	for i := range slowDevs {
		a := dialAck(t, fmt.Sprintf("127.0.0.%d", 10+i), ln.Addr())
		a.send(t, hello(fmt.Sprintf("slow%d", i), "b1"), "8 eight\n")
		slow = append(slow, a)
	}
	for range slowDevs {
		select {
		case <-sink.storeReq:
		case <-time.After(10 * time.Second):
			t.Fatal("not every hello's answer is being read from the store")
		}
	}

	quick := dialAck(t, "127.0.0.3", ln.Addr())
	quick.send(t, hello("quick", "b2"), "4 four\n")
	if got := quick.line(t, 10*time.Second); got != "INLET/1 OK last=3" {
		t.Fatalf("quick device answered %q while others' store reads wait", got)
	}
	if got := quick.line(t, 10*time.Second); got != "ACK 4" {
		t.Fatalf("quick device: %q, want ACK 4", got)
	}
	sendOnce(t, "127.0.0.4", ln.Addr(), "plain\n")
	waitFor(t, "the plain device's line", 10*time.Second, func() bool { return len(sink.payloads("127.0.0.4")) == 1 })
	if got := sink.payloads("slow0"); len(got) != 0 {
		t.Fatalf("a message was queued before its hello was answered: %q", got)
	}

	open()
	for i, a := range slow {
		if got := a.line(t, 10*time.Second); got != "INLET/1 OK last=7" {
			t.Fatalf("slow%d answered %q", i, got)
		}
		if got := a.line(t, 10*time.Second); got != "ACK 8" {
			t.Fatalf("slow%d: %q, want ACK 8", i, got)
		}
	}
}

// A hello alone on its connection (the device waits for OK before sending),
// needing the store, is answered too, and the connection stays usable.
func TestHelloAloneNeedingTheStore(t *testing.T) {
	sink := newFakeSink()
	sink.stored["d/b"] = 2
	ln, _ := startTCP(t, sink, listen.Config{})
	a := dialAck(t, "127.0.0.2", ln.Addr())
	a.send(t, hello("d", "b"))
	if got := a.line(t, 10*time.Second); got != "INLET/1 OK last=2" {
		t.Fatalf("answered %q", got)
	}
	a.send(t, "3 x\n")
	if got := a.line(t, 10*time.Second); got != "ACK 3" {
		t.Fatalf("got %q, want ACK 3", got)
	}
}

// A connect-per-message device's lines keep their order across its connections,
// however the queue fills and empties between them: a connection whose line
// waits for room is never overtaken by the device's next one.
func TestDeviceOrderAcrossConnections(t *testing.T) {
	sink := newFakeSink()
	ln, stats := startTCP(t, sink, listen.Config{})
	const n = 60
	var want []string
	full := false
	for i := 1; i <= n; i++ {
		if i%7 == 0 {
			full = !full
			sink.setFull(full)
		}
		sendOnce(t, "127.0.0.9", ln.Addr(), strconv.Itoa(i)+"\n")
		want = append(want, strconv.Itoa(i))
		// The line is read before the device's next connection, as the
		// tutorial's device sends one a second: queued, or held for room.
		waitFor(t, fmt.Sprintf("line %d read", i), 10*time.Second, func() bool {
			return ln.Framed() == int64(i) && stats.ConnsAccepted.Load() == int64(i)
		})
	}
	sink.setFull(false)
	waitFor(t, "every line queued", 10*time.Second, func() bool { return sink.count() == n })
	if got := sink.payloads("127.0.0.9"); !slices.Equal(got, want) {
		t.Fatalf("queued in the order %q", got)
	}
}
