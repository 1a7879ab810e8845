// Package record owns inlet's user-facing text encodings of stored data: the
// message record of the NDJSON and CSV exports (also the data of every live-stream
// event and HTTP answer), the device and boot records of `inlet devices` and
// /api/devices, and the time formats users type and read. The CLI and the HTTP
// API both encode through it, so a message looks the same wherever it is read.
// docs/cli.md and docs/http.md document these formats; they are contracts.
package record

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/inletdev/inlet"
)

// TimeFormat is RFC 3339 in UTC with all nine digits of nanoseconds, so that
// times sort as text and every row has the same width.
const TimeFormat = "2006-01-02T15:04:05.000000000Z07:00"

// Time formats unix nanoseconds as TimeFormat.
func Time(ns int64) string { return time.Unix(0, ns).UTC().Format(TimeFormat) }

// LocalFormat is how tables for people show a time: local, 24-hour, to the second.
const LocalFormat = "2006-01-02 15:04:05"

// LocalTime formats unix nanoseconds as LocalFormat in the local time zone.
func LocalTime(ns int64) string { return time.Unix(0, ns).Local().Format(LocalFormat) }

// ParseTime reads a since/until value: RFC 3339, a date (UTC), unix seconds, or a
// duration meaning that long before now. "" is no bound (0).
func ParseTime(s string, now time.Time) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	inRange := func(t time.Time) (int64, error) {
		// Unix nanoseconds in an int64 reach from 1677 to 2262.
		if t.Year() < 1678 || t.Year() > 2261 {
			return 0, fmt.Errorf("%q is out of range: times must be between the years 1678 and 2261", s)
		}
		return t.UnixNano(), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return inRange(t)
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return inRange(t)
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n < -9e9 || n > 9e9 {
			return 0, fmt.Errorf("%q is out of range: unix seconds must be within ±9e9", s)
		}
		return inRange(time.Unix(n, 0))
	}
	if d, err := time.ParseDuration(strings.TrimPrefix(s, "-")); err == nil && d > 0 {
		return now.Add(-d).UnixNano(), nil
	}
	return 0, fmt.Errorf("%q is not a time: use RFC 3339, a date, unix seconds or a duration like 15m", s)
}

// Message is one stored message as exported (NDJSON, stream events, API).
type Message struct {
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

// FromStored converts m; the result does not share memory with m.
func FromStored(m *inlet.Stored) Message {
	r := Message{
		ID:         m.ID,
		ReceivedAt: Time(m.ReceivedAt),
		Device:     m.Device,
		Transport:  m.Transport.String(),
		Remote:     m.Remote.String(),
	}
	if len(m.Fields) > 0 {
		r.Fields = json.RawMessage(string(m.Fields))
	}
	if m.Boot != "" {
		b := m.Boot
		r.Boot = &b
	}
	if m.Seq != 0 {
		s := m.Seq
		r.Seq = &s
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

// AppendJSON appends m's record as one line of JSON, without the newline: the
// bytes encoding/json writes for FromStored(m) (HTML left unescaped), encoded by
// hand without reflection or allocation (the publisher, the exports and the
// live stream encode every message through it). Fields text that is not valid
// JSON, which inlet always writes valid but a hand-edited database might hold,
// is left out; valid fields are compacted.
func AppendJSON(dst []byte, m *inlet.Stored) []byte {
	dst = append(dst, `{"id":`...)
	dst = strconv.AppendInt(dst, m.ID, 10)
	dst = append(dst, `,"received_at":"`...)
	dst = appendTime(dst, m.ReceivedAt) // nothing in it to escape
	dst = append(dst, `","device":`...)
	dst = appendString(dst, m.Device)
	dst = append(dst, `,"transport":`...)
	dst = appendString(dst, m.Transport.String())
	dst = append(dst, `,"remote":`...)
	if m.Remote.Addr().IsValid() {
		var remote [64]byte
		dst = appendString(dst, m.Remote.AppendTo(remote[:0])) // a zone may hold anything
	} else {
		dst = append(dst, `"invalid AddrPort"`...) // as netip.AddrPort.String
	}
	dst = append(dst, `,"boot":`...)
	if m.Boot == "" {
		dst = append(dst, "null"...)
	} else {
		dst = appendString(dst, m.Boot)
	}
	dst = append(dst, `,"seq":`...)
	if m.Seq == 0 {
		dst = append(dst, "null"...)
	} else {
		dst = strconv.AppendInt(dst, m.Seq, 10)
	}
	if utf8.Valid(m.Payload) {
		dst = append(dst, `,"payload":`...)
		dst = appendString(dst, m.Payload)
	} else {
		dst = append(dst, `,"payload_base64":"`...)
		dst = base64.StdEncoding.AppendEncode(dst, m.Payload)
		dst = append(dst, '"')
	}
	if len(m.Fields) > 0 && compactJSON(m.Fields) {
		// What inlet writes: encoding/json would copy it as it is.
		dst = append(dst, `,"fields":`...)
		dst = append(dst, m.Fields...)
	} else if len(m.Fields) > 0 {
		mark := len(dst)
		// json.Compact validates and compacts as encoding/json does a
		// json.RawMessage; it appends nothing when the text is not JSON.
		b := bytes.NewBuffer(append(dst, `,"fields":`...))
		if err := json.Compact(b, m.Fields); err != nil {
			dst = b.Bytes()[:mark]
		} else {
			dst = b.Bytes()
		}
	}
	return append(dst, '}')
}

// compactJSON reports whether b is one JSON value without whitespace outside
// its strings and nested at most 64 deep: text that json.Compact would accept
// and copy unchanged. It answers false for anything else, valid or not (the
// caller then asks json.Compact), so it only has to be right about true.
func compactJSON(b []byte) bool {
	var stack [64]byte // the open '{' and '['
	i, depth := 0, 0
value:
	if i >= len(b) {
		return false
	}
	switch b[i] {
	case '{':
		i++
		if i < len(b) && b[i] == '}' {
			i++
			goto end
		}
		if depth == len(stack) {
			return false
		}
		stack[depth] = '{'
		depth++
		goto key
	case '[':
		i++
		if i < len(b) && b[i] == ']' {
			i++
			goto end
		}
		if depth == len(stack) {
			return false
		}
		stack[depth] = '['
		depth++
		goto value
	case '"':
		if i = skipString(b, i); i < 0 {
			return false
		}
	case 't':
		if !bytes.HasPrefix(b[i:], []byte("true")) {
			return false
		}
		i += 4
	case 'f':
		if !bytes.HasPrefix(b[i:], []byte("false")) {
			return false
		}
		i += 5
	case 'n':
		if !bytes.HasPrefix(b[i:], []byte("null")) {
			return false
		}
		i += 4
	default:
		if i = skipNumber(b, i); i < 0 {
			return false
		}
	}
end:
	if depth == 0 {
		return i == len(b)
	}
	if i >= len(b) {
		return false
	}
	switch b[i] {
	case ',':
		i++
		if stack[depth-1] == '{' {
			goto key
		}
		goto value
	case '}', ']':
		if stack[depth-1]+2 != b[i] { // '{'+2 == '}', '['+2 == ']'
			return false
		}
		depth--
		i++
		goto end
	}
	return false
key:
	if i >= len(b) || b[i] != '"' {
		return false
	}
	if i = skipString(b, i); i < 0 || i >= len(b) || b[i] != ':' {
		return false
	}
	i++
	goto value
}

// skipString returns the index after the JSON string starting at b[i], or
// -1. Like encoding/json it takes any byte from 0x20 up (invalid UTF-8
// included) and checks the escapes.
func skipString(b []byte, i int) int {
	for i++; i < len(b); {
		switch c := b[i]; {
		case c == '"':
			return i + 1
		case c == '\\':
			if i+1 >= len(b) {
				return -1
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) {
					return -1
				}
				for _, h := range b[i+2 : i+6] {
					if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
						return -1
					}
				}
				i += 6
			default:
				return -1
			}
		case c < 0x20:
			return -1
		default:
			i++
		}
	}
	return -1
}

// skipNumber returns the index after the JSON number starting at b[i], or -1.
func skipNumber(b []byte, i int) int {
	digits := func() bool { // one or more
		start := i
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
		return i > start
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case !digits():
		return -1
	}
	if i < len(b) && b[i] == '.' {
		i++
		if !digits() {
			return -1
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if !digits() {
			return -1
		}
	}
	return i
}

// appendTime appends unix nanoseconds ns as TimeFormat: what
// time.AppendFormat writes, faster. An int64 of nanoseconds reaches from the
// year 1677 to 2262, so the year always has four digits.
func appendTime(dst []byte, ns int64) []byte {
	t := time.Unix(0, ns).UTC()
	year, month, day := t.Date()
	hour, minute, sec := t.Clock()
	n := t.Nanosecond()
	var b [30]byte
	put := func(at, v, width int) {
		for i := at + width - 1; i >= at; i-- {
			b[i] = byte('0' + v%10)
			v /= 10
		}
	}
	put(0, year, 4)
	b[4] = '-'
	put(5, int(month), 2)
	b[7] = '-'
	put(8, day, 2)
	b[10] = 'T'
	put(11, hour, 2)
	b[13] = ':'
	put(14, minute, 2)
	b[16] = ':'
	put(17, sec, 2)
	b[19] = '.'
	put(20, n, 9)
	b[29] = 'Z'
	return append(dst, b[:]...)
}

// appendString appends s as a JSON string exactly as encoding/json writes it
// with HTML escaping off: '"', '\\' and control characters escaped (\b, \f,
// \n, \r, \t short, the others as \u00XX), each byte of invalid UTF-8 as
// \ufffd, U+2028 and U+2029 as \u2028 and \u2029, everything else as is.
func appendString[S []byte | string](dst []byte, s S) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := decodeRune(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// decodeRune is utf8.DecodeRune for either kind of text.
func decodeRune[S []byte | string](s S) (rune, int) {
	var b [utf8.UTFMax]byte
	n := copy(b[:], s)
	return utf8.DecodeRune(b[:n])
}

// CSVHeader is the first line of a CSV export.
var CSVHeader = []string{"id", "received_at", "device", "transport", "remote", "boot", "seq", "payload", "payload_base64", "fields"}

// CSV returns m's CSV record, in CSVHeader's columns.
func CSV(m *inlet.Stored) []string {
	r := FromStored(m)
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
	return []string{strconv.FormatInt(r.ID, 10), r.ReceivedAt, CSVCell(r.Device), r.Transport, r.Remote, m.Boot, seq, CSVCell(payload), b64, string(m.Fields)}
}

// CSVCell neutralises a cell that a spreadsheet would run as a formula (OWASP's
// CSV injection advice): text starting with =, +, -, @, a tab or a carriage
// return gets a leading apostrophe, which Excel and LibreOffice show as text and
// do not run. A plain number (-5, +21.5, -1e3) is left alone: it is a reading,
// and it computes nothing.
func CSVCell(s string) string {
	if s == "" || !strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return s
	}
	if _, err := strconv.ParseFloat(s, 64); err == nil && strings.Trim(s, "0123456789.+-eE") == "" {
		return s
	}
	return "'" + s
}

// Boot is one acknowledged-mode sequence of a device.
type Boot struct {
	Device       string     `json:"-"`
	Boot         string     `json:"boot"`
	Messages     int64      `json:"messages"`
	LastSeq      int64      `json:"last_seq"`
	Durable      int64      `json:"durable"`
	MissingCount int64      `json:"missing"`
	Missing      [][2]int64 `json:"missing_ranges"`
	FirstSeen    string     `json:"first_seen"`
	LastSeen     string     `json:"last_seen"`
}

// NewBoot converts b.
func NewBoot(b *inlet.Boot) Boot {
	r := Boot{Device: b.Device, Boot: b.Boot, Messages: b.Messages, LastSeq: b.Last, Durable: b.Durable(),
		MissingCount: b.MissingCount(), Missing: [][2]int64{}, FirstSeen: Time(b.FirstSeen), LastSeen: Time(b.LastSeen)}
	for _, m := range b.Missing {
		r.Missing = append(r.Missing, [2]int64{m.From, m.To})
	}
	return r
}

// Device is one device as `inlet devices --format json` lists it.
type Device struct {
	Device string `json:"device"`
	// Kind is "counter" (plain, its lone integers are a counter: loss is
	// counted), "values" (plain, anything else: loss unknown) or "acked"
	// (INLET/1: loss counted by seq).
	Kind        string `json:"kind"`
	Messages    int64  `json:"messages"`
	FirstSeen   string `json:"first_seen"`
	LastSeen    string `json:"last_seen"`
	LastCounter *int64 `json:"last_counter"`
	// The loss figures are null for a values device: unknown.
	Gaps       *int64 `json:"gaps"`
	Missing    *int64 `json:"missing"`
	Duplicates *int64 `json:"duplicates"`
	Resets     *int64 `json:"resets"`
	// Acknowledged mode: the device's sequences, one per boot.
	Boots []Boot `json:"boots,omitempty"`
}

// NewDevice converts d (without its boots).
func NewDevice(d *inlet.Device) Device {
	r := Device{
		Device: d.ID, Kind: d.KindName(), Messages: d.Messages,
		FirstSeen: Time(d.FirstSeen), LastSeen: Time(d.LastSeen),
	}
	if l, known := d.Reported(); known {
		r.Gaps, r.Missing, r.Duplicates, r.Resets = &l.Gaps, &l.Missing, &l.Duplicates, &l.Resets
	}
	if v, ok := d.LastCounter(); ok {
		r.LastCounter = &v
	}
	return r
}

// LossKnown reports whether the device's loss is counted: a counter or an
// acknowledged device.
func (d *Device) LossKnown() bool { return d.Missing != nil }

// Clean reports that no loss, duplicate or reset is known: the dashboard's
// green badge, or its grey one for a values device, whose loss is unknown and
// which is never shown as losing anything. (Missing counts both counter values
// and acknowledged seqs never received, less those that arrived late.)
func (d *Device) Clean() bool {
	return !d.LossKnown() || *d.Missing == 0 && *d.Gaps == 0 && *d.Duplicates == 0 && *d.Resets == 0
}
