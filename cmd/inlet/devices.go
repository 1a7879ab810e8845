package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/inletdev/inlet"
	"github.com/inletdev/inlet/record"
)

func runDevices(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("devices", "List every device by kind with its loss accounting: messages stored, first and last\n"+
		"seen (local time), and for counters (plain devices whose lone integers count up by one) and\n"+
		"acknowledged devices the missing values, gaps (separate missing ranges), duplicates and resets.\n"+
		"A values device (sensor readings, anything not a counter) has no loss figures: they are unknown.\n"+
		"Acknowledged-mode devices also get one line per boot: the sequence's last seq, what is durable\n"+
		"without a hole (the hello's last=), and the missing seq ranges.", stderr)
	db := fs.String("db", "inlet.db", "SQLite database file, or a PostgreSQL database postgres://…")
	format := fs.String("format", "table", "table or json")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *format != "table" && *format != "json" {
		return fmt.Errorf("--format %q: want table or json", *format)
	}
	store, err := openReader(ctx, *db)
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
	return devicesTable(stdout, devs, boots)
}

// devicesTable prints the devices by kind, each kind with the columns that mean
// something for it, in one layout: the columns they share line up, text is left
// and numbers right-aligned, times local and 24-hour. Acknowledged devices'
// boots follow in a table of their own, aligned the same way.
func devicesTable(w io.Writer, devs []inlet.Device, boots []inlet.Boot) error {
	num := func(v int64) cell { return cell{strconv.FormatInt(v, 10), true} }
	txt := func(s string) cell { return cell{s, false} }
	head := func(names ...string) []cell {
		c := make([]cell, len(names))
		for i, n := range names {
			c[i] = cell{n, i > 0 && n != "first_seen" && n != "last_seen" && n != "boot" && n != "missing_ranges"}
		}
		return c
	}
	sections := []struct {
		kind, title string
		loss        bool
	}{
		{"counter", "counters: loss counted from the counter values", true},
		{"values", "values: not a counter, loss unknown", false},
		{"acked", "acknowledged (INLET/1): loss counted by seq", true},
	}
	var t table
	for _, sec := range sections {
		var rows [][]cell
		for i := range devs {
			d := &devs[i]
			if d.KindName() != sec.kind {
				continue
			}
			row := []cell{txt(d.ID), num(d.Messages), txt(record.LocalTime(d.FirstSeen)), txt(record.LocalTime(d.LastSeen))}
			if l, known := d.Reported(); sec.loss && known {
				row = append(row, num(l.Missing), num(l.Gaps), num(l.Duplicates), num(l.Resets))
			}
			rows = append(rows, row)
		}
		if len(rows) == 0 {
			continue
		}
		t.title(sec.title)
		if sec.loss {
			t.row(head("device", "messages", "first_seen", "last_seen", "missing", "gaps", "dups", "resets"))
		} else {
			t.row(head("device", "messages", "first_seen", "last_seen"))
		}
		for _, r := range rows {
			t.row(r)
		}
	}
	if err := t.print(w); err != nil {
		return err
	}
	var bt table
	for i := range boots { // ordered by device, then first seen
		b := &boots[i]
		if len(bt.lines) == 0 {
			bt.title("boots of acknowledged devices: durable is what a hello is answered (nothing missing below it)")
			bt.row(head("device", "boot", "messages", "last_seq", "durable", "missing", "missing_ranges", "last_seen"))
		}
		r := record.NewBoot(b)
		bt.row([]cell{txt(b.Device), txt(b.Boot), num(b.Messages), num(r.LastSeq), num(r.Durable),
			num(r.MissingCount), txt(formatRanges(r.Missing, 4)), txt(record.LocalTime(b.LastSeen))})
	}
	if len(bt.lines) == 0 {
		return nil
	}
	if _, err := fmt.Fprintln(w); err != nil {
		return err
	}
	return bt.print(w)
}

// cell is one table cell; numbers are right-aligned.
type cell struct {
	s     string
	right bool
}

// table lays out rows of cells with two spaces between columns; a title line
// stands alone, with a blank line before it unless it is the first.
type table struct {
	lines []tableLine
}

type tableLine struct {
	title string
	cells []cell
}

func (t *table) title(s string) { t.lines = append(t.lines, tableLine{title: s}) }
func (t *table) row(c []cell)   { t.lines = append(t.lines, tableLine{cells: c}) }

func (t *table) print(w io.Writer) error {
	var width []int
	for _, l := range t.lines {
		for i, c := range l.cells {
			if i == len(width) {
				width = append(width, 0)
			}
			width[i] = max(width[i], utf8.RuneCountInString(c.s))
		}
	}
	var b strings.Builder
	for n, l := range t.lines {
		if l.cells == nil {
			if n > 0 {
				b.WriteString("\n")
			}
			b.WriteString(l.title + "\n")
			continue
		}
		var line strings.Builder
		for i, c := range l.cells {
			if i > 0 {
				line.WriteString("  ")
			}
			pad := strings.Repeat(" ", width[i]-utf8.RuneCountInString(c.s))
			if c.right {
				line.WriteString(pad + c.s)
			} else if i < len(l.cells)-1 {
				line.WriteString(c.s + pad)
			} else {
				line.WriteString(c.s)
			}
		}
		b.WriteString(strings.TrimRight(line.String(), " ") + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
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
