package httpapi

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/inletdev/inlet"
	"github.com/inletdev/inlet/record"
)

// bootsListed bounds the boots /api/devices lists per device: a deep-sleep
// device starts a new boot at every wake-up.
const bootsListed = 10

type api struct {
	cfg     Config
	streams chan struct{} // a slot per open stream
	series1 chan struct{} // a slot per /api/series being computed
	feed    *feed         // committed messages for the streams, read once
}

// deviceJSON is a device of /api/devices: the `inlet devices` record plus live figures.
type deviceJSON struct {
	record.Device
	Boots         []record.Boot   `json:"boots"` // always an array here; the newest bootsListed
	BootsTotal    int64           `json:"boots_total"`
	Lost          *int64          `json:"lost"` // null for a values device: unknown
	Clean         bool            `json:"clean"`
	LastPayload   *string         `json:"last_payload"`
	LastFields    json.RawMessage `json:"last_fields"`
	RatePerMinute int64           `json:"rate_per_minute"`
	AgeSeconds    float64         `json:"age_seconds"`
}

func (a *api) devices(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	devs, err := a.cfg.Reader.Devices(ctx)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	boots, totals, err := a.cfg.Reader.RecentBoots(ctx, bootsListed)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	byDevice := make(map[string][]record.Boot)
	for i := range boots {
		byDevice[boots[i].Device] = append(byDevice[boots[i].Device], record.NewBoot(&boots[i]))
	}
	live := a.cfg.Hub.Devices()
	now := time.Now().UnixNano()
	out := make([]deviceJSON, 0, len(devs))
	for i := range devs {
		d := deviceJSON{Device: record.NewDevice(&devs[i])}
		d.Boots = byDevice[d.Device.Device]
		if d.Boots == nil {
			d.Boots = []record.Boot{}
		}
		d.BootsTotal = totals[d.Device.Device]
		d.Lost = d.Device.Missing
		d.Clean = d.Device.Clean()
		d.AgeSeconds = float64(max(0, now-devs[i].LastSeen)) / 1e9
		if l, ok := live[devs[i].ID]; ok {
			if utf8.Valid(l.LastPayload) {
				p := string(l.LastPayload)
				d.LastPayload = &p
			}
			if len(l.LastFields) > 0 {
				d.LastFields = l.LastFields
			}
			d.RatePerMinute = l.RatePerMinute
		}
		if d.LastFields == nil {
			d.LastFields = json.RawMessage("null")
		}
		out = append(out, d)
	}
	writeJSON(w, http.StatusOK, out)
}

type overviewJSON struct {
	Now                 string            `json:"now"`
	Started             string            `json:"started"`
	Version             string            `json:"version"`
	MessagesPerSecond   float64           `json:"messages_per_second"`
	RateHistory         []int64           `json:"rate_history"`
	Committed           int64             `json:"committed"`
	Received            map[string]int64  `json:"received"`
	ConnectionsOpen     map[string]int64  `json:"connections_open"`
	ConnectionsAccepted map[string]int64  `json:"connections_accepted"`
	Rejected            map[string]int64  `json:"rejected"`
	UDPKernelDrops      int64             `json:"udp_kernel_drops"`
	Duplicates          int64             `json:"duplicates"`
	Queue               int64             `json:"queue"`
	Devices             int               `json:"devices"`
	Store               storeJSON         `json:"store"`
	Listen              map[string]string `json:"listen"`
	Hosts               []string          `json:"hosts"`
	Auth                bool              `json:"auth"`
}

type storeJSON struct {
	Healthy bool  `json:"healthy"`
	Errors  int64 `json:"errors"`
}

func (a *api) overview(w http.ResponseWriter, r *http.Request) {
	s := a.cfg.Stats
	rate, hist := a.cfg.Hub.Rate()
	o := overviewJSON{
		Now:                 record.Time(time.Now().UnixNano()),
		Started:             record.Time(a.cfg.Hub.Started().UnixNano()),
		Version:             a.cfg.Version,
		MessagesPerSecond:   rate,
		RateHistory:         hist,
		Committed:           s.Committed.Load(),
		Received:            map[string]int64{"tcp": s.MessagesTCP.Load(), "udp": s.MessagesUDP.Load()},
		ConnectionsOpen:     map[string]int64{"tcp": s.ConnsOpen.Load()},
		ConnectionsAccepted: map[string]int64{"tcp": s.ConnsAccepted.Load()},
		Rejected:            make(map[string]int64, len(inlet.Reasons)),
		UDPKernelDrops:      s.UDPKernelDrops.Load(),
		Duplicates:          s.Duplicates.Load(),
		Queue:               s.QueueDepth.Load(),
		Devices:             a.cfg.Hub.DeviceCount(),
		Store:               storeJSON{Healthy: s.StoreHealthy.Load(), Errors: s.StoreErrors.Load()},
		Listen:              a.cfg.Listen,
		Hosts:               a.cfg.Hosts,
		Auth:                a.cfg.Token != "",
	}
	if o.Listen == nil {
		o.Listen = map[string]string{}
	}
	if o.Hosts == nil {
		o.Hosts = []string{}
	}
	for _, reason := range inlet.Reasons {
		o.Rejected[string(reason)] = s.Rejected(reason).Load()
	}
	writeJSON(w, http.StatusOK, o)
}

// fail answers a store error that happened before anything was written.
func (a *api) fail(w http.ResponseWriter, r *http.Request, err error) {
	a.cfg.Logger.Error("http: store read failed", "path", r.URL.Path, "err", err)
	writeError(w, http.StatusInternalServerError, "store: "+err.Error())
}

// query reads the message filters shared by /api/messages and /api/series.
func parseQuery(r *http.Request) (inlet.Query, error) {
	v := r.URL.Query()
	now := time.Now()
	q := inlet.Query{Device: v.Get("device")}
	var err error
	if q.Since, err = record.ParseTime(v.Get("since"), now); err != nil {
		return q, fmt.Errorf("since: %w", err)
	}
	if q.Until, err = record.ParseTime(v.Get("until"), now); err != nil {
		return q, fmt.Errorf("until: %w", err)
	}
	if s := v.Get("after_id"); s != "" {
		if q.AfterID, err = strconv.ParseInt(s, 10, 64); err != nil || q.AfterID < 0 {
			return q, fmt.Errorf("after_id %q: want a message id (an integer ≥ 0)", s)
		}
	}
	return q, nil
}

func (a *api) messages(w http.ResponseWriter, r *http.Request) {
	q, err := parseQuery(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	v := r.URL.Query()
	format := v.Get("format")
	switch format {
	case "":
		format = "json"
	case "json", "ndjson", "csv":
	default:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("format %q: want json, ndjson or csv", format))
		return
	}
	if format == "json" {
		q.Limit = 1000
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("limit %q: want a count (0: no limit)", s))
			return
		}
		q.Limit = n
	}
	switch s := v.Get("last"); s {
	case "", "0", "false":
	case "1", "true":
		q.Last = q.Limit > 0 // the newest Limit; without a limit, simply everything
	default:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("last %q: want 1 or 0", s))
		return
	}

	h := w.Header()
	switch format {
	case "json":
		h.Set("Content-Type", "application/json")
	case "ndjson":
		h.Set("Content-Type", "application/x-ndjson")
	case "csv":
		h.Set("Content-Type", "text/csv; charset=utf-8")
		h.Set("Content-Disposition", `attachment; filename="inlet-messages.csv"`)
	}
	h.Set("Cache-Control", "no-store")

	// The export is read in chunks: each is read into memory with the read
	// transaction closed before it is written, with a deadline, so a client
	// that stops reading never holds the database open (its WAL could not be
	// checkpointed) and is cut off after exportWriteTimeout.
	rc := http.NewResponseController(w)
	var buf bytes.Buffer
	var cw *csv.Writer
	switch format {
	case "csv":
		cw = csv.NewWriter(&buf)
		cw.Write(record.CSVHeader)
		cw.Flush()
	case "json":
		buf.WriteString("[")
	}
	remaining := q.Limit // 0: no limit
	n := 0
	for first := true; ; first = false {
		cq := q
		cq.Limit = exportChunkRows
		if remaining > 0 {
			cq.Limit = min(remaining, exportChunkRows)
			if q.Last {
				// The store finds where the newest `remaining` start; the
				// callback still stops after a chunk, and later chunks go
				// forward from the last id sent.
				cq.Limit = remaining
			}
		}
		got, stopped := 0, false
		var line []byte
		err := a.cfg.Reader.Messages(r.Context(), cq, func(m *inlet.Stored) error {
			switch format {
			case "csv":
				cw.Write(record.CSV(m))
			case "json":
				line = line[:0]
				if n > 0 {
					line = append(line, ",\n"...)
				}
				buf.Write(record.AppendJSON(line, m))
			default:
				buf.Write(append(record.AppendJSON(line[:0], m), '\n'))
			}
			n, got = n+1, got+1
			q.AfterID = m.ID
			if got >= exportChunkRows || buf.Len() >= exportChunkBytes {
				stopped = true
				return errStop
			}
			return nil
		})
		if err != nil && err != errStop {
			if first {
				h.Del("Content-Disposition")
				if r.Context().Err() == nil {
					a.fail(w, r, err)
				}
				return
			}
			if r.Context().Err() != nil {
				// The client went away (a download closed early): not an error.
				a.cfg.Logger.Debug("http: message export ended by the client", "path", r.URL.Path, "rows", n)
				return
			}
			// The status is sent; cut the response so the client sees it incomplete.
			a.cfg.Logger.Error("http: message export cut short", "path", r.URL.Path, "rows", n, "err", err)
			panic(http.ErrAbortHandler)
		}
		q.Last = false // from here on, forward from the last id sent
		if remaining > 0 {
			remaining -= got
		}
		more := stopped && (q.Limit == 0 || remaining > 0)
		if cw != nil {
			cw.Flush()
		}
		if !more && format == "json" {
			buf.WriteString("]\n")
		}
		rc.SetWriteDeadline(time.Now().Add(exportWriteTimeout))
		if _, err := w.Write(buf.Bytes()); err != nil {
			return // the client went away or stopped reading; nothing more to do
		}
		buf.Reset()
		if !more {
			return
		}
	}
}

const (
	exportChunkRows    = 1000
	exportChunkBytes   = 1 << 20
	exportWriteTimeout = 30 * time.Second
)

var errStop = errors.New("stop")
