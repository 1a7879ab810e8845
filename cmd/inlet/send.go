package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/inletdev/inlet/internal/emulate"
)

// sendStdin is where --stdin reads; tests replace it.
var sendStdin io.Reader = os.Stdin

const sendSummary = `Send readings to an inlet server like a device would: the tutorial sketch byte for
byte, many devices at once, or lines from stdin (a reliable nc).

Modes (--mode):
  tutorial  connect, write "N\r\n", close; every --every. A failed connect waits 2s
            and retries the same value, as the sketch does.
  stream    one connection per device, a line "N\r\n" every --every; reconnects with
            back-off when it drops. Plain TCP cannot tell which lines written before a
            drop arrived: some may be lost (use --ack to know).
  udp       the UDP sketch: one 10-byte datagram per reading, the counter padded with
            NUL bytes (longer payloads are sent as they are).

--ack switches any mode to the acknowledged protocol (INLET/1): tutorial connects per
message, stream keeps one connection, udp repeats each datagram until acknowledged.
Payloads are then the bare value ("N"), numbered by the protocol, and kept in an
outbox (--outbox, or memory) until the server has them on disk.

With --devices N and a loopback target each device sends from its own address,
127.0.0.10, 127.0.0.11, ..., so the server sees N devices.
Progress goes to stderr when it is a terminal, the summary to stderr (--json: stdout).
Exit status 0 when every reading was sent (with --ack: acknowledged), else 1.`

// sendConfig is what the flags of inlet send say.
type sendConfig struct {
	addr     string
	mode     string
	every    time.Duration
	count    int64
	devices  int
	ack      bool
	device   string
	outbox   string
	template string
	stdin    bool
	json     bool
	token    string
}

func runSend(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("send", sendSummary, stderr)
	var c sendConfig
	fs.StringVar(&c.addr, "addr", "", "server address (default 127.0.0.1:3000, with --mode udp 127.0.0.1:3001)")
	fs.StringVar(&c.mode, "mode", "tutorial", "tutorial, stream or udp")
	fs.DurationVar(&c.every, "every", time.Second, "wait between readings, per device; 0: as fast as possible (not used with --stdin)")
	fs.Int64Var(&c.count, "count", 0, "readings per device; 0: until interrupted (with --stdin: until end of input)")
	fs.IntVar(&c.devices, "devices", 1, "number of simulated devices")
	fs.BoolVar(&c.ack, "ack", false, "use the acknowledged protocol (INLET/1)")
	fs.StringVar(&c.device, "device", "", "with --ack: the device id (default: the host name); with --devices N: <device>-1 ... <device>-N")
	fs.StringVar(&c.outbox, "outbox", "", "with --ack: directory of the durable outbox (with --devices N: <dir>/<device>); default: in memory")
	fs.StringVar(&c.token, "token", "", "with --ack: token to send in the hello")
	fs.StringVar(&c.template, "template", "", "payload template: {n} the counter, {rand} a random 0-100 with 2 decimals, {randint} 0-1000; e.g. temp={rand},n={n}")
	fs.BoolVar(&c.stdin, "stdin", false, "send the lines of stdin instead of a counter, as one device (with --ack, --mode stream keeps one connection for them all)")
	fs.BoolVar(&c.json, "json", false, "print the summary as JSON on stdout")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if err := c.check(set); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	ec := emulate.Config{
		Addr: c.addr, Mode: c.mode, Every: c.every, Count: c.count, Devices: c.devices,
		Ack: c.ack, Device: c.device, Outbox: c.outbox, Token: c.token, Template: c.template,
	}
	if c.stdin {
		readCtx, cancel := context.WithCancel(ctx)
		defer cancel()
		ec.Lines = emulate.ReadLines(readCtx, sendStdin)
	}
	fleet, err := emulate.New(&ec, stderr)
	if err != nil {
		return err
	}
	progressDone := make(chan struct{})
	stopProgress := make(chan struct{})
	go func() {
		defer close(progressDone)
		if isTerminal(stderr) {
			sendProgress(stderr, fleet, c.ack, stopProgress)
		}
	}()
	fleet.Run(ctx)
	close(stopProgress)
	<-progressDone
	fleet.Close()

	sum := fleet.Summary()
	if c.json {
		if err := json.NewEncoder(stdout).Encode(&sum); err != nil {
			return err
		}
	} else {
		printSendSummary(stderr, &sum)
	}
	if !sum.OK {
		if c.ack {
			return fmt.Errorf("send: %d readings not acknowledged, %d rejected", sum.Unacked, sum.Errors)
		}
		return fmt.Errorf("send: %d readings not sent", sum.Unsent+sum.Errors)
	}
	return nil
}

// check validates the flags and fills in the defaults that depend on others.
func (c *sendConfig) check(set map[string]bool) error {
	switch c.mode {
	case "tutorial", "stream", "udp":
	default:
		return fmt.Errorf("--mode %q: want tutorial, stream or udp", c.mode)
	}
	if c.addr == "" {
		c.addr = "127.0.0.1:3000"
		if c.mode == "udp" {
			c.addr = "127.0.0.1:3001"
		}
	}
	if _, _, err := net.SplitHostPort(c.addr); err != nil {
		return fmt.Errorf("--addr %q: %w", c.addr, err)
	}
	switch {
	case c.every < 0:
		return errors.New("--every must not be negative")
	case c.count < 0:
		return errors.New("--count must not be negative")
	case c.devices < 1:
		return errors.New("--devices must be at least 1")
	case c.devices > 1 && c.stdin:
		return errors.New("--stdin sends as one device: leave out --devices")
	case c.stdin && c.template != "":
		return errors.New("--stdin and --template exclude each other")
	case !c.ack && (set["device"] || set["outbox"] || set["token"]):
		return errors.New("--device, --outbox and --token need --ack")
	case c.mode != "udp" && strings.ContainsAny(c.template, "\n"):
		return errors.New("--template: a newline would split the message over TCP")
	}
	if c.ack && c.device == "" {
		c.device = sendHostDevice(c.devices)
	}
	return nil
}

// sendHostDevice makes a device id from the host name, leaving room for "-<i>".
func sendHostDevice(devices int) string {
	host, _ := os.Hostname()
	var b strings.Builder
	for _, r := range host {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == ':', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	name := b.String()
	if name == "" {
		name = "inlet-send"
	}
	limit := 64
	if devices > 1 {
		limit -= 1 + len(strconv.Itoa(devices))
	}
	if len(name) > limit {
		name = name[:limit]
	}
	return name
}

func printSendSummary(w io.Writer, rep *emulate.Report) {
	mode := rep.Mode
	if rep.Ack {
		mode += ", acknowledged"
	}
	fmt.Fprintf(w, "inlet send: %s to %s, %d device(s), %.1fs: %s\n", mode, rep.Addr, len(rep.Devices), rep.DurationS, sendCounts(rep.Sent, rep.Acked, rep.Retried, rep.Errors, rep.Pending))
	if len(rep.Devices) > 1 && len(rep.Devices) <= 10 {
		for _, d := range rep.Devices {
			fmt.Fprintf(w, "  %-20s %s\n", d.Device, sendCounts(d.Sent, d.Acked, d.Retried, d.Errors, d.Pending))
		}
	}
}

func sendCounts(sent int64, acked *int64, retried, errs int64, pending *int64) string {
	s := fmt.Sprintf("sent %d", sent)
	if acked != nil {
		s += fmt.Sprintf(", acked %d", *acked)
	}
	s += fmt.Sprintf(", retried %d, errors %d", retried, errs)
	if pending != nil {
		s += fmt.Sprintf(", pending %d", *pending)
	}
	return s
}

// progress rewrites one status line on w every second until stop.
func sendProgress(w io.Writer, fleet *emulate.Fleet, ack bool, stop <-chan struct{}) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var prev int64
	for {
		select {
		case <-stop:
			fmt.Fprint(w, "\r\x1b[K")
			return
		case <-t.C:
		}
		sent, acked, retried, errs, _ := fleet.Totals()
		line := fmt.Sprintf("sent %d", sent)
		if ack {
			line += fmt.Sprintf("  acked %d", acked)
		}
		line += fmt.Sprintf("  retried %d  errors %d  %d/s", retried, errs, sent-prev)
		prev = sent
		fmt.Fprintf(w, "\r%s\x1b[K", line)
	}
}
