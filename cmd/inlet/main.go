// Command inlet receives readings from ESP8266/ESP32-style devices over raw TCP
// and UDP, stores every one durably, and tells whether any was lost. This package
// is the only one that knows every other: it parses flags and wires them together.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"slices"
	"strings"
)

const usage = `inlet receives device readings over TCP and UDP and stores every one.

Usage:
  inlet serve    [flags]   receive on TCP :3000 and UDP :3001, store in inlet.db
  inlet export   [flags]   write stored messages as NDJSON or CSV
  inlet devices  [flags]   per-device counts: messages, gaps, missing, duplicates, resets
  inlet tail     [flags]   follow messages as they are stored (from the server, or --db)
  inlet backup   FILE      copy the database consistently while the server runs
  inlet prune    --before  delete old messages (e.g. --before 90d), accounting kept
  inlet migrate  [flags]   copy a SQLite history into PostgreSQL (--from inlet.db --to postgres://…)
  inlet health   [flags]   exit 0 when a running server is ready (for health checks)
  inlet bench    [flags]   load-test a server on loopback: sent, stored, loss, rate, CPU per message
  inlet send     [flags]   act as devices: the tutorial sketch, streams, UDP, or --ack (INLET/1)
  inlet cert     [flags]   make a self-signed TLS certificate and print what a sketch pastes
  inlet token    add|list|revoke DEVICE   per-device tokens for serve --require-token
  inlet version            print the version

Run 'inlet help <command>' (or 'inlet <command> -h') for a command's flags.
Quick start:  inlet serve     it prints the address to point a device at; no device yet?
              inlet send --count 10   in another terminal pretends to be one,
              then open http://127.0.0.1:8080 to watch it live, or: inlet tail
`

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

// errUsage marks an error already explained by a flag set's usage output.
var errUsage = errors.New("usage")

// commands are the subcommands, in the order the usage lists them.
var commands = []string{"serve", "export", "devices", "tail", "bench", "send", "token", "version"}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = runServe(ctx, args[1:], stdout, stderr)
	case "export":
		err = runExport(ctx, args[1:], stdout, stderr)
	case "devices":
		err = runDevices(ctx, args[1:], stdout, stderr)
	case "bench":
		err = runBench(ctx, args[1:], stdout, stderr)
	case "send":
		err = runSend(ctx, args[1:], stdout, stderr)
	case "tail":
		err = runTail(ctx, args[1:], stdout, stderr)
	case "backup":
		err = runBackup(ctx, args[1:], stdout, stderr)
	case "prune":
		err = runPrune(ctx, args[1:], stdout, stderr)
	case "migrate":
		err = runMigrate(ctx, args[1:], stdout, stderr)
	case "health":
		err = runHealth(ctx, args[1:], stdout, stderr)
	case "cert":
		err = runCert(ctx, args[1:], stdout, stderr)
	case "token":
		err = runToken(ctx, args[1:], stdout, stderr)
	case "bench-baseline": // started by inlet bench --baseline; not in the usage
		err = runBenchBaseline(ctx, args[1:], stdout, stderr)
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, "inlet", version())
		return 0
	case "help", "-h", "-help", "--help":
		if len(args) > 1 && args[1] != "version" && slices.Contains(commands, args[1]) {
			// inlet help serve: serve's own usage, on stdout since it was asked for.
			return run(ctx, []string{args[1], "-h"}, stdout, stdout)
		}
		if len(args) > 1 && args[1] != "version" {
			fmt.Fprintf(stderr, "inlet help: unknown command %q%s\n\n%s", args[1], didYouMean(args[1]), usage)
			return 2
		}
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "inlet: unknown command %q%s\n\n%s", args[0], didYouMean(args[0]), usage)
		return 2
	}
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "inlet %s: %v\nRun 'inlet %s -h' for its flags.\n", args[0], ue.error, args[0])
		return 2
	case errors.Is(err, errReported):
		return 1
	}
	fmt.Fprintln(stderr, "inlet:", err)
	return 1
}

// usageError is a flag value that cannot work: exit status 2, like a flag the
// parser refused (docs/cli.md).
type usageError struct{ error }

func (u usageError) Unwrap() error { return u.error }

// badUsage marks err as a usage error.
func badUsage(err error) error {
	if err == nil {
		return nil
	}
	return usageError{err}
}

// errReported is an error the command has already logged: exit 1 without
// printing it a second time.
var errReported = errors.New("reported")

// didYouMean suggests the command name closest to a mistyped one.
func didYouMean(name string) string {
	best, bestD := "", 3
	for _, c := range commands {
		d := editDistance(name, c)
		if strings.HasPrefix(c, name) && len(name) >= 2 {
			d = min(d, 1)
		}
		if d < bestD {
			best, bestD = c, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(": did you mean %s?", best)
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// newFlags makes a flag set whose usage starts with a one-line summary.
func newFlags(name, summary string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("inlet "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: inlet %s [flags]\n\n%s\n\nFlags:\n", name, summary)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args and rejects stray positional arguments.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return errUsage
	}
	return nil
}

// envDefault sets flag name from the environment variable env when the command
// line did not set it. Secrets default this way rather than through the flag's
// default, which -h would print.
func envDefault(fs *flag.FlagSet, name, env string) {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	if v, ok := os.LookupEnv(env); ok && !set {
		fs.Set(name, v)
	}
}

// version is the module version from build info, with the VCS revision if known.
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			v += " (" + s.Value[:12] + ")"
		}
	}
	return v
}
