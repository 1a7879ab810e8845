package main

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/inletdev/inlet"
	"github.com/inletdev/inlet/client"
	"github.com/inletdev/inlet/internal/inlettest"
)

// Acknowledged UDP through a path that loses 30% of datagrams each way: the
// client repeats until acknowledged, the server de-duplicates, and every
// reading is stored exactly once.
func TestAckedUDPLossyPath(t *testing.T) {
	cfg := testConfig(t)
	cfg.TCP = ""
	m := MustRun(t, cfg)
	proxy := inlettest.NewLossyUDP(t, m.udpAddr(), 0.3, 0.3)
	const devicesN, per = 5, 120
	var wg sync.WaitGroup
	errs := make(chan error, devicesN)
	for d := range devicesN {
		wg.Go(func() {
			c, err := client.New(client.Config{Addr: proxy.Addr(), Network: "udp",
				Device: fmt.Sprintf("lossy-%d", d), Window: 16, AckTimeout: time.Second})
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			for k := range per {
				if _, err := c.Send(fmt.Appendf(nil, "k=%d", k)); err != nil {
					errs <- err
					return
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			if err := c.Flush(ctx); err != nil {
				errs <- fmt.Errorf("device %d: %w (%+v)", d, err, c.Stats())
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	MustClose(t, m)
	count := make(map[string]int)
	for _, msg := range messages(t, cfg.DB, inlet.Query{}) {
		count[msg.Device+"/"+string(msg.Payload)]++
	}
	for d := range devicesN {
		for k := range per {
			if n := count[fmt.Sprintf("lossy-%d/k=%d", d, k)]; n != 1 {
				t.Fatalf("lossy-%d k=%d stored %d times", d, k, n)
			}
		}
	}
	t.Logf("%d readings through a 30%%-loss path, each stored once; %d duplicates absorbed", devicesN*per, m.Stats.Duplicates.Load())
}
