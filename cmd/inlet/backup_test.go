package main

import (
	"database/sql"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/inletdev/inlet"
	"github.com/inletdev/inlet/client"
)

// A backup taken by `inlet backup` while acknowledged devices keep sending opens,
// passes integrity_check and holds every message acknowledged before it started.
func TestBackupUnderLoad(t *testing.T) {
	const senders = 8
	db := filepath.Join(t.TempDir(), "inlet.db")
	addr := freeTCPAddr(t)
	srv := startBinary(t, "--tcp", addr, "--udp", "", "--http", "", "--db", db)

	var clients []*client.Sender
	for i := range senders {
		c, err := client.New(client.Config{Addr: addr, Device: fmt.Sprintf("bk-%02d", i), Window: 64})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		clients = append(clients, c)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Go(func() {
			for k := 0; ; k++ {
				select {
				case <-stop:
					return
				default:
				}
				_, err := c.Send(fmt.Appendf(nil, "d=%d k=%d", i, k))
				for errors.Is(err, client.ErrOutboxFull) {
					select {
					case <-stop:
						return
					case <-time.After(time.Millisecond): // the server is slower
					}
					_, err = c.Send(fmt.Appendf(nil, "d=%d k=%d", i, k))
				}
				if err != nil {
					t.Errorf("sender %d: %v", i, err)
					return
				}
			}
		})
	}
	defer func() { close(stop); wg.Wait() }()
	deadline := time.Now().Add(20 * time.Second)
	for clients[0].Stats().Acked < 500 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	acked := make([]int64, senders)
	for i, c := range clients {
		acked[i] = c.Stats().Acked
	}
	if acked[0] == 0 {
		t.Fatal("nothing acknowledged in 20 s")
	}
	backup := filepath.Join(t.TempDir(), "backup.db")
	out, err := exec.Command(inletBinary(t), "backup", "--db", db, backup).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "wrote "+backup) {
		t.Fatalf("inlet backup: %v\n%s", err, out)
	}
	after := clients[0].Stats().Acked
	if after <= acked[0] {
		t.Logf("ingestion did not go on during the backup (acked %d → %d)", acked[0], after)
	}

	bdb, err := sql.Open("sqlite", "file:"+backup+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	var check string
	if err := bdb.QueryRow("PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
		t.Fatalf("integrity_check of the backup: %q %v", check, err)
	}
	bdb.Close()
	for i, n := range acked {
		checkSeqsStored(t, backup, fmt.Sprintf("bk-%02d", i), n)
	}
	srv.stop(t, syscall.SIGTERM)
}

// checkSeqsStored checks that device's seqs 1 to n are in the database at db.
func checkSeqsStored(t *testing.T, db, device string, n int64) {
	t.Helper()
	have := make(map[int64]bool)
	for _, m := range messages(t, db, inlet.Query{Device: device}) {
		have[m.Seq] = true
	}
	for s := int64(1); s <= n; s++ {
		if !have[s] {
			t.Fatalf("%s had %d messages acknowledged, but seq %d is not stored in %s", device, n, s, db)
		}
	}
}
