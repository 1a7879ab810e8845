package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"text/tabwriter"
	"time"

	"github.com/inletdev/inlet"
	"github.com/inletdev/inlet/listen"
	"github.com/inletdev/inlet/wire"
)

const tokenUsage = `Usage: inlet token add DEVICE [--db FILE|URL] [--replace]
       inlet token list [--db FILE|URL]
       inlet token revoke DEVICE [--db FILE|URL]

Per-device tokens of acknowledged mode (INLET/1), checked by inlet serve --require-token.
add prints a fresh random token once, as a sketch pastes it; only its hash is stored.
They may run while inlet serve runs: it sees every change within about a second.
With --db postgres://…, every node on that database shares the tokens.
See docs/security.md, "Tokens".
`

// runToken is inlet token add/list/revoke.
func runToken(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, tokenUsage)
		return errUsage
	}
	switch args[0] {
	case "add":
		return runTokenAdd(ctx, args[1:], stdout, stderr)
	case "list":
		return runTokenList(ctx, args[1:], stdout, stderr)
	case "revoke":
		return runTokenRevoke(ctx, args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, tokenUsage)
		return nil
	}
	fmt.Fprintf(stderr, "inlet token: unknown command %q\n\n%s", args[0], tokenUsage)
	return errUsage
}

// parseDeviceArgs parses flags placed before or after the one DEVICE argument.
func parseDeviceArgs(fs *flag.FlagSet, args []string) (string, error) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return "", err
		}
		return "", errUsage
	}
	rest := fs.Args()
	if len(rest) == 0 {
		fmt.Fprintln(fs.Output(), "DEVICE is required")
		fs.Usage()
		return "", errUsage
	}
	device := rest[0]
	if err := fs.Parse(rest[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return "", err
		}
		return "", errUsage
	}
	if len(fs.Args()) > 0 {
		fmt.Fprintf(fs.Output(), "unexpected argument %q\n", fs.Args()[0])
		fs.Usage()
		return "", errUsage
	}
	return device, nil
}

// checkDevice explains why id cannot be an acknowledged device.
func checkDevice(id string) error {
	if wire.ValidDevice(id) {
		return nil
	}
	if _, err := netip.ParseAddr(id); err == nil {
		return badUsage(fmt.Errorf("%q is an IP address: plain devices are named by their address, so an acknowledged "+
			"device needs a name such as greenhouse-3 (docs/protocol.md)", id))
	}
	return badUsage(fmt.Errorf("%q is not a device id: 1 to %d characters of A-Z a-z 0-9 . _ : -", id, wire.MaxDeviceLen))
}

func runTokenAdd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("token add DEVICE", "Make a fresh random token for DEVICE, store its hash and print the token once,\n"+
		"as a sketch pastes it. A device that has a valid token keeps it unless --replace.", stderr)
	db := fs.String("db", "inlet.db", "SQLite database file (created if missing), or a PostgreSQL database postgres://…")
	replace := fs.Bool("replace", false, "replace the device's token (the old one stops working)")
	device, err := parseDeviceArgs(fs, args)
	if err != nil {
		return err
	}
	if err := checkDevice(device); err != nil {
		return err
	}
	s, err := openTokenStore(ctx, *db)
	if err != nil {
		return err
	}
	defer s.Close()
	token := wire.NewToken()
	h := wire.TokenHash(token)
	now := time.Now()
	if err := s.AddToken(ctx, device, h[:], now.UnixNano(), *replace); err != nil {
		if errors.Is(err, inlet.ErrTokenExists) {
			return fmt.Errorf("token add: %s already has a token; --replace makes a new one (the old one stops working)", device)
		}
		return err
	}
	fmt.Fprintf(stdout, `// inlet token for device %s, made %s. Shown once: inlet keeps only its hash.
// Lost? inlet token add %s --replace. Sent in the hello: INLET/1 id=%s boot=<boot> token=<INLET_TOKEN>
const char INLET_DEVICE[] = "%s";
const char INLET_TOKEN[] = "%s";
`, device, now.UTC().Format(time.RFC3339), device, device, device, token)
	fmt.Fprintf(stderr, "inlet token: %s added to %s; a running inlet serve --require-token takes it within a second\n", device, dbName(*db))
	return nil
}

func runTokenList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("token list", "List the devices that have a token: when it was made, and whether it is revoked.\n"+
		"Never the tokens (inlet keeps only their hashes).", stderr)
	db := fs.String("db", "inlet.db", "SQLite database file, or a PostgreSQL database postgres://…")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	s, err := openTokenStore(ctx, *db)
	if err != nil {
		return err
	}
	defer s.Close()
	toks, err := s.Tokens(ctx)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "DEVICE\tCREATED\tSTATUS")
	for _, t := range toks {
		status := "valid"
		if t.RevokedAt != 0 {
			status = "revoked " + tokenTime(t.RevokedAt)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\n", t.Device, tokenTime(t.CreatedAt), status)
	}
	return w.Flush()
}

func runTokenRevoke(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("token revoke DEVICE", "Revoke DEVICE's token: a running inlet serve refuses its next hello and closes its\n"+
		"connections within about a second. inlet token add DEVICE gives it a new one.", stderr)
	db := fs.String("db", "inlet.db", "SQLite database file, or a PostgreSQL database postgres://…")
	device, err := parseDeviceArgs(fs, args)
	if err != nil {
		return err
	}
	if err := checkDevice(device); err != nil {
		return err
	}
	s, err := openTokenStore(ctx, *db)
	if err != nil {
		return err
	}
	defer s.Close()
	if err := s.RevokeToken(ctx, device, time.Now().UnixNano()); err != nil {
		if errors.Is(err, inlet.ErrNoToken) {
			return fmt.Errorf("token revoke: %s has no valid token (never added, or already revoked: inlet token list)", device)
		}
		return err
	}
	fmt.Fprintf(stdout, "inlet token: %s revoked; a running inlet serve refuses it within a second\n", device)
	return nil
}

// tokenTime shows unix nanoseconds as RFC 3339 UTC, to the second.
func tokenTime(ns int64) string { return time.Unix(0, ns).UTC().Format(time.RFC3339) }

// storeTokens is the store as the listeners' TokenSource (--require-token);
// it is set once the store is open, before the listeners serve.
type storeTokens struct{ s tokenStore }

// tokenStore is where serve reads the device tokens from: the SQLite store,
// or the PostgreSQL one that every node on the database shares.
type tokenStore interface {
	TokensVersion(ctx context.Context) (int64, error)
	Tokens(ctx context.Context) ([]inlet.Token, error)
}

// tokenAdmin is what inlet token needs of a store (openTokenStore).
type tokenAdmin interface {
	AddToken(ctx context.Context, device string, hash []byte, at int64, replace bool) error
	RevokeToken(ctx context.Context, device string, at int64) error
	Tokens(ctx context.Context) ([]inlet.Token, error)
	Close() error
}

var errNoStore = errors.New("tokens: the store is not open")

func (st *storeTokens) TokensVersion(ctx context.Context) (int64, error) {
	if st.s == nil {
		return 0, errNoStore
	}
	return st.s.TokensVersion(ctx)
}

func (st *storeTokens) DeviceTokens(ctx context.Context) ([]listen.DeviceToken, error) {
	if st.s == nil {
		return nil, errNoStore
	}
	toks, err := st.s.Tokens(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]listen.DeviceToken, 0, len(toks))
	for _, t := range toks {
		d := listen.DeviceToken{Device: t.Device, Revoked: t.RevokedAt != 0}
		if copy(d.Hash[:], t.Hash) != len(d.Hash) || len(t.Hash) != len(d.Hash) {
			d.Revoked = true // a hash not made by inlet token (edited by hand): refuse the device
		}
		out = append(out, d)
	}
	return out, nil
}

// newAuth makes the listeners' token check (--token, --require-token,
// --max-failed-hellos); startAuth loads it once the store is open.
func (m *Main) newAuth() *listen.Auth {
	ac := listen.AuthConfig{Token: m.Config.Token, MaxFailedHellos: m.Config.MaxFailedHellos, Logger: m.Logger, Stats: m.Stats}
	if m.Config.RequireToken {
		ac.Tokens = &m.tokens
	}
	m.auth = listen.NewAuth(ac)
	return m.auth
}

// startAuth reads the device tokens from the open store, before the listeners
// serve, and keeps them current: every listen.TokenPoll it reads the store's
// tokens version, off every accept loop, and the tokens again when it moved.
func (m *Main) startAuth(ctx context.Context) error {
	if !m.Config.RequireToken {
		return nil
	}
	ts, ok := m.store.(tokenStore)
	if !ok {
		return errors.New("--require-token: this store keeps no device tokens")
	}
	m.tokens.s = ts
	if err := m.auth.Load(ctx); err != nil {
		return fmt.Errorf("--require-token: %w", err)
	}
	toks, _ := ts.Tokens(ctx)
	valid := 0
	for _, t := range toks {
		if t.RevokedAt == 0 {
			valid++
		}
	}
	m.Logger.Info("tokens: every acknowledged hello needs its device's token (--require-token)", "devices", valid, "shared_token", m.Config.Token != "")
	if valid == 0 && m.Config.Token == "" {
		m.Logger.Warn("tokens: no device has a token yet, so every acknowledged hello is refused: add one with inlet token add DEVICE --db " + dbName(m.Config.DB))
	}
	if m.Config.TCP != "" || m.Config.UDP != "" {
		m.Logger.Warn("tokens: the plain TCP and UDP ports carry tokens in clear; anyone who sees a hello can reuse its token (use --tls, docs/security.md)")
	}
	actx, cancel := context.WithCancel(context.Background())
	m.stopAuth = cancel
	go m.auth.Run(actx)
	return nil
}
