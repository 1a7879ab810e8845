package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/inletdev/inlet"
	"github.com/inletdev/inlet/sqlite"
)

func runExport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("export", "Write stored messages, oldest first, as NDJSON (one JSON object a line) or CSV.\n"+
		"Safe to run while inlet serve is writing to the same database.\n"+
		"Times (--since, --until): RFC 3339 (2026-11-29T08:00:00Z), a date (2026-11-29, UTC),\n"+
		"unix seconds, or a duration meaning that long ago (15m, 2h).", stderr)
	db := fs.String("db", "inlet.db", "SQLite database file")
	device := fs.String("device", "", "only this device")
	since := fs.String("since", "", "only messages received at or after this time")
	until := fs.String("until", "", "only messages received before this time")
	format := fs.String("format", "ndjson", "ndjson or csv")
	limit := fs.Int("limit", 0, "at most this many messages (0: all)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	now := time.Now()
	q := inlet.Query{Device: *device, Limit: *limit}
	var err error
	if q.Since, err = parseTime(*since, now); err != nil {
		return fmt.Errorf("--since: %w", err)
	}
	if q.Until, err = parseTime(*until, now); err != nil {
		return fmt.Errorf("--until: %w", err)
	}
	if *format != "ndjson" && *format != "csv" {
		return fmt.Errorf("--format %q: want ndjson or csv", *format)
	}
	store, err := sqlite.Open(ctx, *db, sqlite.Options{ReadOnly: true})
	if err != nil {
		return err
	}
	defer store.Close()
	bw := bufio.NewWriterSize(stdout, 64<<10)
	var write func(*inlet.Stored) error
	var flush func() error
	if *format == "csv" {
		cw := csv.NewWriter(bw)
		if err := cw.Write(csvHeader); err != nil {
			return err
		}
		write = func(m *inlet.Stored) error { return cw.Write(csvRecord(m)) }
		flush = func() error { cw.Flush(); return cw.Error() }
	} else {
		enc := json.NewEncoder(bw)
		enc.SetEscapeHTML(false)
		write = func(m *inlet.Stored) error { return enc.Encode(exportRecord(m)) }
		flush = func() error { return nil }
	}
	err = store.Messages(ctx, q, write)
	if ferr := flush(); err == nil {
		err = ferr
	}
	if ferr := bw.Flush(); err == nil {
		err = ferr
	}
	return err
}

// parseTime reads a --since/--until value; "" is no bound (0).
func parseTime(s string, now time.Time) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UnixNano(), nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t.UnixNano(), nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Unix(n, 0).UnixNano(), nil
	}
	if d, err := time.ParseDuration(strings.TrimPrefix(s, "-")); err == nil && d > 0 {
		return now.Add(-d).UnixNano(), nil
	}
	return 0, fmt.Errorf("%q is not a time: use RFC 3339, a date, unix seconds or a duration like 15m", s)
}

// record is one exported message (docs/export.md).
type record struct {
	ID            int64           `json:"id"`
	ReceivedAt    string          `json:"received_at"`
	Device        string          `json:"device"`
	Transport     string          `json:"transport"`
	Remote        string          `json:"remote"`
	Boot          *string         `json:"boot"`
	Seq           *int64          `json:"seq"`
	Payload       *string         `json:"payload,omitempty"`
	PayloadBase64 *string         `json:"payload_base64,omitempty"`
	Fields        json.RawMessage `json:"fields,omitempty"`
}

// timeFormat is RFC 3339 in UTC with all nine digits of nanoseconds, so that
// times sort as text and every row has the same width.
const timeFormat = "2006-01-02T15:04:05.000000000Z07:00"

func formatTime(ns int64) string { return time.Unix(0, ns).UTC().Format(timeFormat) }

func exportRecord(m *inlet.Stored) record {
	r := record{
		ID:         m.ID,
		ReceivedAt: formatTime(m.ReceivedAt),
		Device:     m.Device,
		Transport:  m.Transport.String(),
		Remote:     m.Remote.String(),
		Fields:     m.Fields,
	}
	if m.Boot != "" {
		r.Boot = &m.Boot
	}
	if m.Seq != 0 {
		r.Seq = &m.Seq
	}
	if utf8.Valid(m.Payload) {
		p := string(m.Payload)
		r.Payload = &p
	} else {
		p := base64.StdEncoding.EncodeToString(m.Payload)
		r.PayloadBase64 = &p
	}
	return r
}

var csvHeader = []string{"id", "received_at", "device", "transport", "remote", "boot", "seq", "payload", "payload_base64", "fields"}

func csvRecord(m *inlet.Stored) []string {
	r := exportRecord(m)
	var seq, payload, b64 string
	if r.Seq != nil {
		seq = strconv.FormatInt(*r.Seq, 10)
	}
	if r.Payload != nil {
		payload = *r.Payload
	}
	if r.PayloadBase64 != nil {
		b64 = *r.PayloadBase64
	}
	return []string{strconv.FormatInt(r.ID, 10), r.ReceivedAt, r.Device, r.Transport, r.Remote, m.Boot, seq, payload, b64, string(m.Fields)}
}
