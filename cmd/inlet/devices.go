package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/inletdev/inlet"
	"github.com/inletdev/inlet/sqlite"
)

func runDevices(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("devices", "List every device with its loss accounting: messages stored, first and last seen,\n"+
		"and for counter payloads the gaps (separate missing ranges), missing values, duplicates and resets.", stderr)
	db := fs.String("db", "inlet.db", "SQLite database file")
	format := fs.String("format", "table", "table or json")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *format != "table" && *format != "json" {
		return fmt.Errorf("--format %q: want table or json", *format)
	}
	store, err := sqlite.Open(ctx, *db, sqlite.Options{ReadOnly: true})
	if err != nil {
		return err
	}
	defer store.Close()
	devs, err := store.Devices(ctx)
	if err != nil {
		return err
	}
	if *format == "json" {
		out := make([]deviceRecord, 0, len(devs))
		for i := range devs {
			out = append(out, newDeviceRecord(&devs[i]))
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "device\tmessages\tfirst_seen\tlast_seen\tlast_counter\tgaps\tmissing\tduplicates\tresets\t")
	for i := range devs {
		r := newDeviceRecord(&devs[i])
		last := "-"
		if r.LastCounter != nil {
			last = fmt.Sprint(*r.LastCounter)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t\n", r.Device, r.Messages, r.FirstSeen, r.LastSeen,
			last, r.Gaps, r.Missing, r.Duplicates, r.Resets)
	}
	return tw.Flush()
}

// deviceRecord is one device in `inlet devices --format json` (docs/cli.md).
type deviceRecord struct {
	Device      string `json:"device"`
	Messages    int64  `json:"messages"`
	FirstSeen   string `json:"first_seen"`
	LastSeen    string `json:"last_seen"`
	LastCounter *int64 `json:"last_counter"`
	Gaps        int64  `json:"gaps"`
	Missing     int64  `json:"missing"`
	Duplicates  int64  `json:"duplicates"`
	Resets      int64  `json:"resets"`
}

func newDeviceRecord(d *inlet.Device) deviceRecord {
	r := deviceRecord{
		Device: d.ID, Messages: d.Messages,
		FirstSeen: formatTime(d.FirstSeen), LastSeen: formatTime(d.LastSeen),
		Gaps: d.Gaps, Missing: d.Missing, Duplicates: d.Duplicates, Resets: d.Resets,
	}
	if v, ok := d.LastCounter(); ok {
		r.LastCounter = &v
	}
	return r
}
