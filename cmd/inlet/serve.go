package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/inletdev/inlet"
	"github.com/inletdev/inlet/commit"
	"github.com/inletdev/inlet/httpapi"
	"github.com/inletdev/inlet/httpapi/ui"
	"github.com/inletdev/inlet/listen"
	"github.com/inletdev/inlet/live"
	"github.com/inletdev/inlet/postgres"
	"github.com/inletdev/inlet/publish"
	"github.com/inletdev/inlet/tlsserve"
)

// Config is everything inlet serve can be told. Flags fill it; Validate checks it.
type Config struct {
	TCP            string
	UDP            string
	HTTP           string
	DB             string
	MaxMessage     int
	IdleTimeout    time.Duration
	MaxConns       int
	MaxConnsPerIP  int
	CommitInterval time.Duration
	UDPBuffer      int
	LogLevel       string
	LogFormat      string
	Pprof          bool
	Token          string
	HTTPToken      string
	Retain         time.Duration // delete messages older than this; 0 keeps everything
	RetainRollups  time.Duration // delete rollups older than this; 0 keeps them forever
	// TLS is the address of the TLS listener (docs/security.md); empty: none.
	TLS            string
	TLSCert        string
	TLSKey         string
	TLSIdleTimeout time.Duration
	// Allow limits TCP, TLS and UDP to these networks (--allow); empty: everyone.
	Allow []netip.Prefix
	// Limits are the abuse limits (--line-timeout, --max-conn-rate, ...).
	Limits listen.Limits
	// HTTPTLSCert and HTTPTLSKey serve --http over HTTPS (docs/security.md);
	// they may name the --tls-cert and --tls-key files. MaxDBSize prunes the
	// oldest messages when the database's pages in use exceed it (0: no
	// bound; retain.go).
	HTTPTLSCert, HTTPTLSKey string
	MaxDBSize               int64
	// RequireToken: every hello carries its device's own token (inlet token; docs/security.md).
	RequireToken bool
	// MaxFailedHellos: refused hellos per IP per minute before its hellos are
	// refused unchecked; 0 takes listen.DefaultMaxFailedHellos.
	MaxFailedHellos int
	// Publish names the NATS servers to publish committed messages to
	// (--publish, docs/scale.md); empty: none. PublishName keys its position.
	Publish     string
	PublishName string
}

// DefaultTLSIdleTimeout is --tls-idle-timeout's default: a TLS device keeps one
// connection per boot (a handshake takes seconds on an ESP8266), so an idle
// TLS connection is kept much longer than a plain one.
const DefaultTLSIdleTimeout = 10 * time.Minute

// DefaultConfig holds the documented defaults (docs/cli.md); the listeners'
// and the writer's come from their packages.
func DefaultConfig() Config {
	lc, cc := listen.DefaultConfig(), commit.DefaultConfig()
	return Config{
		TCP:            ":3000",
		UDP:            ":3001",
		HTTP:           "127.0.0.1:8080",
		DB:             "inlet.db",
		MaxMessage:     lc.MaxMessage,
		IdleTimeout:    lc.IdleTimeout,
		MaxConns:       lc.MaxConns,
		MaxConnsPerIP:  lc.MaxConnsPerIP,
		CommitInterval: cc.Interval,
		UDPBuffer:      lc.UDPBuffer,
		LogLevel:       "info",
		LogFormat:      "text",
		TLSIdleTimeout: DefaultTLSIdleTimeout,
		Limits:         lc.Limits,
		PublishName:    publish.DefaultConfig().Name,
	}
}

// Validate reports the first setting that cannot work.
func (c *Config) Validate() error {
	switch {
	case c.DB == "":
		return errors.New("--db must name a file")
	case c.TCP == "" && c.UDP == "" && c.TLS == "":
		return errors.New("--tcp and --udp are both empty: nothing to listen on")
	case c.MaxMessage < 1 || c.MaxMessage > 1<<20:
		return fmt.Errorf("--max-message %d: want 1 to 1048576 bytes", c.MaxMessage)
	case c.IdleTimeout <= 0:
		return errors.New("--idle-timeout must be positive")
	case c.MaxConns < 1:
		return errors.New("--max-conns must be at least 1")
	case c.MaxConnsPerIP < 1:
		return errors.New("--max-conns-per-ip must be at least 1")
	case c.CommitInterval <= 0 || c.CommitInterval > time.Second:
		return fmt.Errorf("--commit-interval %s: want more than 0 and at most 1s", c.CommitInterval)
	case c.UDPBuffer < 0:
		return errors.New("--udp-buffer must not be negative")
	case c.TLSIdleTimeout <= 0:
		return errors.New("--tls-idle-timeout must be positive")
	case c.Limits.LineTimeout <= 0 || c.Limits.FirstLineTimeout <= 0:
		return errors.New("--line-timeout and --first-line-timeout must be positive")
	case c.Limits.ConnRate < 0 || c.Limits.MsgRate < 0 || c.Limits.ConnBurst < 0 || c.Limits.MsgBurst < 0:
		return errors.New("--max-conn-rate, --max-msg-rate and their bursts must not be negative (0: no limit, or for a burst twice the rate)")
	case c.MaxDBSize > 0 && postgres.IsURL(c.DB):
		return errors.New("--max-db-size bounds a SQLite file; with PostgreSQL use --retain (docs/scale.md)")
	case c.RetainRollups > 0 && c.Retain > 0 && c.RetainRollups < c.Retain:
		return fmt.Errorf("--retain-rollups %s is shorter than --retain %s: long-range charts would lose what the messages still hold", c.RetainRollups, c.Retain)
	}
	if c.TLS != "" {
		var missing []string
		if c.TLSCert == "" {
			missing = append(missing, "--tls-cert")
		}
		if c.TLSKey == "" {
			missing = append(missing, "--tls-key")
		}
		if len(missing) > 0 {
			return fmt.Errorf("--tls %s needs %s: make a certificate with `inlet cert --dir DIR --host NAME[,IP...]` "+
				"and pass --tls-cert DIR/inlet.crt --tls-key DIR/inlet.key (docs/security.md)", c.TLS, strings.Join(missing, " and "))
		}
	} else if c.TLSCert != "" || c.TLSKey != "" {
		return errors.New("--tls-cert and --tls-key need --tls ADDR (the TLS port, e.g. --tls :3443)")
	}
	if c.Publish != "" {
		if _, err := publish.ParseURLs(c.Publish); err != nil {
			return fmt.Errorf("--publish: %w", err)
		}
		if c.PublishName == "" {
			return errors.New("--publish-name must not be empty")
		}
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		return err
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return fmt.Errorf("--log-format %q: want text or json", c.LogFormat)
	}
	if err := c.validateHTTPS(); err != nil {
		return err
	}
	if c.HTTP != "" && c.HTTPToken == "" && !isLoopback(c.HTTP) {
		return fmt.Errorf("--http %s is not a loopback address: set --http-token (or INLET_HTTP_TOKEN) "+
			"so the dashboard and API are not open to everyone on the network, or bind --http 127.0.0.1:PORT", c.HTTP)
	}
	return nil
}

// parseAllow parses --allow: CIDRs or single addresses, comma-separated. An
// IPv4-mapped IPv6 prefix is taken as the IPv4 one (peers are compared as IPv4).
func parseAllow(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		var p netip.Prefix
		var err error
		if strings.Contains(f, "/") {
			p, err = netip.ParsePrefix(f)
		} else {
			var a netip.Addr
			if a, err = netip.ParseAddr(f); err == nil {
				p = netip.PrefixFrom(a, a.BitLen())
			}
		}
		if err != nil {
			return nil, fmt.Errorf("%q: want a network such as 192.168.1.0/24 or an address such as 10.0.0.7", f)
		}
		if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		out = append(out, p.Masked())
	}
	if len(out) == 0 {
		return nil, errors.New("no network given (omit --allow to take traffic from everyone)")
	}
	return out, nil
}

// isLoopback reports whether a listen address binds only the loopback
// interface. An empty host (":8080") binds every interface.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	if i := strings.IndexByte(host, '%'); i >= 0 {
		host = host[:i]
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("--log-level %q: want debug, info, warn or error", s)
	}
	return l, nil
}

func newLogger(c *Config, w io.Writer) *slog.Logger {
	level, _ := parseLevel(c.LogLevel)
	opts := &slog.HandlerOptions{Level: level}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := DefaultConfig()
	fs := newFlags("serve", "Receive device messages on TCP and UDP and store them durably in SQLite.\n"+
		"Prints one JSON line {\"event\":\"ready\",...} on stdout with the bound addresses once it is serving.\n"+
		"Stops cleanly on SIGINT/SIGTERM (everything already received is stored); a second signal exits at once.", stderr)
	fs.StringVar(&cfg.TCP, "tcp", cfg.TCP, "TCP listen address; empty disables TCP, port 0 picks a free port")
	fs.StringVar(&cfg.UDP, "udp", cfg.UDP, "UDP listen address; empty disables UDP, port 0 picks a free port")
	fs.StringVar(&cfg.HTTP, "http", cfg.HTTP, "HTTP address of the dashboard, the API, /metrics and the probes; empty disables HTTP.\n"+
		"A non-loopback address needs --http-token")
	fs.StringVar(&cfg.HTTPToken, "http-token", "", "require this token for the dashboard, the API and /metrics (Bearer header or sign-in);\n"+
		"/healthz and /readyz stay open (default: $INLET_HTTP_TOKEN)")
	fs.StringVar(&cfg.DB, "db", cfg.DB, "SQLite database file (created if missing), or a PostgreSQL database postgres://…\n"+
		"that several nodes may share (docs/scale.md)")
	fs.IntVar(&cfg.MaxMessage, "max-message", cfg.MaxMessage, "longest message in bytes; longer ones are discarded and counted as too_long")
	fs.DurationVar(&cfg.IdleTimeout, "idle-timeout", cfg.IdleTimeout, "close a TCP connection that sends nothing for this long")
	fs.IntVar(&cfg.MaxConns, "max-conns", cfg.MaxConns, "most TCP connections open at once; more are refused")
	fs.IntVar(&cfg.MaxConnsPerIP, "max-conns-per-ip", cfg.MaxConnsPerIP, "most TCP connections open at once from one IP address")
	fs.DurationVar(&cfg.CommitInterval, "commit-interval", cfg.CommitInterval, "group commit of batches holding an acknowledged message: under sustained traffic such a batch gathers for up to this long\n"+
		"(an isolated acknowledged message commits at once); plain-only batches gather for up to 500 ms (docs/reliability.md)")
	fs.IntVar(&cfg.UDPBuffer, "udp-buffer", cfg.UDPBuffer, "UDP socket receive buffer in bytes (absorbs bursts while the writer catches up)")
	fs.StringVar(&cfg.LogLevel, "log-level", cfg.LogLevel, "debug, info, warn or error")
	fs.StringVar(&cfg.LogFormat, "log-format", cfg.LogFormat, "text or json (logs go to stderr)")
	fs.StringVar(&cfg.Token, "token", "", "acknowledged mode: require this token in every hello (default: $INLET_TOKEN; empty: no token needed)")
	fs.Func("retain", "delete messages older than this (e.g. 90d, 2w, 36h), every 10 minutes, off the commit path;\n"+
		"the devices' accounting is kept (docs/operations.md) (default: keep everything)", func(s string) error {
		d, err := parseRetain(s)
		cfg.Retain = d
		return err
	})
	fs.Func("retain-rollups", "delete the per-minute and per-hour rollups behind long-range charts older than this (e.g. 730d),\n"+
		"with --retain's job; at least --retain (default: keep them forever)", func(s string) error {
		d, err := parseRetain(s)
		cfg.RetainRollups = d
		return err
	})
	fs.StringVar(&cfg.TLS, "tls", cfg.TLS, "TLS listen address for the TCP port's protocols inside TLS (e.g. :3443); empty disables TLS.\n"+
		"Needs --tls-cert and --tls-key (make them with inlet cert); SIGHUP reloads them (docs/security.md)")
	fs.StringVar(&cfg.TLSCert, "tls-cert", cfg.TLSCert, "PEM certificate (chain) file of the TLS listener")
	fs.StringVar(&cfg.TLSKey, "tls-key", cfg.TLSKey, "PEM private key file of the TLS listener")
	fs.DurationVar(&cfg.TLSIdleTimeout, "tls-idle-timeout", cfg.TLSIdleTimeout, "close a TLS connection that sends nothing for this long\n"+
		"(a TLS device keeps one connection per boot: a handshake takes seconds on an ESP8266)")
	fs.Func("allow", "take TCP, TLS and UDP traffic only from these networks, comma-separated CIDRs or addresses\n"+
		"(e.g. 192.168.1.0/24,10.0.0.7); anything else is dropped unread and counted as not_allowed (default: everyone)", func(s string) error {
		p, err := parseAllow(s)
		cfg.Allow = append(cfg.Allow, p...)
		return err
	})
	// Abuse limits (docs/security.md, Limits).
	fs.DurationVar(&cfg.Limits.LineTimeout, "line-timeout", cfg.Limits.LineTimeout, "close a TCP or TLS connection whose line is not complete this long after its first byte")
	fs.DurationVar(&cfg.Limits.FirstLineTimeout, "first-line-timeout", cfg.Limits.FirstLineTimeout, "close a TCP or TLS connection that has not completed a line this long after it was accepted (TLS handshake included)")
	fs.Float64Var(&cfg.Limits.ConnRate, "max-conn-rate", cfg.Limits.ConnRate, "new TCP or TLS connections per second one IP address (IPv6: one /64) may open; more are closed at once (0: no limit)")
	fs.IntVar(&cfg.Limits.ConnBurst, "max-conn-burst", cfg.Limits.ConnBurst, "new connections one address may open at once above --max-conn-rate (0: twice the rate)")
	fs.Float64Var(&cfg.Limits.MsgRate, "max-msg-rate", cfg.Limits.MsgRate, "messages per second one device (plain: its IP address; INLET/1: its id) may send; more are dropped (0: no limit)")
	fs.IntVar(&cfg.Limits.MsgBurst, "max-msg-burst", cfg.Limits.MsgBurst, "messages one device may send at once above --max-msg-rate (0: twice the rate)")
	addHTTPSFlags(fs, &cfg)
	addMaxDBSizeFlag(fs, &cfg)
	fs.BoolVar(&cfg.RequireToken, "require-token", false, "acknowledged mode: every hello must carry its device's own token (inlet token add DEVICE);\n"+
		"with --token too, a device without a token of its own may use the shared one (docs/security.md)")
	fs.Func("max-failed-hellos", fmt.Sprintf("refused hellos per minute from one IP (IPv6: one /64) before its hellos are refused unchecked (default %d)",
		listen.DefaultMaxFailedHellos), func(s string) error {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return errors.New("want a number of hellos, at least 1")
		}
		cfg.MaxFailedHellos = n
		return nil
	})
	fs.StringVar(&cfg.Publish, "publish", "", "publish every committed message to NATS JetStream at these servers, nats://host:port[,...] (tls:// for TLS):\n"+
		"its export record as JSON on subject inlet.msg.<device>, de-duplicated by Nats-Msg-Id, from a position kept in the\n"+
		"database; needs a stream for inlet.msg.> (docs/scale.md) (default: $INLET_PUBLISH; empty: no publishing)")
	fs.StringVar(&cfg.PublishName, "publish-name", cfg.PublishName, "the name --publish keeps its position under in the database (nodes sharing a database share it, or use one each)")
	fs.BoolVar(&cfg.Pprof, "pprof", cfg.Pprof, "serve Go's profiler at /debug/pprof/ on the HTTP address (for performance work)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	envDefault(fs, "http-token", "INLET_HTTP_TOKEN")
	envDefault(fs, "token", "INLET_TOKEN")
	envDefault(fs, "publish", "INLET_PUBLISH") // may hold credentials
	if err := cfg.Validate(); err != nil {
		return badUsage(err)
	}
	logger := newLogger(&cfg, stderr)

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	m := NewMain(cfg, logger)
	if err := m.Run(ctx); err != nil {
		return err
	}
	if m.tlsSrv != nil || m.httpTLS != nil {
		// SIGHUP reloads the certificates; without TLS it keeps its default.
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		go func() {
			for {
				select {
				case <-hup:
					m.ReloadTLS()
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	ready, _ := json.Marshal(m.ReadyInfo())
	fmt.Fprintf(stdout, "%s\n", ready)
	<-ctx.Done()
	stop()
	// A second signal exits at once.
	again := make(chan os.Signal, 1)
	signal.Notify(again, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-again
		logger.Error("second signal: exiting without finishing")
		os.Exit(1)
	}()
	logger.Info("shutting down")
	closeCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := m.Close(closeCtx); err != nil {
		return errReported // Close logged it
	}
	return nil
}

// Main is one running server: the binary and the tests share it.
type Main struct {
	Config Config
	Logger *slog.Logger
	Stats  *inlet.Stats

	store         serveStore
	hub           *live.Hub
	stopHub       context.CancelFunc
	writer        *commit.Writer
	pub           *publish.Publisher // --publish
	tcp           *listen.TCP
	tls           *listen.TCP // the TCP port's protocols inside TLS (--tls)
	tlsSrv        *tlsserve.Server
	httpTLS       *tlsserve.Server // the HTTPS certificate (--http-tls-cert)
	udp           *listen.UDP
	http          *http.Server
	httpLn        net.Listener
	sink          lateSink
	serving       bool
	stopRetention func()
	hosts         []hostAddr // this machine's addresses devices on the network may reach
	closed        bool

	auth     *listen.Auth       // the hellos' token check (token.go)
	tokens   storeTokens        // the store as auth's source (--require-token)
	stopAuth context.CancelFunc // ends auth's reloads
}

// NewMain returns a server for cfg; Run starts it.
func NewMain(cfg Config, logger *slog.Logger) *Main {
	return &Main{Config: cfg, Logger: logger, Stats: new(inlet.Stats)}
}

// Run binds every listener, opens the store and starts serving. It returns once
// the server is ready; on error everything it opened is closed again, and a
// database it created is removed. The listeners are bound first: a port in use
// is the likeliest mistake, and it must not leave a new inlet.db behind.
func (m *Main) Run(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			m.shutdown(context.Background())
		}
	}()
	cfg := &m.Config
	lc := listen.Config{
		MaxMessage:    cfg.MaxMessage,
		IdleTimeout:   cfg.IdleTimeout,
		MaxConns:      cfg.MaxConns,
		MaxConnsPerIP: cfg.MaxConnsPerIP,
		UDPBuffer:     cfg.UDPBuffer,
		Token:         cfg.Token,
		Auth:          m.newAuth(),
		Allow:         cfg.Allow,
		Limits:        cfg.Limits,
		Logger:        m.Logger,
		Stats:         m.Stats,
	}
	if cfg.TCP != "" {
		if m.tcp, err = listen.ListenTCP(cfg.TCP, &m.sink, lc); err != nil {
			return listenError("TCP", "--tcp", cfg.TCP, err)
		}
	}
	if cfg.TLS != "" {
		if m.tlsSrv, err = tlsserve.Load(cfg.TLSCert, cfg.TLSKey); err != nil {
			return fmt.Errorf("--tls-cert/--tls-key: %w", err)
		}
		tc := lc
		tc.IdleTimeout = cfg.TLSIdleTimeout
		if m.tls, err = listen.ListenTLS(cfg.TLS, m.tlsSrv, &m.sink, tc); err != nil {
			return listenError("TLS", "--tls", cfg.TLS, err)
		}
		m.logCert("tls: certificate loaded", m.tlsSrv.Info())
	}
	if cfg.UDP != "" {
		if m.udp, err = listen.ListenUDP(cfg.UDP, &m.sink, lc); err != nil {
			return listenError("UDP", "--udp", cfg.UDP, err)
		}
		if cfg.UDPBuffer > 0 && m.udp.RecvBuffer < cfg.UDPBuffer {
			m.Logger.Warn("udp: receive buffer smaller than asked; raise net.core.rmem_max or run with CAP_NET_ADMIN",
				"asked", cfg.UDPBuffer, "granted", m.udp.RecvBuffer)
		}
	}
	if cfg.HTTP != "" {
		if m.httpLn, err = net.Listen("tcp", cfg.HTTP); err != nil {
			return listenError("HTTP", "--http", cfg.HTTP, err)
		}
		if err = m.loadHTTPTLS(); err != nil {
			return err
		}
	}
	if m.store, err = openServeStore(ctx, cfg.DB, m.Logger); err != nil {
		return err
	}
	if err := m.startAuth(ctx); err != nil {
		return err
	}
	if m.hub, err = live.New(ctx, m.store); err != nil {
		return err
	}
	hubCtx, stopHub := context.WithCancel(context.Background())
	m.stopHub = stopHub
	go m.hub.Run(hubCtx)
	go m.followNodes(hubCtx) // other nodes' commits, on a shared database
	onCommit := m.hub.OnCommit
	if cfg.Publish != "" {
		pc := publish.DefaultConfig()
		pc.URLs, pc.Name, pc.Logger, pc.Stats = cfg.Publish, cfg.PublishName, m.Logger, m.Stats
		pos, ok := m.store.(publish.Positions)
		if !ok {
			return errors.New("--publish: this store keeps no publish position")
		}
		if m.pub, err = publish.New(ctx, pc, m.store, pos); err != nil {
			return err
		}
		onCommit = func(b *inlet.Batch) { m.hub.OnCommit(b); m.pub.Notify() }
	}
	m.writer, err = commit.New(ctx, m.store, commit.Config{
		Interval: cfg.CommitInterval,
		Logger:   m.Logger,
		Stats:    m.Stats,
		OnCommit: onCommit,
	})
	if err != nil {
		return err
	}
	m.sink.w = m.writer
	m.serve()
	if cfg.Retain > 0 || cfg.MaxDBSize > 0 || cfg.RetainRollups > 0 {
		m.stopRetention = m.startRetention()
	}
	m.hosts = reachableHosts()
	if m.httpLn != nil {
		stopStreams := make(chan struct{})
		hc := httpapi.Config{
			Stats:   m.Stats,
			Ready:   m.Ready,
			Reader:  m.store,
			Hub:     m.hub,
			UI:      ui.Files,
			Token:   cfg.HTTPToken,
			Logger:  m.Logger,
			Version: version(),
			Listen:  map[string]string{},
			Hosts:   m.hostIPs(),
			Stop:    stopStreams,
		}
		if m.tcp != nil {
			hc.Listen["tcp"] = m.tcp.Addr().String()
		}
		if m.udp != nil {
			hc.Listen["udp"] = m.udp.Addr().String()
		}
		if m.tls != nil {
			hc.Listen["tls"] = m.tls.Addr().String()
		}
		if cfg.Pprof {
			mux := http.NewServeMux()
			mux.HandleFunc("/debug/pprof/", pprof.Index)
			mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
			mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
			mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
			hc.Extra = mux
		}
		m.http = &http.Server{
			Handler:           httpapi.Handler(hc),
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       2 * time.Minute,
			ErrorLog:          slog.NewLogLogger(m.Logger.Handler(), slog.LevelWarn),
		}
		m.http.RegisterOnShutdown(func() { close(stopStreams) }) // streams never go idle by themselves
		m.serveHTTP()
	}
	ri := m.ReadyInfo()
	if len(cfg.Allow) > 0 {
		m.Logger.Info("only these networks may send (--allow)", "allow", cfg.Allow)
	}
	m.Logger.Info("ready", "tcp", ri.TCP, "udp", ri.UDP, "tls", ri.TLS, "http", ri.HTTP, "db", dbName(cfg.DB), "version", ri.Version)
	m.logReach(ri)
	return nil
}

// serve starts the listeners' loops, once.
func (m *Main) serve() {
	if m.serving {
		return
	}
	m.serving = true
	if m.tcp != nil {
		go m.tcp.Serve()
	}
	if m.tls != nil {
		go m.tls.Serve()
	}
	if m.udp != nil {
		go m.udp.Serve()
	}
}

// ReloadTLS reads the certificate and key files of the TLS listener and of
// HTTPS again (SIGHUP): new handshakes use the new certificate, connections
// already open keep going. On error the certificate in use stays, and the error
// is logged.
func (m *Main) ReloadTLS() {
	m.reloadHTTPTLS()
	if m.tlsSrv == nil {
		return
	}
	info, err := m.tlsSrv.Reload()
	if err != nil {
		m.Logger.Error("tls: certificate not reloaded; keeping the one in use", "err", err,
			"sha1", m.tlsSrv.Info().SHA1)
		return
	}
	m.logCert("tls: certificate reloaded", info)
}

// logCert logs the certificate the TLS listener uses, and warns when its chain
// is too large for a device's small receive buffer.
func (m *Main) logCert(msg string, info tlsserve.CertInfo) {
	m.Logger.Info(msg, "subject", info.Subject, "key", info.KeyType, "sha1", info.SHA1,
		"not_after", info.NotAfter.UTC().Format(time.RFC3339))
	if !info.FitsSmallRecords {
		m.Logger.Warn("tls: certificate chain too large for a 2 KiB device receive buffer (use one ECDSA P-256 certificate, as inlet cert makes)",
			"chain_bytes", info.ChainBytes)
	}
	if time.Until(info.NotAfter) < 0 {
		m.Logger.Warn("tls: certificate has expired; devices that check dates (setTrustAnchors) will refuse it", "not_after", info.NotAfter)
	}
}

// Ready reports whether the server takes messages: the last commit succeeded,
// and the store is not stuck or lost (/readyz).
func (m *Main) Ready() bool {
	return m.Stats.StoreHealthy.Load() && m.store != nil && m.store.Ready()
}

// lateSink lets the listeners be bound before the writer exists; it is set
// before they serve. Without a writer (a Run that failed after binding) it
// refuses everything, as a closing writer does.
type lateSink struct{ w listen.Sink }

func (s *lateSink) Submit(ctx context.Context, msgs []inlet.Message) error {
	if s.w == nil {
		return inlet.ErrClosed
	}
	return s.w.Submit(ctx, msgs)
}

func (s *lateSink) TrySubmit(msgs []inlet.Message) (bool, error) {
	if s.w == nil {
		return false, inlet.ErrClosed
	}
	return s.w.TrySubmit(msgs)
}

func (s *lateSink) Durable(device, boot string) int64 {
	if s.w == nil {
		return 0
	}
	return s.w.Durable(device, boot)
}

func (s *lateSink) KnownDurable(device, boot string) (int64, bool) {
	if s.w == nil {
		return 0, true
	}
	return s.w.KnownDurable(device, boot)
}

// listenError says which listener could not bind and what to do about it,
// without repeating the "listen tcp" of the net package's error.
func listenError(what, flag, addr string, err error) error {
	var op *net.OpError
	cause := err
	if errors.As(err, &op) && op.Err != nil {
		cause = op.Err
		var sys *os.SyscallError
		if errors.As(cause, &sys) {
			cause = sys.Err
		}
	}
	hint := ""
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		hint = fmt.Sprintf(": another program (perhaps another inlet serve) has that port; stop it, or pick another port with %s %s",
			flag, otherPort(addr, what))
	case errors.Is(err, syscall.EACCES):
		hint = fmt.Sprintf(": ports below 1024 need root or CAP_NET_BIND_SERVICE; pick another with %s %s", flag, otherPort(addr, what))
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		hint = fmt.Sprintf(": no interface of this machine has that address; use %s :%s to listen on all of them", flag, portOf(addr))
	}
	return fmt.Errorf("cannot listen for %s on %s: %w%s", what, addr, cause, hint)
}

func portOf(addr string) string {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "PORT"
	}
	return port
}

// otherPort suggests a neighbouring port: +2 for the device ports, which come
// in a pair (3000/3001 → 3002/3003), +1 for HTTP.
func otherPort(addr, what string) string {
	host, port, err := net.SplitHostPort(addr)
	n, err2 := strconv.Atoi(port)
	if err != nil || err2 != nil || n == 0 {
		return "HOST:PORT"
	}
	step := 2
	if what == "HTTP" {
		step = 1
	}
	return net.JoinHostPort(host, strconv.Itoa(n+step))
}

// ReadyInfo is the JSON line inlet serve prints on stdout once it serves.
type ReadyInfo struct {
	Event     string   `json:"event"`
	TCP       string   `json:"tcp,omitempty"`
	UDP       string   `json:"udp,omitempty"`
	TLS       string   `json:"tls,omitempty"`
	HTTP      string   `json:"http,omitempty"`
	DB        string   `json:"db"`
	Version   string   `json:"version"`
	Dashboard string   `json:"dashboard,omitempty"` // the dashboard's URL for a browser on this machine
	Hosts     []string `json:"hosts,omitempty"`     // this machine's addresses devices on the network can reach
}

// ReadyInfo returns the bound addresses.
func (m *Main) ReadyInfo() ReadyInfo {
	ri := m.boundInfo()
	ri.Hosts = m.hostIPs()
	return ri
}

// boundInfo is ReadyInfo without the hosts.
func (m *Main) boundInfo() ReadyInfo {
	ri := ReadyInfo{Event: "ready", DB: dbName(m.Config.DB), Version: version()}
	if m.tcp != nil {
		ri.TCP = m.tcp.Addr().String()
	}
	if m.udp != nil {
		ri.UDP = m.udp.Addr().String()
	}
	if m.tls != nil {
		ri.TLS = m.tls.Addr().String()
	}
	if m.httpLn != nil {
		ri.HTTP = m.httpLn.Addr().String()
		ri.Dashboard = dashboardURL(ri.HTTP)
		if m.httpTLS != nil {
			ri.Dashboard = "https://" + strings.TrimPrefix(ri.Dashboard, "http://")
		}
	}
	return ri
}

// Close shuts down in stages: listeners stop and drain what clients already sent,
// the writer commits everything queued, HTTP stops, the store closes. It is safe
// to call twice. An incomplete shutdown is logged, and returned.
func (m *Main) Close(ctx context.Context) error {
	if m.closed {
		return nil
	}
	err := m.shutdown(ctx)
	if err != nil {
		m.Logger.Error("shutdown incomplete", "err", err)
	} else {
		m.Logger.Info("stopped", "received", m.Stats.MessagesTCP.Load()+m.Stats.MessagesUDP.Load(),
			"committed", m.Stats.Committed.Load(), "duplicates", m.Stats.Duplicates.Load())
	}
	return err
}

// shutdown is Close without its closing log line (a Run that fails undoes its
// work through it quietly: nothing was started, so nothing "stopped").
func (m *Main) shutdown(ctx context.Context) error {
	if m.closed {
		return nil
	}
	m.closed = true
	m.serve() // a listener's Close waits for its loop, even if Run failed before it started
	var errs []error
	if m.tcp != nil {
		errs = append(errs, m.tcp.Close(ctx))
	}
	if m.tls != nil {
		errs = append(errs, m.tls.Close(ctx))
	}
	if m.udp != nil {
		errs = append(errs, m.udp.Close(ctx))
	}
	if m.writer != nil {
		errs = append(errs, m.writer.Close(ctx))
	}
	if m.tcp != nil {
		errs = append(errs, m.tcp.WaitAcks(ctx)) // the last ACKs, after the final commit
	}
	if m.tls != nil {
		errs = append(errs, m.tls.WaitAcks(ctx))
	}
	if m.udp != nil {
		m.udp.Release() // after the final commit, whose UDP ACKs needed the socket
	}
	if m.http != nil {
		// Streams end at once (RegisterOnShutdown); an export to a client that
		// stopped reading would hold Shutdown until its write deadline, so
		// after a moment the rest is cut.
		hctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		if err := m.http.Shutdown(hctx); err != nil {
			m.Logger.Warn("http: requests still open at shutdown; closing them", "err", err)
			m.http.Close()
		}
		cancel()
	} else if m.httpLn != nil {
		m.httpLn.Close()
	}
	if m.stopHub != nil {
		m.stopHub()
	}
	if m.stopRetention != nil {
		m.stopRetention()
	}
	if m.stopAuth != nil {
		m.stopAuth()
	}
	if m.pub != nil {
		// After the last commit: publishes what is committed, for a bounded
		// time (what is left goes out at the next start), then saves the position.
		errs = append(errs, m.pub.Close(ctx))
	}
	if m.store != nil {
		errs = append(errs, m.store.Close())
	}
	return joinDistinct(errs)
}

// joinDistinct joins errs, leaving out repeats and a bare error that another one
// already wraps (the context's deadline, which several stages report when it
// ends).
func joinDistinct(errs []error) error {
	var out []error
	for i, e := range errs {
		if e == nil || slices.Contains(out, e) {
			continue
		}
		dup := false
		for j, o := range errs {
			if j != i && o != nil && o != e && errors.Is(o, e) {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, e)
		}
	}
	return errors.Join(out...)
}
