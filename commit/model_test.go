package commit_test

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/inletdev/inlet"
	"github.com/inletdev/inlet/commit"
	"github.com/inletdev/inlet/sqlite"
)

var modelSeed = flag.Uint64("model-seed", 0, "TestDedupModel: run this seed only (0: the built-in seeds)")

// modelAcker counts the acknowledgements of the messages it was given.
type modelAcker struct{ n *atomic.Int64 }

func (a modelAcker) Acked(int64) { a.n.Add(1) }

// modelBoot is the reference of one (device, boot): the seqs stored, nothing else.
type modelBoot struct {
	seqs map[int64]bool
	next int64 // the device's next new seq
}

// The reference: which (device, boot, seq) are stored (every one sent, once),
// how often each device resent one already stored, and the boots in the order
// each device started them.
type model struct {
	boots map[[2]string]*modelBoot
	order map[string][]string // device -> boots, first to latest
	dups  map[string]int64
	plain map[string]int64 // plain device -> messages
}

// TestDedupModel drives the commit writer and the SQLite store with random
// acknowledged traffic (new seqs with gaps, resends of stored seqs, fills of
// missing ones, new boots, resends to old boots, now and then a burst large
// enough to bypass the recent half) and plain messages, restarting
// the writer and the store at random, evicting every idle boot at once
// (BootIdle 1 ns) and merging the recent rows at random sizes, and compares what
// is stored and the accounting with a map-based reference after every restart.
func TestDedupModel(t *testing.T) {
	seeds := []uint64{1, 2, 3, 20261130}
	if *modelSeed != 0 {
		seeds = []uint64{*modelSeed}
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { runModel(t, seed) })
	}
}

func runModel(t *testing.T, seed uint64) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	path := filepath.Join(t.TempDir(), "inlet.db")
	ref := &model{boots: make(map[[2]string]*modelBoot), order: make(map[string][]string),
		dups: make(map[string]int64), plain: make(map[string]int64)}
	devices := []string{"d0", "d1", "d2", "d3", "d4"}
	bootN := 0
	var acks atomic.Int64
	var sent int64

	open := func() (*sqlite.Store, *commit.Writer) {
		st, err := sqlite.Open(ctx, path, sqlite.Options{MergeRows: 1 + rng.IntN(60)})
		if err != nil {
			t.Fatal(err)
		}
		w, err := commit.New(ctx, st, commit.Config{BootIdle: time.Nanosecond, Interval: time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		return st, w
	}
	st, w := open()
	submit := func(msgs []inlet.Message) {
		for i := range msgs {
			if msgs[i].Seq != 0 {
				msgs[i].Ack = modelAcker{&acks}
				sent++
			}
		}
		if err := w.Submit(ctx, msgs); err != nil {
			t.Fatal(err)
		}
	}
	// settle waits until every acknowledged message has been acknowledged
	// (duplicates too), so the reference and the store agree on what happened.
	settle := func() {
		deadline := time.Now().Add(20 * time.Second)
		for acks.Load() < sent {
			if time.Now().After(deadline) {
				t.Fatalf("seed %d: %d of %d acknowledged", seed, acks.Load(), sent)
			}
			time.Sleep(200 * time.Microsecond)
		}
	}
	msg := func(dev, boot string, seq int64) inlet.Message {
		return inlet.Message{Device: dev, Boot: boot, Seq: seq, Transport: inlet.TCP, Payload: []byte(fmt.Sprintf("%s/%s/%d", dev, boot, seq))}
	}

	for step := range 400 {
		dev := devices[rng.IntN(len(devices))]
		var batch []inlet.Message
		rebooted := false
		switch op := rng.IntN(20); {
		case op == 0: // a restart of the store and the writer
			settle()
			if err := w.Close(ctx); err != nil {
				t.Fatal(err)
			}
			if err := st.Close(); err != nil {
				t.Fatal(err)
			}
			checkModel(t, seed, step, path, ref)
			st, w = open()
			continue
		case op <= 2 || len(ref.order[dev]) == 0: // a reboot: a new boot
			bootN++
			boot := fmt.Sprintf("b%d", bootN)
			ref.order[dev] = append(ref.order[dev], boot)
			ref.boots[[2]string{dev, boot}] = &modelBoot{seqs: make(map[int64]bool), next: 1}
			rebooted = true // its first message goes in this step
		case op == 3: // plain messages
			for range 1 + rng.IntN(3) {
				batch = append(batch, inlet.Message{Device: "plain-" + dev, Transport: inlet.UDP, Payload: []byte("x")})
				ref.plain["plain-"+dev]++
			}
		}
		if len(batch) == 0 {
			// Acknowledged traffic on the latest boot, or now and then on an
			// older one (an outbox resending after a reboot).
			boots := ref.order[dev]
			boot := boots[len(boots)-1]
			if len(boots) > 1 && !rebooted && rng.IntN(4) == 0 {
				boot = boots[rng.IntN(len(boots)-1)]
			}
			mb := ref.boots[[2]string{dev, boot}]
			n := 1 + rng.IntN(6)
			if rng.IntN(25) == 0 {
				n = 1100 // a burst: the store writes it straight into the indexed tables
			}
			for range n {
				var seq int64
				switch k := rng.IntN(10); {
				case k < 5 || mb.next == 1: // the next seq, sometimes after a gap
					if rng.IntN(4) == 0 {
						mb.next += int64(1 + rng.IntN(4))
					}
					seq = mb.next
					mb.next++
				default: // a resend or a fill of anything sent or skipped so far
					seq = 1 + rng.Int64N(mb.next-1)
				}
				if mb.seqs[seq] {
					ref.dups[dev]++
				}
				mb.seqs[seq] = true
				batch = append(batch, msg(dev, boot, seq))
			}
		}
		submit(batch)
		if rng.IntN(3) == 0 {
			settle()
		}
	}
	settle()
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	checkModel(t, seed, -1, path, ref)
}

// checkModel compares the database at path with the reference: every row once,
// and each device's and boot's accounting as its rows say.
func checkModel(t *testing.T, seed uint64, step int, path string, ref *model) {
	t.Helper()
	ctx := context.Background()
	r, err := sqlite.Open(ctx, path, sqlite.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	where := fmt.Sprintf("seed %d, step %d", seed, step)
	got := make(map[[3]string]int)
	plain := make(map[string]int64)
	err = r.Messages(ctx, inlet.Query{}, func(m *inlet.Stored) error {
		if m.Seq == 0 {
			plain[m.Device]++
			return nil
		}
		got[[3]string{m.Device, m.Boot, fmt.Sprint(m.Seq)}]++
		if string(m.Payload) != fmt.Sprintf("%s/%s/%d", m.Device, m.Boot, m.Seq) {
			t.Errorf("%s: %s/%s/%d stored with payload %q", where, m.Device, m.Boot, m.Seq, m.Payload)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	for k, mb := range ref.boots {
		for seq := range mb.seqs {
			want++
			if n := got[[3]string{k[0], k[1], fmt.Sprint(seq)}]; n != 1 {
				t.Errorf("%s: %s/%s/%d stored %d times, want once", where, k[0], k[1], seq, n)
			}
		}
	}
	if len(got) != want {
		t.Errorf("%s: %d distinct (device, boot, seq) stored, want %d", where, len(got), want)
	}
	for d, n := range ref.plain {
		if plain[d] != n {
			t.Errorf("%s: plain device %s: %d rows, want %d", where, d, plain[d], n)
		}
	}

	boots, err := r.Boots(ctx)
	if err != nil {
		t.Fatal(err)
	}
	type devWant struct{ messages, gaps, missing int64 }
	dw := make(map[string]*devWant)
	seen := 0
	for _, b := range boots {
		mb := ref.boots[[2]string{b.Device, b.Boot}]
		if mb == nil {
			t.Errorf("%s: boot %s/%s stored but never sent", where, b.Device, b.Boot)
			continue
		}
		seen++
		seqs := make([]int64, 0, len(mb.seqs))
		for s := range mb.seqs {
			seqs = append(seqs, s)
		}
		slices.Sort(seqs)
		var last int64
		var ranges []inlet.SeqRange
		for _, s := range seqs {
			if s > last+1 {
				ranges = append(ranges, inlet.SeqRange{From: last + 1, To: s - 1})
			}
			last = s
		}
		if b.Last != last || !slices.Equal(b.Missing, ranges) || b.Messages != int64(len(seqs)) {
			t.Errorf("%s: boot %s/%s: last %d missing %v messages %d; want %d %v %d",
				where, b.Device, b.Boot, b.Last, b.Missing, b.Messages, last, ranges, len(seqs))
		}
		if dw[b.Device] == nil {
			dw[b.Device] = &devWant{}
		}
		w := dw[b.Device]
		w.messages += int64(len(seqs))
		w.gaps += int64(len(ranges))
		for _, rg := range ranges {
			w.missing += rg.To - rg.From + 1
		}
	}
	if seen != len(ref.boots) {
		t.Errorf("%s: %d boots stored, want %d", where, seen, len(ref.boots))
	}
	devs, err := r.Devices(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range devs {
		if n, ok := ref.plain[d.ID]; ok {
			if d.Messages != n {
				t.Errorf("%s: plain device %s: messages %d, want %d", where, d.ID, d.Messages, n)
			}
			continue
		}
		w := dw[d.ID]
		order := ref.order[d.ID]
		if w == nil || len(order) == 0 {
			t.Errorf("%s: device %s stored but never sent", where, d.ID)
			continue
		}
		if d.Messages != w.messages || d.Gaps != w.gaps || d.Missing != w.missing || d.Duplicates != ref.dups[d.ID] ||
			d.Resets != int64(len(order)-1) || d.LastBoot != order[len(order)-1] {
			t.Errorf("%s: device %s: messages %d gaps %d missing %d duplicates %d resets %d last boot %s; want %d %d %d %d %d %s",
				where, d.ID, d.Messages, d.Gaps, d.Missing, d.Duplicates, d.Resets, d.LastBoot,
				w.messages, w.gaps, w.missing, ref.dups[d.ID], len(order)-1, order[len(order)-1])
		}
	}
}
