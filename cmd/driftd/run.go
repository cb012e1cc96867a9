package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/driftd/driftd/chdb"
	"github.com/driftd/driftd/config"
	"github.com/driftd/driftd/consumers"
	"github.com/driftd/driftd/detectors"
	"github.com/driftd/driftd/internal/retry"
	"github.com/driftd/driftd/internal/webguard"
	"github.com/driftd/driftd/pipeline"
	"github.com/driftd/driftd/report"
	"github.com/driftd/driftd/schemas"
	"github.com/driftd/driftd/storage"
	"github.com/driftd/driftd/telemetry"
)

// openStore connects to ClickHouse, first starting the embedded engine if configured.
// The returned func stops the engine.
func openStore(ctx context.Context, cfg config.Config, log *slog.Logger) (*storage.Store, func(), error) {
	ch := cfg.ClickHouse
	opts := storage.Options{Addr: ch.Addr, Protocol: ch.Protocol, Database: ch.Database, Username: ch.Username,
		Password: ch.Password.Reveal(), MaxBatchRows: ch.MaxBatchRows, Cluster: ch.Cluster, ReplicaPath: ch.ReplicaPath}
	if ch.TLS {
		var err error
		if opts.TLS, err = clientTLS(ch.TLSCAFile, "clickhouse.tls_ca_file", false); err != nil {
			return nil, nil, err
		}
	}
	stopEngine := func() {}
	if ch.Embedded.Enabled {
		ep, err := startEmbedded(ch.Embedded, ch.Username, ch.Password.Reveal(), log)
		if err != nil {
			return nil, nil, err
		}
		stopEngine = ep.stop
		// driftd reaches its own endpoint with credentials of its own, which no one else
		// holds (and with TLS when the endpoint serves it).
		opts.Addr, opts.Protocol, opts.TLS = ep.addr, storage.ProtocolHTTP, ep.tls
		opts.Username, opts.Password = ep.own.User, ep.own.Password
	}
	// A ClickHouse that starts beside driftd (docker compose) may take a while to answer;
	// past 30 s driftd gives up starting, whatever limits.max_outage says: a wrong address
	// or password should not keep a command waiting for minutes.
	startup := retry.Policy{Initial: time.Second, Max: 4 * time.Second, MaxOutage: 30 * time.Second}
	var st *storage.Store
	err := retry.Do(ctx, startup, "connect to clickhouse at "+opts.Addr, storage.ClassifyRead, func(a retry.Attempt) {
		if a.Wait > 0 {
			log.Warn("clickhouse not reachable yet; retrying", "addr", opts.Addr, "err", a.Err, "attempt", a.N, "in", a.Wait.Round(time.Millisecond))
		}
	}, func(ctx context.Context) (err error) {
		st, err = storage.Open(ctx, opts, log)
		return err
	})
	if err != nil {
		stopEngine()
		return nil, nil, err
	}
	return st, stopEngine, nil
}

// embeddedEndpoint is the running embedded engine and its HTTP endpoint.
type embeddedEndpoint struct {
	addr string
	tls  *tls.Config // for driftd's own connection; nil for plain HTTP
	own  chdb.Credentials
	stop func()
}

// startEmbedded loads libchdb.so, opens the engine and serves it on the configured
// address. driftd's own client gets credentials generated for this process: with them it
// writes and goes first on the engine; a configured password lets clients write too;
// everyone else reads.
func startEmbedded(e config.Embedded, user, password string, log *slog.Logger) (*embeddedEndpoint, error) {
	own, err := ownCredentials()
	if err != nil {
		return nil, err
	}
	var cert *tls.Certificate
	if e.TLSCertFile != "" {
		c, err := tls.LoadX509KeyPair(e.TLSCertFile, e.TLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("clickhouse.embedded.tls_cert_file: %w", err)
		}
		cert = &c
	}
	lib, err := chdb.FindLibrary(e.LibPath)
	if err != nil && e.LibPath == "" && os.Getenv(chdb.LibEnv) == "" {
		// First use: fetch the pinned engine once into the user's cache.
		log.Info("the ClickHouse engine (libchdb.so) is not here yet; fetching it once", "cache", chdb.DefaultCacheDir())
		lib, err = chdb.Fetch(context.Background(), chdb.DefaultCacheDir(), os.Stderr)
		if err != nil {
			return nil, fmt.Errorf("embedded ClickHouse: could not fetch the engine: %w; set %s to a libchdb.so (npm package %s@%s) or allow access to the npm registry", err, chdb.LibEnv, "@chdb/lib-linux-x64-gnu", chdb.PinnedVersion)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("embedded ClickHouse: %w", err)
	}
	eng, err := chdb.Open(lib, e.DataDir)
	if err != nil {
		return nil, fmt.Errorf("embedded ClickHouse: %w", err)
	}
	ln, err := net.Listen("tcp", e.Listen)
	if err != nil {
		eng.Close()
		return nil, fmt.Errorf("embedded ClickHouse: listen on %s: %w", e.Listen, err)
	}
	tmp, err := os.MkdirTemp("", "driftd-chdb-")
	if err != nil {
		eng.Close()
		ln.Close()
		return nil, err
	}
	handler := chdb.NewServer(eng, tmp, log)
	handler.Own = own
	handler.RemoteWrites = e.RemoteWrites
	if password != "" {
		handler.User, handler.Password = user, password
	}
	handler.AllowedHosts = e.AllowedHosts
	if host, _, err := net.SplitHostPort(e.Listen); err == nil && host != "" && net.ParseIP(host) == nil {
		handler.AllowedHosts = append(handler.AllowedHosts, host)
	}
	handler.MaxExecutionTime, handler.MaxMemoryUsage, handler.MaxBody = time.Duration(e.MaxExecutionTime), int64(e.MaxMemoryUsage), int64(e.MaxBodyBytes)
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	scheme, serve := "http", func() error { return srv.Serve(ln) }
	var ownTLS *tls.Config
	if cert != nil {
		srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{*cert}}
		scheme, serve = "https", func() error { return srv.ServeTLS(ln, "", "") }
		ownTLS = pinned(cert.Certificate[0])
	}
	go func() {
		if err := serve(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("embedded ClickHouse endpoint stopped", "err", err)
		}
	}()
	writers := "driftd only (set clickhouse.password to write as a client)"
	if password != "" {
		writers = "driftd and clients with clickhouse.password from this host"
		if e.RemoteWrites {
			writers = "driftd and clients with clickhouse.password"
		}
	}
	log.Info("embedded ClickHouse serving", "http", scheme+"://"+ln.Addr().String(), "data_dir", e.DataDir, "lib", lib, "writes", writers)
	return &embeddedEndpoint{addr: ln.Addr().String(), tls: ownTLS, own: own, stop: func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		eng.Close()
		os.RemoveAll(tmp)
	}}, nil
}

// ownCredentials are driftd's credentials for its own embedded endpoint, new in every
// process and never written anywhere.
func ownCredentials() (chdb.Credentials, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return chdb.Credentials{}, fmt.Errorf("embedded ClickHouse: generate driftd's own credentials: %w", err)
	}
	return chdb.Credentials{User: "driftd-internal", Password: hex.EncodeToString(b)}, nil
}

// hooks let the dev view watch the running pipeline.
type hooks struct {
	onFlush   func(pipeline.Stats)
	onVerdict func(detectors.Verdict, []*schemas.AlertEvent)
	onAlert   func(*schemas.AlertEvent)
	onPerf    func([]storage.PerformanceRow)
	// ready is called once the pipeline has restored its state and starts consuming,
	// with the address of the ClickHouse it writes to.
	ready func(clickhouseAddr string)
	// health is called with the address of the metrics and health endpoint.
	health func(addr string)
	// observe wraps the pipeline's observer (the metrics), so that driftd bench times the
	// pipeline from inside without a second code path.
	observe func(pipeline.Observer) pipeline.Observer
}

// clientTLS is the TLS of a client of Kafka or ClickHouse: TLS 1.2 or later, trusting the
// CAs in caFile (PEM; the configuration's field) or else the system's.
func clientTLS(caFile, field string, insecure bool) (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: insecure}
	if caFile == "" {
		return c, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", field, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s %s: no PEM certificate in it", field, caFile)
	}
	c.RootCAs = pool
	return c, nil
}

// pinned trusts exactly one certificate: driftd's connection to its own endpoint, whose
// certificate may name a host other than the loopback address it dials.
func pinned(leaf []byte) *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: true,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 || !bytes.Equal(raw[0], leaf) {
				return errors.New("the embedded endpoint presented another certificate than its own")
			}
			return nil
		}}
}

// kafkaOptions turns the configuration's brokers, TLS and SASL into client options.
func kafkaOptions(cfg config.Config) (consumers.Options, error) {
	o := consumers.Options{Brokers: cfg.Kafka.Brokers, Spread: cfg.Kafka.GroupMode.Spread(), MaxOutage: time.Duration(cfg.Limits.MaxOutage)}
	if o.MaxOutage > 0 {
		o.MaxOutage = max(o.MaxOutage, o.OutageFloor())
	}
	if t := cfg.Kafka.TLS; t.Enabled {
		var err error
		if o.TLS, err = clientTLS(t.CAFile, "kafka.tls.ca_file", t.InsecureSkipVerify); err != nil {
			return o, err
		}
	}
	s := cfg.Kafka.SASL
	m, err := consumers.SASLMechanism(s.Mechanism, s.Username, s.Password.Reveal())
	if err != nil {
		return o, fmt.Errorf("kafka.sasl: %w", err)
	}
	o.SASL = m
	return o, nil
}

// run is the main job: it returns when ctx ends (after writing what is closed) or on a
// fatal error.
func run(ctx context.Context, cfg config.Config, log *slog.Logger, h hooks) error {
	metrics := telemetry.NewMetrics()
	var connected atomic.Pointer[storage.Store]   // set once ClickHouse is reachable
	var member atomic.Pointer[consumers.Consumer] // set once in the consumer group
	var lastFlush atomic.Pointer[flushed]         // the last flush, for the overview page
	metrics.GroupLagFrom(func() (int64, bool) {
		if c := member.Load(); c != nil {
			if lag := c.Status().GroupLag; lag >= 0 {
				return lag, true
			}
		}
		return 0, false
	})
	metrics.UnreadableFrom(func() (int64, bool) {
		if c := member.Load(); c != nil {
			failing, known := c.Failing(time.Now())
			return int64(len(failing)), known
		}
		return 0, false
	})
	metrics.SupplementsFrom(func() (int64, bool) {
		if f := lastFlush.Load(); f != nil {
			return int64(f.stats.Supplements), true
		}
		return 0, false
	})
	metrics.PausedFrom(func() (int64, bool) {
		if c := member.Load(); c != nil {
			return int64(c.Paused()), true
		}
		return 0, false
	})
	if cfg.HTTP.Listen != "" {
		addr, err := telemetry.Serve(ctx, cfg.HTTP.Listen, metrics, func(ctx context.Context) (string, error) {
			st := connected.Load()
			if st == nil {
				return "", errors.New("clickhouse not connected yet")
			}
			if err := st.Ready(ctx); err != nil {
				return "", err
			}
			c := member.Load()
			if c == nil {
				return "", errors.New("not in the consumer group yet")
			}
			return c.Status().Ready()
		}, webguard.Hosts(webguard.Password(report.Handler(func() (report.Querier, string, bool) {
			st := connected.Load()
			if st == nil {
				return nil, "", false
			}
			return st.Conn(), st.Database(), true
		}, func() report.Health {
			return health(cfg.Kafka.GroupID, member.Load(), lastFlush.Load(), metrics)
		}, time.Now, log), cfg.HTTP.Username, cfg.HTTP.Password.Reveal(), "http.password"), pageHosts(cfg.HTTP), "http.allowed_hosts"), log)
		if err != nil {
			return fmt.Errorf("http.listen %s: %w", cfg.HTTP.Listen, err)
		}
		log.Info("health and metrics endpoint, and the models' pages", "url", "http://"+addr+"/", "metrics", "http://"+addr+"/metrics")
		if h.health != nil {
			h.health(addr)
		}
	}
	st, stopEngine, err := openStore(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer stopEngine()
	defer st.Close()
	connected.Store(st)
	applied, err := st.Migrate(ctx, cfg.ClickHouse.RetentionDays)
	if err != nil {
		return err
	}
	if len(applied) > 0 {
		log.Info("migrations applied", "migrations", applied)
	}

	pinned := map[uint32]string{}
	for name, id := range cfg.Kafka.SchemaRegistry.BundledIDs {
		pinned[id] = name
	}
	reg, err := schemas.NewRegistry(cfg.Kafka.SchemaRegistry.URL, pinned, nil)
	if err != nil {
		return err
	}
	format, pipelineFormat := cfg.Kafka.Formats.Predictions, cfg.Kafka.Formats.Pipeline

	topics := []string{cfg.Kafka.Topics.Predictions}
	if cfg.Kafka.Topics.Pipeline != "" {
		topics = append(topics, cfg.Kafka.Topics.Pipeline)
	}
	if cfg.Kafka.Topics.Labels != "" {
		topics = append(topics, cfg.Kafka.Topics.Labels)
	}
	ko, err := kafkaOptions(cfg)
	if err != nil {
		return err
	}
	ko.GroupID, ko.Topics = cfg.Kafka.GroupID, topics
	if cfg.Kafka.Topics.Pipeline != "" {
		ko.OneReader = []string{cfg.Kafka.Topics.Pipeline} // its stages are judged whole (pipeline/upstream.go)
	}
	c, err := consumers.NewConsumer(ko, log)
	if err != nil {
		return err
	}
	defer c.Close()
	member.Store(c)
	dlq := consumers.NewDeadLetter(ko, cfg.Kafka.Topics.DLQ)
	defer dlq.Close()
	aw := consumers.NewWriter(ko, cfg.Kafka.Topics.Alerts)
	defer aw.Close()
	pub := pipeline.NewAlertPublisher(aw, nil, 0)
	if cfg.Kafka.AlertFormat == schemas.FormatAvro {
		id := cfg.Kafka.SchemaRegistry.BundledIDs["alert"]
		codec, err := reg.Codec(ctx, id)
		if err != nil {
			return fmt.Errorf("alert schema: %w", err)
		}
		pub = pipeline.NewAlertPublisher(aw, codec, id)
	}

	set := pipeline.SettingsFromConfig(cfg, schemas.Decoder{Format: format, Registry: reg}, schemas.Decoder{Format: pipelineFormat, Registry: reg})
	set.Observer = metrics
	if h.observe != nil {
		set.Observer = h.observe(metrics)
	}
	var store pipeline.Store = st
	if set.Spread {
		store = st.ForSpreadGroup()
	}
	r := pipeline.New(set, c, dlq, pub, store, log, time.Now)
	r.OnFlush(func(s pipeline.Stats) {
		lastFlush.Store(&flushed{at: time.Now(), stats: s})
		if h.onFlush != nil {
			h.onFlush(s)
		}
	})
	if h.onVerdict != nil {
		r.OnVerdict(h.onVerdict)
	}
	if h.onAlert != nil {
		r.OnAlert(h.onAlert)
	}
	if h.onPerf != nil {
		r.OnPerformance(h.onPerf)
	}
	if err := r.Restore(ctx); err != nil {
		return err
	}
	if h.ready != nil {
		h.ready(st.Addr())
	}
	log.Info("driftd running", "brokers", cfg.Kafka.Brokers, "topic", cfg.Kafka.Topics.Predictions, "group", cfg.Kafka.GroupID,
		"alerts", cfg.Kafka.Topics.Alerts, "database", cfg.ClickHouse.Database)
	err = r.Run(ctx)
	if errors.Is(err, context.Canceled) {
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		switch serr := r.Shutdown(shutdownCtx); {
		case errors.Is(serr, pipeline.ErrFlushCut):
			log.Warn("no shutdown flush: the stop came while a flush waited half-way", "err", serr)
		case serr != nil && !errors.Is(serr, context.Canceled):
			log.Error("shutdown flush failed", "err", serr)
		}
	} else {
		// A dependency stayed down (limits.max_outage) or refused for good what cannot be
		// skipped: exit now, committing nothing more, so that a standby (or a restart)
		// takes over from the committed offsets.
		log.Error("driftd gives up; exiting so that a standby takes over", "err", err)
	}
	log.Info("driftd stopped", "records", r.Stats().Records, "windows", r.Stats().WindowsClosed, "alerts", r.Stats().AlertsEmitted)
	return err
}

// flushed is when the pipeline last flushed and its counters then.
type flushed struct {
	at    time.Time
	stats pipeline.Stats
}

// health is what the overview page says of driftd itself: its membership (c nil: not in
// the group yet), lag and last flush (f nil: none yet).
func health(group string, c *consumers.Consumer, f *flushed, m *telemetry.Metrics) report.Health {
	h := report.Health{Group: group, Lag: m.ConsumerLag(), GroupAssigned: -1, Members: -1, Partitions: -1, GroupLag: -1}
	if c != nil {
		st := c.Status()
		h.Joined, h.Assigned, h.GroupAssigned, h.Members, h.Partitions = st.Joined, st.Assigned, st.GroupAssigned, st.Members, st.Partitions
		h.GroupLag = st.GroupLag
		if st.LagErr != nil {
			h.LagErr = st.LagErr.Error()
		}
		if st.Err != nil {
			h.Err = st.Err.Error()
		}
	}
	if f != nil {
		h.LastFlush, h.Records = f.at, f.stats.Records
	}
	return h
}

// pageHosts are the names the pages answer to besides addresses and localhost:
// http.allowed_hosts and the listen host when it is a name.
func pageHosts(h config.HTTP) []string {
	hosts := append([]string(nil), h.AllowedHosts...)
	if host, _, err := net.SplitHostPort(h.Listen); err == nil && host != "" && net.ParseIP(host) == nil {
		hosts = append(hosts, host)
	}
	return hosts
}
