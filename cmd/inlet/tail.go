package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/inletdev/inlet"
	"github.com/inletdev/inlet/record"
)

const tailSummary = "Print stored messages as they arrive, like tail -f: the newest -n first, then every\n" +
	"message as it is committed, following the server's /api/stream. A lost connection is\n" +
	"retried and resumed from the last message printed, so nothing is skipped or repeated.\n" +
	"With --db, reads the database file instead (no server needed): prints the newest -n\n" +
	"messages and exits, or keeps polling the file with -f."

func runTail(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("tail", tailSummary, stderr)
	server := fs.String("server", "http://127.0.0.1:8080", "inlet serve's HTTP address (https://HOST:PORT for a server with --http-tls-cert)")
	ca := fs.String("ca", "", "with an https:// --server: trust this PEM certificate file (the server's --http-tls-cert,\n"+
		"e.g. inlet.crt from inlet cert: taken whatever name the server is reached by) (default: the system's CAs)")
	device := fs.String("device", "", "only this device")
	format := fs.String("format", "text", "text (one aligned line a message) or json (the NDJSON record of inlet export)")
	n := fs.Int("n", 10, "first print the newest n stored messages (0: only new ones)")
	token := fs.String("token", "", "the server's --http-token (default: $INLET_HTTP_TOKEN)")
	db := fs.String("db", "", "read this SQLite database (or PostgreSQL database postgres://…) instead of a server")
	follow := fs.Bool("f", false, "with --db: keep printing new messages (polls the file twice a second)")
	color := fs.String("color", "auto", "colour device names: auto (on a terminal, unless NO_COLOR is set), always or never")
	count := fs.Int("count", 0, "exit after printing this many messages (0: never)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	envDefault(fs, "token", "INLET_HTTP_TOKEN")
	if *format != "text" && *format != "json" {
		return badUsage(fmt.Errorf("--format %q: want text or json", *format))
	}
	if *n < 0 {
		return badUsage(fmt.Errorf("-n %d: want 0 or more", *n))
	}
	if *count < 0 {
		return badUsage(fmt.Errorf("--count %d: want 0 (no limit) or more", *count))
	}
	var useColor bool
	switch *color {
	case "always":
		useColor = true
	case "never":
	case "auto":
		useColor = isTerminal(stdout) && os.Getenv("NO_COLOR") == ""
	default:
		return badUsage(fmt.Errorf("--color %q: want auto, always or never", *color))
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	p := &tailPrinter{w: bufio.NewWriter(stdout), json: *format == "json", color: useColor, left: *count}
	var err error
	if *db != "" {
		err = tailDB(ctx, *db, *device, *n, *follow, p)
	} else {
		err = tailServer(ctx, *server, *token, *ca, *device, *n, p, stderr)
	}
	p.w.Flush()
	if errors.Is(err, errTailDone) || (err != nil && ctx.Err() != nil) {
		return nil
	}
	return err
}

// errTailDone ends a tail that printed --count messages.
var errTailDone = errors.New("tail: done")

// tailPrinter writes messages in the chosen format.
type tailPrinter struct {
	w     *bufio.Writer
	json  bool
	color bool
	left  int // messages still to print when --count is set; 0 is unlimited
	width int // device column width so far, for alignment
}

var deviceColors = []string{"\x1b[36m", "\x1b[33m", "\x1b[35m", "\x1b[32m", "\x1b[34m", "\x1b[91m", "\x1b[96m", "\x1b[93m"}

// print writes one message given as its NDJSON record.
func (p *tailPrinter) print(r *record.Message, line []byte) error {
	if p.json {
		p.w.Write(line)
		p.w.WriteByte('\n')
	} else {
		p.width = max(p.width, min(len(r.Device), 40))
		t := r.ReceivedAt
		if len(t) >= 23 {
			t = t[:23] + "Z" // milliseconds are enough on a terminal
		}
		dev := r.Device + strings.Repeat(" ", max(0, p.width-len(r.Device)))
		if p.color {
			h := fnv.New32a()
			h.Write([]byte(r.Device))
			dev = deviceColors[h.Sum32()%uint32(len(deviceColors))] + dev + "\x1b[0m"
		}
		var payload string
		switch {
		case r.Payload != nil:
			payload = terminalSafe(*r.Payload)
		case r.PayloadBase64 != nil:
			payload = "base64:" + *r.PayloadBase64
		}
		seq := ""
		if r.Seq != nil {
			seq = " #" + strconv.FormatInt(*r.Seq, 10)
		}
		fmt.Fprintf(p.w, "%s  %s  %s%s  %s\n", t, dev, r.Transport, seq, payload)
	}
	if p.left > 0 {
		p.left--
		if p.left == 0 {
			return errTailDone
		}
	}
	return nil
}

// terminalSafe escapes control characters, so a payload cannot move the cursor
// or change the terminal's colours.
func terminalSafe(s string) string {
	clean := true
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	q := strconv.QuoteToGraphic(s)
	return q[1 : len(q)-1]
}

// tailDB prints from the database file.
func tailDB(ctx context.Context, path, device string, n int, follow bool, p *tailPrinter) error {
	store, err := openReader(ctx, path)
	if err != nil {
		return err
	}
	defer store.Close()
	q := inlet.Query{Device: device}
	if n > 0 {
		q.Limit, q.Last = n, true
	} else if q.AfterID, err = store.LastID(ctx); err != nil {
		return err
	}
	var line []byte
	emit := func(m *inlet.Stored) error {
		q.AfterID = m.ID
		line = record.AppendJSON(line[:0], m)
		r := record.FromStored(m)
		return p.print(&r, line)
	}
	if n > 0 || !follow {
		if err := store.Messages(ctx, q, emit); err != nil {
			return err
		}
	}
	if !follow {
		return nil
	}
	q.Limit, q.Last = 1000, false
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		p.w.Flush()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		for {
			before := q.AfterID
			if err := store.Messages(ctx, q, emit); err != nil {
				return err
			}
			if q.AfterID == before {
				break
			}
		}
	}
}

// tailServer prints the newest n messages from the API, then follows the stream,
// reconnecting with the last id after any error.
func tailServer(ctx context.Context, server, token, ca, device string, n int, p *tailPrinter, stderr io.Writer) error {
	base, err := url.Parse(strings.TrimSuffix(server, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return badUsage(fmt.Errorf("--server %q: want a URL like http://127.0.0.1:8080", server))
	}
	client, err := httpClient(ca)
	if err != nil {
		return badUsage(err)
	}
	get := func(path string, v url.Values, header http.Header) (*http.Response, error) {
		u := *base
		u.Path += path
		u.RawQuery = v.Encode()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err != nil {
			return nil, err
		}
		for k, vs := range header {
			req.Header[k] = vs
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusOK {
			defer resp.Body.Close()
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			var e struct{ Error string }
			msg := strings.TrimSpace(string(body))
			if json.Unmarshal(body, &e) == nil && e.Error != "" {
				msg = e.Error
			}
			err := fmt.Errorf("%s: %s: %s", u.Redacted(), resp.Status, msg)
			if resp.StatusCode >= 400 && resp.StatusCode < 500 {
				return nil, permanent{err}
			}
			return nil, err
		}
		return resp, nil
	}
	var last int64 = -1 // -1: start with the next message committed
	emit := func(line []byte) error {
		var r record.Message
		if err := json.Unmarshal(line, &r); err != nil {
			return fmt.Errorf("bad message from server: %w", err)
		}
		if r.ID <= last {
			return nil // already printed (cannot happen with a correct server)
		}
		last = r.ID
		return p.print(&r, line)
	}
	if n > 0 {
		v := url.Values{"format": {"ndjson"}, "last": {"1"}, "limit": {strconv.Itoa(n)}}
		if device != "" {
			v.Set("device", device)
		}
		resp, err := get("/api/messages", v, nil)
		if err != nil {
			return noServer(server, err)
		}
		err = eachLine(resp.Body, emit)
		resp.Body.Close()
		if err != nil {
			return err
		}
		if last < 0 {
			last = 0 // nothing stored yet: everything from now on
		}
	}
	backoff := time.Second
	connected := n > 0 // the first request already reached the server
	closed := false    // the server ended the stream: wait for it quietly
	for {
		p.w.Flush()
		v := url.Values{}
		if device != "" {
			v.Set("device", device)
		}
		h := http.Header{"Accept": {"text/event-stream"}}
		if last >= 0 {
			h.Set("Last-Event-ID", strconv.FormatInt(last, 10))
		}
		resp, err := get("/api/stream", v, h)
		if err != nil && !connected {
			return noServer(server, err)
		}
		if err == nil {
			if closed {
				fmt.Fprintln(stderr, "inlet tail: reconnected")
			}
			connected, closed = true, false
			backoff = time.Second
			if last < 0 {
				last = 0
			}
			err = readEvents(resp.Body, func(id string, data []byte) error {
				if data == nil {
					// An id-only event: where the stream starts. Resume from
					// there after a reconnect, never from the beginning.
					if n, err := strconv.ParseInt(id, 10, 64); err == nil && n > last {
						last = n
					}
					return nil
				}
				return emit(data)
			}, p.w.Flush)
			resp.Body.Close()
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				// The server ended the stream: it stopped or restarts. Say
				// so once, then wait for it without a line per attempt.
				fmt.Fprintln(stderr, "inlet tail: the server closed the stream (stopped or restarting); reconnecting when it is back")
				closed, backoff = true, time.Second
			}
		}
		var perm permanent
		if errors.Is(err, errTailDone) || errors.As(err, &perm) || ctx.Err() != nil {
			return err
		}
		if !closed {
			fmt.Fprintf(stderr, "inlet tail: lost the stream (%v); reconnecting in %s\n", err, backoff)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}

// noServer explains a first request that found no server: the likeliest cause
// is that inlet serve is not running, or runs elsewhere.
func noServer(server string, err error) error {
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "dial" {
		return err
	}
	cause := op.Err
	var sys *os.SyscallError
	if errors.As(cause, &sys) {
		cause = sys.Err
	}
	return fmt.Errorf("no inlet server answers at %s (%v): start one with `inlet serve`, point --server at it, "+
		"or read the database file without a server: inlet tail --db inlet.db", server, cause)
}

// permanent marks an error that retrying will not fix (a 4xx answer).
type permanent struct{ error }

func (p permanent) Unwrap() error { return p.error }

func eachLine(r io.Reader, fn func([]byte) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		if len(sc.Bytes()) == 0 {
			continue
		}
		if err := fn(sc.Bytes()); err != nil {
			return err
		}
	}
	return sc.Err()
}

// readEvents parses a server-sent event stream, calling fn with each message
// event's id and data (nil for an event with an id but no data), and idle when
// no more input is buffered (to flush output).
func readEvents(r io.Reader, fn func(id string, data []byte) error, idle func() error) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var data []byte
	var event, id string
	var hasID bool
	for {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			// A line longer than the buffer: collect it whole.
			long := append([]byte(nil), line...)
			for err == bufio.ErrBufferFull {
				line, err = br.ReadSlice('\n')
				long = append(long, line...)
			}
			line = long
		}
		if err != nil {
			return err
		}
		line = []byte(strings.TrimRight(string(line), "\r\n"))
		switch {
		case len(line) == 0: // end of an event
			if (data != nil || hasID) && (event == "" || event == "message") {
				if err := fn(id, data); err != nil {
					return err
				}
			}
			data, event, hasID = nil, "", false
			if br.Buffered() == 0 {
				if err := idle(); err != nil {
					return err
				}
			}
		case line[0] == ':': // comment: keep-alive
		default:
			field, value, _ := strings.Cut(string(line), ":")
			value = strings.TrimPrefix(value, " ")
			switch field {
			case "data":
				if data != nil {
					data = append(data, '\n')
				}
				data = append(data, value...)
				if data == nil {
					data = []byte{}
				}
			case "event":
				event = value
			case "id":
				id, hasID = value, true
			}
		}
	}
}
