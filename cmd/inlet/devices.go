package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/inletdev/inlet/record"
	"github.com/inletdev/inlet/sqlite"
)

func runDevices(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("devices", "List every device with its loss accounting: messages stored, first and last seen,\n"+
		"and for counter payloads the gaps (separate missing ranges), missing values, duplicates and resets.\n"+
		"Acknowledged-mode devices also get one line per boot: the sequence's last seq, what is durable\n"+
		"without a hole (the hello's last=), and the missing seq ranges.", stderr)
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
	boots, err := store.Boots(ctx)
	if err != nil {
		return err
	}
	byDevice := make(map[string][]record.Boot)
	for i := range boots {
		b := &boots[i]
		byDevice[b.Device] = append(byDevice[b.Device], record.NewBoot(b))
	}
	if *format == "json" {
		out := make([]record.Device, 0, len(devs))
		for i := range devs {
			r := record.NewDevice(&devs[i])
			r.Boots = byDevice[r.Device]
			out = append(out, r)
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "device\tmessages\tfirst_seen\tlast_seen\tlast_counter\tgaps\tmissing\tduplicates\tresets\t")
	for i := range devs {
		r := record.NewDevice(&devs[i])
		last := "-"
		if r.LastCounter != nil {
			last = fmt.Sprint(*r.LastCounter)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t\n", r.Device, r.Messages, r.FirstSeen, r.LastSeen,
			last, r.Gaps, r.Missing, r.Duplicates, r.Resets)
	}
	if err := tw.Flush(); err != nil || len(boots) == 0 {
		return err
	}
	// Acknowledged mode: one line per (device, boot) sequence.
	fmt.Fprintln(stdout)
	tw = tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "device\tboot\tmessages\tlast_seq\tdurable\tmissing\tmissing_ranges\tlast_seen\t")
	for i := range devs {
		for _, b := range byDevice[devs[i].ID] {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%s\t%s\t\n", b.Device, b.Boot, b.Messages, b.LastSeq, b.Durable,
				b.MissingCount, formatRanges(b.Missing, 4), b.LastSeen)
		}
	}
	return tw.Flush()
}

// formatRanges shows up to max ranges as "3-4,9" and how many more there are.
func formatRanges(rs [][2]int64, max int) string {
	if len(rs) == 0 {
		return "-"
	}
	var parts []string
	for i, r := range rs {
		if i == max {
			parts = append(parts, fmt.Sprintf("(+%d more)", len(rs)-max))
			break
		}
		if r[0] == r[1] {
			parts = append(parts, fmt.Sprint(r[0]))
		} else {
			parts = append(parts, fmt.Sprintf("%d-%d", r[0], r[1]))
		}
	}
	return strings.Join(parts, ",")
}
