package inlet_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/inletdev/inlet"
)

// feed observes one lone integer.
func feed(d *inlet.Device, v int64) {
	d.Observe(&inlet.Message{ReceivedAt: d.Messages + 1, Device: d.ID, Counter: v, IsCounter: true})
}

// checkNoLoss fails when d reports any loss.
func checkNoLoss(t *testing.T, d *inlet.Device, what string, sent []int64) {
	t.Helper()
	if l, known := d.Reported(); known && l != (inlet.Loss{}) {
		t.Fatalf("%s: a healthy sensor reports loss %+v (kind %s) after %s", what, l, d.KindName(), short(sent))
	}
}

// sensorSeries returns a generator of healthy sensor readings of one kind.
func sensorSeries(rng *rand.Rand, kind int) (string, func(i int) int64) {
	switch kind {
	case 0: // noise around a level, like analogRead() of a steady input
		level := []float64{0, 20, 512, 1000, -40, 3000}[rng.IntN(6)]
		sigma := []float64{0.3, 0.7, 1, 2, 3, 5, 10, 30, 100}[rng.IntN(9)]
		return fmt.Sprintf("noise level=%v sigma=%v", level, sigma), func(int) int64 {
			return int64(math.Round(level + sigma*rng.NormFloat64()))
		}
	case 1: // a slow drift with noise
		level := float64(rng.IntN(1000))
		drift := (rng.Float64()*2 - 1) * 0.2
		sigma := []float64{0.2, 0.5, 1, 3}[rng.IntN(4)]
		return fmt.Sprintf("drift %.3f/reading sigma=%v", drift, sigma), func(i int) int64 {
			return int64(math.Round(level + drift*float64(i) + sigma*rng.NormFloat64()))
		}
	case 2: // repeated values: a reading that changes by a step now and then
		v := int64(rng.IntN(100))
		hold := 1 + rng.IntN(10)
		return fmt.Sprintf("repeated, held ~%d readings", hold), func(i int) int64 {
			if rng.IntN(hold) == 0 {
				v += int64(rng.IntN(3)) - 1
			}
			return v
		}
	default: // whole-degree temperatures over a day, sampled every 10 s to 10 min
		base := float64(10 + rng.IntN(15))
		per := []float64{10, 60, 300, 600}[rng.IntN(4)]
		return fmt.Sprintf("temperature base=%v every %vs", base, per), func(i int) int64 {
			t := float64(i) * per
			return int64(math.Round(base + 6*math.Sin(2*math.Pi*t/86400) + 0.3*rng.NormFloat64()))
		}
	}
}

// Random sensor series, of every shape a maker sends first, never show loss.
func TestSensorIntegersShowNoLoss(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	notCounter := 0
	for iter := range 4000 {
		name, next := sensorSeries(rng, iter%4)
		d := &inlet.Device{ID: "sensor"}
		var sent []int64
		for i := range 30 + rng.IntN(400) {
			v := next(i)
			if rng.IntN(500) == 0 {
				v = rng.Int64() // a stray value now and then
			}
			sent = append(sent, v)
			feed(d, v)
			checkNoLoss(t, d, name, sent)
		}
		if d.Kind == inlet.KindValues {
			notCounter++
		}
	}
	if notCounter < 3990 {
		t.Errorf("only %d of 4000 sensor series end as values", notCounter)
	}
}

// The issue's cases: analogRead() around 512, whole degrees 20, 20, 21, …, and a
// stray huge number in a counter.
func TestIssueSensorCases(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	d := &inlet.Device{ID: "adc"}
	for range 60 {
		feed(d, 512+int64(rng.IntN(41))-20)
	}
	if d.KindName() != "values" || d.Missing == 0 {
		t.Fatalf("analogRead: kind %s, raw missing %d (the raw accounting should see lots)", d.KindName(), d.Missing)
	}
	if _, known := d.Reported(); known {
		t.Fatal("analogRead: loss reported for a values device")
	}
	d = &inlet.Device{ID: "temp"}
	for _, v := range []int64{20, 20, 21, 21, 21, 20, 20, 21, 22, 22, 22, 21, 21, 21, 21, 20, 20, 20, 21, 21, 22, 22, 23, 23, 22, 22} {
		feed(d, v)
		checkNoLoss(t, d, "temperature", nil)
	}
	if d.KindName() != "values" {
		t.Fatalf("temperature: kind %s", d.KindName())
	}

	d = &inlet.Device{ID: "stray"}
	for v := int64(1); v <= 50; v++ {
		feed(d, v)
	}
	feed(d, math.MaxInt64)
	for v := int64(51); v <= 100; v++ {
		feed(d, v)
	}
	l, known := d.Reported()
	if !known || d.KindName() != "counter" || l.Missing != 0 || l.Gaps != 0 || l.Resets > 1 {
		t.Fatalf("a counter with one stray value: kind %s, loss %+v known=%v", d.KindName(), l, known)
	}
}

// tutorialCounter sends 1, 2, 3, … like the tutorial sketch, with random loss,
// connect-per-message overtaking within the window, and reboots; it returns
// the values as received.
func tutorialCounter(rng *rand.Rand) []int64 {
	n := 20 + rng.IntN(600)
	lossP := []float64{0, 0.01, 0.1, 0.3, 0.5}[rng.IntN(5)]
	reorder := rng.IntN(3) == 0
	var out []int64
	v := int64(rng.IntN(3)) // 0 or 1 or 2: some sketches start at 0
	sinceBoot := 0
	for range n {
		if sinceBoot > 40 && rng.IntN(150) == 0 {
			v = int64(rng.IntN(2)) // reboot: the counter starts over
			sinceBoot = 0
		}
		if rng.Float64() >= lossP {
			out = append(out, v)
		}
		if rng.IntN(400) == 0 {
			v += int64(20 + rng.IntN(200)) // the WiFi was down a while
		}
		v++
		sinceBoot++
	}
	if reorder {
		// Overtaking: swap neighbours now and then (never across a reboot).
		for i := 1; i < len(out); i++ {
			if out[i] > out[i-1] && out[i]-out[i-1] < 4 && rng.IntN(8) == 0 {
				out[i], out[i-1] = out[i-1], out[i]
				i++
			}
		}
	}
	return out
}

// Tutorial counters with random loss, reordering and reboots are counters and
// report exactly the raw accounting of PROTOCOL §3: every value they lost, from
// their very first reading (the evidence gathered before the classification
// counts too).
func TestTutorialCountersReportExactLoss(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for iter := range 3000 {
		sent := tutorialCounter(rng)
		if len(sent) < 100 {
			continue // a counter that lost half its readings needs CounterMin next values to be recognised
		}
		d := &inlet.Device{ID: "tutorial"}
		var m runModel
		for _, v := range sent {
			feed(d, v)
			m.observe(v)
		}
		if d.Kind != inlet.KindCounter {
			t.Fatalf("iter %d: a tutorial counter ended as %s: %s", iter, d.KindName(), short(sent))
		}
		l, _ := d.Reported()
		want := m.counts()
		if got := (counts{l.Gaps, l.Missing, l.Duplicates, l.Resets, d.Run.High, d.Run.Low}); got != want {
			t.Fatalf("iter %d, %s:\nreported %v\n   model %v", iter, short(sent), got, want)
		}
	}
}

// In order with drops only: the reported missing is exactly the values dropped
// between the first and the last received.
func TestTutorialCounterDropsExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	for iter := range 2000 {
		d := &inlet.Device{ID: "tutorial"}
		var missing int64
		received := 0
		var pend int64
		for v := int64(1); v <= int64(20+rng.IntN(500)); v++ {
			if received > 0 && rng.IntN(4) == 0 {
				pend++
				continue
			}
			feed(d, v)
			received++
			missing += pend
			pend = 0
		}
		if received < 40 {
			continue
		}
		if l, known := d.Reported(); !known || l.Missing != missing {
			t.Fatalf("iter %d: reported %+v known=%v, want missing %d", iter, l, known, missing)
		}
	}
}

func TestFirstRunBecomesCounter(t *testing.T) {
	d := &inlet.Device{ID: "first"}
	for v := int64(1); v <= 10; v++ {
		feed(d, v)
		if want := v > inlet.CounterMin; (d.Kind == inlet.KindCounter) != want {
			t.Fatalf("after %d readings: kind %s", v, d.KindName())
		}
	}
	if l, known := d.Reported(); !known || l != (inlet.Loss{}) {
		t.Fatalf("1..10: %+v %v", l, known)
	}
}

// A device whose sketch changes switches, and what it counted as the other kind
// does not follow it.
func TestKindSwitches(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	d := &inlet.Device{ID: "dev"}
	for v := int64(1); v <= 100; v++ {
		feed(d, v)
	}
	feed(d, 103) // two lost
	feed(d, 104) // confirmed by the next value
	if l, _ := d.Reported(); d.Kind != inlet.KindCounter || l.Missing != 2 {
		t.Fatalf("counter: %s %+v", d.KindName(), l)
	}
	// Reflashed with analogRead(): values within a few readings.
	n := 0
	for d.Kind == inlet.KindCounter {
		feed(d, 512+int64(rng.IntN(41))-20)
		if n++; n > 12 {
			t.Fatalf("still a counter after %d sensor readings", n)
		}
	}
	for range 300 {
		feed(d, 512+int64(rng.IntN(41))-20)
		if _, known := d.Reported(); known {
			t.Fatal("a sensor reports loss")
		}
	}
	// Back to the counter sketch: a counter again, with what it lost as one.
	for v := int64(1); v <= 40; v++ {
		feed(d, v)
	}
	l, known := d.Reported()
	if !known || l.Missing < 2 || l.Missing > 2+int64(n) {
		t.Fatalf("back to a counter: %+v known=%v", l, known)
	}
	// The sensor phase counted nothing: a fresh device shows the same after it.
	f := &inlet.Device{ID: "fresh"}
	for range 300 {
		feed(f, 512+int64(rng.IntN(41))-20)
	}
	for v := int64(1); v <= 40; v++ {
		feed(f, v)
	}
	if l, known := f.Reported(); !known || l != (inlet.Loss{}) {
		t.Fatalf("a sensor then a counter: %+v known=%v", l, known)
	}
}

func TestEvidencePack(t *testing.T) {
	var e inlet.Evidence
	for i := range 40 {
		e2 := inlet.UnpackEvidence(e.Pack())
		if e2 != e {
			t.Fatalf("step %d: %+v packs back as %+v", i, e, e2)
		}
		d := &inlet.Device{Evidence: e}
		feed(d, int64(i%3))
		e = d.Evidence
	}
}

// Reported figures never go below zero, whatever mix of values a device sends
// and however it switches; and a device whose lone integers never count up is
// never a counter.
func TestReportedNeverNegative(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 18))
	for iter := range 3000 {
		d := &inlet.Device{ID: "mix"}
		v := int64(rng.IntN(100))
		for range 1 + rng.IntN(300) {
			switch r := rng.IntN(100); {
			case r < 50:
				v++ // counting
			case r < 65:
				v += int64(2 + rng.IntN(30))
			case r < 85:
				v -= int64(rng.IntN(inlet.Window + 1))
			case r < 95:
				v -= int64(inlet.Window + 1 + rng.IntN(50))
			default:
				v = int64(rng.IntN(1000))
			}
			feed(d, v)
			if l, _ := d.Reported(); l.Gaps < 0 || l.Missing < 0 || l.Duplicates < 0 || l.Resets < 0 {
				t.Fatalf("iter %d: reported %+v", iter, l)
			}
		}
	}
}

// Connect-per-message devices overtake themselves by up to the window: one
// reading in ten arriving out of order, with loss as well, a tutorial counter
// still reports exactly what the counter run counts (PROTOCOL §3), late
// arrivals filling their slots. (A counter whose readings mostly arrive out of
// order has few next values to be recognised by: it stays values, silent
// rather than wrong.)
func TestTutorialCounterOvertakingExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(19, 20))
	for iter := range 1500 {
		n := 100 + rng.IntN(400)
		lossP := []float64{0, 0.05, 0.2}[iter%3]
		var pending []int64
		for v := int64(1); v <= int64(n); v++ {
			if rng.Float64() >= lossP {
				pending = append(pending, v)
			}
		}
		d := &inlet.Device{ID: "tutorial"}
		var m runModel
		var sent []int64
		for len(pending) > 0 {
			w := 0
			for w < len(pending) && pending[w]-pending[0] <= inlet.Window {
				w++
			}
			k := rng.IntN(w)
			if rng.IntN(10) != 0 {
				k = 0
			}
			v := pending[k]
			pending = append(pending[:k], pending[k+1:]...)
			sent = append(sent, v)
			feed(d, v)
			m.observe(v)
			if l, known := d.Reported(); known && l.Duplicates+l.Resets != 0 {
				t.Fatalf("iter %d: a reordered counter shows %+v after %s", iter, l, short(sent))
			}
		}
		l, known := d.Reported()
		want := m.counts()
		if got := (counts{l.Gaps, l.Missing, l.Duplicates, l.Resets, d.Run.High, d.Run.Low}); !known || got != want {
			t.Fatalf("iter %d (%s, known %v), %s:\nreported %v\n   model %v", iter, d.KindName(), known, short(sent), got, want)
		}
	}
}
