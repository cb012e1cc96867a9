package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/driftd/driftd/config"
	"github.com/driftd/driftd/consumers"
	"github.com/driftd/driftd/detectors"
	"github.com/driftd/driftd/pipeline"
	"github.com/driftd/driftd/processors"
	"github.com/driftd/driftd/schemas"
	"github.com/driftd/driftd/simulate"
	"github.com/driftd/driftd/storage"
)

// devOptions configure `driftd dev`.
type devOptions struct {
	KafkaAddr        string // in-process broker address (port 0: any free port)
	ClickHouseListen string // embedded ClickHouse HTTP address
	ClickHouseAddr   string // use this ClickHouse HTTP endpoint instead of starting one
	DataDir          string
	Database         string
	Simulate         bool
	// Window is driftd's window size (0: the configuration's windows.size when it was
	// set, else one minute, as the simulator's minutes are).
	Window    time.Duration
	Sim       simOptions
	View      io.Writer     // the live view; nil for none
	ViewEvery time.Duration // how often the table is redrawn
	// onAlert sees every alert (tests); ready is called when everything runs.
	onAlert  func(*schemas.AlertEvent)
	ready    func(kafkaAddr, clickhouseAddr string)
	onHealth func(addr string)
}

// simOptions are the simulator's flags.
type simOptions struct {
	Seed      uint64
	Speed     float64
	PerWindow int
	Scenarios string
	Format    string
	Windows   int
}

func devCmd() *cobra.Command {
	o := devOptions{View: os.Stdout, ViewEvery: 2 * time.Second}
	var logLevel string
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run the whole system on this machine: in-process Kafka, embedded ClickHouse, driftd and a traffic simulator",
		Long: `dev starts an in-process Kafka broker (franz-go's kfake, a real Kafka protocol server)
and the embedded ClickHouse engine (chDB behind ClickHouse's HTTP interface), applies the
migrations, runs the same pipeline as "driftd run" and, with --simulate (the default),
feeds it simulated traffic in which each model shows one production failure.

Send your own events to the broker and query the results while it runs:
  kcat -b 127.0.0.1:9092 -t ml.predictions -P
  curl 'http://127.0.0.1:8123/?query=SELECT+*+FROM+driftd.alerts+FORMAT+Vertical'`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, log, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			// The live view is the output: logs only say what goes wrong, unless asked.
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return fmt.Errorf("--log-level: %w", err)
			}
			log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
			err = dev(cmd.Context(), cfg, log, o)
			if errors.Is(err, context.Canceled) {
				return nil
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.KafkaAddr, "kafka-addr", "127.0.0.1:9092", "address of the in-process Kafka broker")
	f.StringVar(&o.ClickHouseListen, "clickhouse-listen", "127.0.0.1:8123", "address of the embedded ClickHouse HTTP interface")
	f.StringVar(&o.DataDir, "data-dir", ".driftd", "where the broker's and ClickHouse's data are kept")
	f.StringVar(&o.Database, "database", "driftd", "ClickHouse database")
	f.BoolVar(&o.Simulate, "simulate", true, "produce simulated traffic")
	f.DurationVar(&o.Window, "window", 0, "window size (default: windows.size from the configuration if set there, else 1m)")
	addSimFlags(f, &o.Sim)
	f.StringVar(&logLevel, "log-level", "warn", "log level of dev mode (debug, info, warn, error)")
	return cmd
}

func addSimFlags(f interface {
	Uint64Var(*uint64, string, uint64, string)
	Float64Var(*float64, string, float64, string)
	IntVar(*int, string, int, string)
	StringVar(*string, string, string, string)
}, s *simOptions) {
	f.Uint64Var(&s.Seed, "seed", 1, "simulator seed: the same seed gives the same events")
	f.Float64Var(&s.Speed, "speed", 60, "simulated seconds per wall-clock second (60: an hour a minute)")
	f.IntVar(&s.PerWindow, "per-window", 1000, "predictions per model per simulated minute")
	f.StringVar(&s.Scenarios, "scenarios", "all", "comma-separated scenarios: "+strings.Join(simulate.All, ", "))
	f.StringVar(&s.Format, "format", "json", "wire format of simulated predictions: json or avro")
	f.IntVar(&s.Windows, "windows", 0, "stop after this many simulated minutes (0: run until stopped)")
}

// devConfig adapts a configuration to dev mode: local engines, and one-minute windows
// unless the configuration or --window says otherwise. The detection settings are the
// configuration's: the simulated scenarios fire with the defaults (the slow canary by its
// comparison with the primary, docs/deployments.md).
func devConfig(cfg config.Config, o devOptions, kafkaAddr string) config.Config {
	cfg.Kafka.Brokers = []string{kafkaAddr}
	cfg.ClickHouse.Database = o.Database
	if o.ClickHouseAddr != "" {
		cfg.ClickHouse.Embedded.Enabled = false
		cfg.ClickHouse.Addr, cfg.ClickHouse.Protocol, cfg.ClickHouse.Username, cfg.ClickHouse.Password = o.ClickHouseAddr, "http", "", ""
	} else {
		// The configured endpoint settings (password, limits, TLS) hold in dev mode too.
		e := &cfg.ClickHouse.Embedded
		e.Enabled, e.DataDir, e.Listen = true, filepath.Join(o.DataDir, "clickhouse"), o.ClickHouseListen
		e.TLSCertFile, e.TLSKeyFile = "", "" // dev serves plain HTTP, as its banner says
	}
	if cfg.Kafka.SchemaRegistry.URL == "" && cfg.Kafka.SchemaRegistry.BundledIDs["prediction"] == 0 {
		// The simulator's Avro records carry schema id 1: the bundled prediction schema.
		ids := map[string]uint32{"prediction": 1}
		for k, v := range cfg.Kafka.SchemaRegistry.BundledIDs {
			ids[k] = v
		}
		cfg.Kafka.SchemaRegistry.BundledIDs = ids
	}
	switch {
	case o.Window > 0:
		cfg.Windows.Size = config.Duration(o.Window)
	case cfg.Windows.Size == config.Default().Windows.Size:
		// Not configured: a simulated hour passes per minute, so minute windows show
		// changes within seconds. A model sending fewer than min_events per minute is
		// judged over merged windows (docs/detection.md).
		cfg.Windows.Size = config.Duration(time.Minute)
	}
	cfg.Windows.Lateness = config.Duration(5 * time.Second)
	cfg.Pipelines.Window, cfg.Pipelines.Lateness = config.Duration(time.Minute), config.Duration(5*time.Second)
	if cfg.Labels.Settle == config.Default().Labels.Settle {
		// The simulator's labels come half a window after their predictions and stop
		// with them: a window's labels are in one window after it.
		cfg.Labels.Settle = config.Duration(time.Minute)
	}
	cfg.Labels.Lateness = config.Duration(5 * time.Second)
	cfg.Limits.MaxFuture = 0 // simulated time runs ahead of the wall clock
	cfg.Kafka.FlushInterval = config.Duration(500 * time.Millisecond)
	return cfg
}

func dev(ctx context.Context, cfg config.Config, log *slog.Logger, o devOptions) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := os.MkdirAll(o.DataDir, 0o755); err != nil {
		return fmt.Errorf("dev: data dir: %w", err)
	}
	_, portText, err := net.SplitHostPort(o.KafkaAddr)
	if err != nil {
		return fmt.Errorf("dev: --kafka-addr %q: %w", o.KafkaAddr, err)
	}
	port, _ := strconv.Atoi(portText)
	topics := []string{cfg.Kafka.Topics.Predictions, cfg.Kafka.Topics.Labels, cfg.Kafka.Topics.Pipeline, cfg.Kafka.Topics.Alerts, cfg.Kafka.Topics.DLQ}
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(port), kfake.SeedTopics(3, topics...), kfake.AllowAutoTopicCreation())
	if err != nil {
		return fmt.Errorf("dev: start the in-process Kafka broker on %s: %w (is another broker using the port? try --kafka-addr)", o.KafkaAddr, err)
	}
	defer cluster.Close()
	kafkaAddr := cluster.ListenAddrs()[0]
	cfg = devConfig(cfg, o, kafkaAddr)
	if err := cfg.Validate(); err != nil {
		return err
	}

	view := newDevView(o.View)
	var uiAddr string
	var wg sync.WaitGroup
	errc := make(chan error, 2)
	started := make(chan string, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		errc <- run(ctx, cfg, log, hooks{
			onFlush:   view.flushed,
			onVerdict: view.verdict,
			onPerf:    view.performance,
			onAlert: func(a *schemas.AlertEvent) {
				view.alert(a)
				if o.onAlert != nil {
					o.onAlert(a)
				}
			},
			ready: func(addr string) { started <- addr },
			health: func(addr string) {
				uiAddr = addr // before ready: the endpoint starts first
				if o.onHealth != nil {
					o.onHealth(addr)
				}
			},
		})
	}()
	var chAddr string
	select {
	case chAddr = <-started:
	case err := <-errc:
		return err
	}
	view.banner(uiAddr, kafkaAddr, chAddr, cfg.ClickHouse.Database, o.Simulate)
	if o.ready != nil {
		o.ready(kafkaAddr, chAddr)
	}
	if o.Simulate {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := resumeAfter(ctx, chAddr, cfg.ClickHouse, time.Now(), log)
			if err := simulateInto(ctx, o.Sim, start, consumers.Options{Brokers: []string{kafkaAddr}}, cfg.Kafka.Topics, cfg.Kafka.SchemaRegistry.BundledIDs["prediction"], view); err != nil && !errors.Is(err, context.Canceled) {
				errc <- err
			}
		}()
	}
	if o.View != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(o.ViewEvery)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					view.table()
				}
			}
		}()
	}
	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	cancel()
	wg.Wait()
	return runErr
}

// resumeAfter returns where simulated time starts: now, or after the last window an
// earlier dev run wrote (its simulated clock ran ahead of the wall clock), so that a
// restarted dev run continues instead of replaying closed windows.
func resumeAfter(ctx context.Context, chAddr string, ch config.ClickHouse, now time.Time, log *slog.Logger) time.Time {
	start := now.UTC().Truncate(time.Minute)
	q := "SELECT toUnixTimestamp64Milli(max(window_end)) FROM " + ch.Database + ".window_model_stats WHERE startsWith(model, 'sim-') FORMAT TSV"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+chAddr+"/?query="+url.QueryEscape(q), nil)
	if err != nil {
		return start
	}
	if ch.Password != "" {
		req.SetBasicAuth(ch.Username, ch.Password.Reveal())
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		log.Warn("could not read where the last simulation ended; starting at now", "err", err)
		return start
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	ms, err := strconv.ParseInt(strings.TrimSpace(string(body)), 10, 64)
	if resp.StatusCode != http.StatusOK || err != nil {
		return start
	}
	if last := time.UnixMilli(ms).UTC().Add(time.Minute); last.After(start) {
		return last.Truncate(time.Minute)
	}
	return start
}

// simulateInto runs the simulator against brokers from simulated time simStart until
// ctx ends or the windows are done.
func simulateInto(ctx context.Context, s simOptions, simStart time.Time, ko consumers.Options, t config.Topics, avroID uint32, view *devView) error {
	var scen []string
	if s.Scenarios != "" && s.Scenarios != "all" {
		scen = strings.Split(s.Scenarios, ",")
	}
	wallStart := time.Now()
	g, err := simulate.New(simulate.Options{Seed: s.Seed, Start: simStart, Window: time.Minute, PerWindow: s.PerWindow, Scenarios: scen})
	if err != nil {
		return err
	}
	var enc simulate.Encoder
	switch s.Format {
	case "json":
	case "avro":
		if enc, err = avroEncoder(ctx, avroID); err != nil {
			return err
		}
	default:
		return fmt.Errorf("simulate: --format %q is not json or avro", s.Format)
	}
	w := simWriter(ko)
	defer w.Close()
	clock := simulate.Clock{WallStart: wallStart, SimStart: simStart, Speed: s.Speed}
	n, err := simulate.Run(ctx, g, clock, time.Now, 50*time.Millisecond, s.Windows,
		enc, simulate.Topics{Predictions: t.Predictions, Labels: t.Labels, Pipeline: t.Pipeline}, w)
	if view != nil {
		view.simulated(n)
	}
	return err
}

// avroEncoder encodes simulated predictions in Confluent Avro with the bundled schema
// under schema id id (1 if 0).
func avroEncoder(ctx context.Context, id uint32) (simulate.Encoder, error) {
	if id == 0 {
		id = 1
	}
	reg, err := schemas.NewRegistry("", map[uint32]string{id: schemas.SchemaPrediction}, nil)
	if err != nil {
		return simulate.Encoder{}, err
	}
	codec, err := reg.Codec(ctx, id)
	if err != nil {
		return simulate.Encoder{}, fmt.Errorf("simulate: %w", err)
	}
	return simulate.Encoder{Avro: codec, SchemaID: id}, nil
}

// simWriter produces simulated records (each message names its topic), keyed records
// hashed to partitions as Kafka's own producers do.
func simWriter(ko consumers.Options) *kafka.Writer {
	return &kafka.Writer{Addr: kafka.TCP(ko.Brokers...), Balancer: &kafka.Hash{}, BatchTimeout: 2 * time.Millisecond,
		BatchSize: 1000, RequiredAcks: kafka.RequireOne, AllowAutoTopicCreation: true,
		Transport: &kafka.Transport{TLS: ko.TLS, SASL: ko.SASL, DialTimeout: 10 * time.Second}}
}

// devView is the live terminal view: a table per model and the alerts as they happen.
// On a terminal it redraws one screen in place (the header, the table, the latest
// alerts); written to a file or a pipe it appends, so that a log keeps every line.
type devView struct {
	mu      sync.Mutex
	w       io.Writer
	models  map[string]*modelRow
	started time.Time
	stats   pipeline.Stats
	sent    int
	// redraw: w is a terminal. header is what the banner said, recent the latest alert
	// lines (at most recentAlerts), both drawn again with every table.
	redraw bool
	header string
	recent []string
}

// recentAlerts is how many alert lines a redrawn screen keeps.
const recentAlerts = 15

// isTerminal says whether w is a character device (a terminal), where the view redraws
// in place.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

type modelRow struct {
	events       uint64
	windows      int
	worstPSI     float64
	worstFeature string
	p99          float64
	firing       map[string]bool // fingerprints; alerts restored from an earlier run resolve without having fired here
	lastEnd      int64
	judgement    string // how the latest window was judged, when not on its own
	// The latest settled window's accuracy (or MAE) and label coverage; perfEnd its end.
	perf     string
	coverage float64
	perfEnd  time.Time
}

func newDevView(w io.Writer) *devView {
	return &devView{w: w, models: map[string]*modelRow{}, started: time.Now(), redraw: isTerminal(w)}
}

func (v *devView) printf(format string, args ...any) {
	if v.w != nil {
		fmt.Fprintf(v.w, format, args...)
	}
}

// banner says where everything is: the pages (uiAddr, "" without them), Kafka and
// ClickHouse.
func (v *devView) banner(uiAddr, kafkaAddr, chAddr, db string, sim bool) {
	var b strings.Builder
	if uiAddr != "" {
		fmt.Fprintf(&b, "driftd dev: the models' pages on http://%s/\n", uiAddr)
	}
	fmt.Fprintf(&b, "Kafka on %s, ClickHouse HTTP on http://%s (database %s)\n", kafkaAddr, chAddr, db)
	if sim {
		b.WriteString("simulating traffic; alerts appear below as they fire and resolve. Ctrl-C stops.\n")
	}
	fmt.Fprintf(&b, "query: curl 'http://%s/?query=SELECT+model,feature,psi+FROM+%s.drift_scores+FINAL+WHERE+drifted+LIMIT+10'\n", chAddr, db)
	v.mu.Lock()
	defer v.mu.Unlock()
	v.header = b.String()
	v.printf("%s\n", v.header)
}

func (v *devView) flushed(s pipeline.Stats) {
	v.mu.Lock()
	v.stats = s
	v.mu.Unlock()
}

func (v *devView) simulated(n int) {
	v.mu.Lock()
	v.sent = n
	v.mu.Unlock()
}

// row is the table's row of a series (its model, and its slot when not primary).
func (v *devView) row(s processors.SeriesKey) *modelRow {
	key := s.Model
	if s.Deployment != schemas.DeploymentPrimary {
		key += " (" + s.Deployment + ")"
	}
	row, ok := v.models[key]
	if !ok {
		row = &modelRow{firing: map[string]bool{}}
		v.models[key] = row
	}
	return row
}

func (v *devView) verdict(vd detectors.Verdict, alerts []*schemas.AlertEvent) {
	v.mu.Lock()
	defer v.mu.Unlock()
	w := vd.Window
	row := v.row(w.Series)
	row.events += w.Events
	row.windows++
	if w.End >= row.lastEnd {
		row.lastEnd = w.End
		row.p99 = w.Latency.Quantile(0.99)
		row.worstPSI, row.worstFeature, row.judgement = 0, "", vd.Judgement
		for _, s := range vd.Scores {
			if s.PSI > row.worstPSI {
				row.worstPSI, row.worstFeature = s.PSI, s.Feature
			}
		}
	}
	for _, a := range alerts {
		if a.State == schemas.StateFiring {
			row.firing[a.Fingerprint] = true
		} else {
			delete(row.firing, a.Fingerprint)
		}
	}
}

// performance keeps each model's latest settled window for the table.
func (v *devView) performance(rows []storage.PerformanceRow) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, r := range rows {
		w := r.Window
		row := v.row(w.Series)
		if w.End.Before(row.perfEnd) {
			continue
		}
		m := r.Counts.Metrics()
		row.perfEnd, row.coverage = w.End, r.Counts.Coverage()
		switch r.Counts.Task() {
		case detectors.TaskClassification:
			row.perf = fmt.Sprintf("acc %.2f", m.Accuracy)
		case detectors.TaskRegression:
			row.perf = fmt.Sprintf("mae %.3g", m.MAE)
		default:
			row.perf = "no labels"
		}
	}
}

// alert prints an alert as it is published.
func (v *devView) alert(a *schemas.AlertEvent) {
	v.mu.Lock()
	defer v.mu.Unlock()
	line := fmt.Sprintf("✅ RESOLVED %-8s %-18s %s\n", a.Severity, a.Kind, a.Summary)
	if a.State == schemas.StateFiring {
		line = fmt.Sprintf("🔥 FIRING   %-8s %-18s %s\n", a.Severity, a.Kind, a.Summary)
	}
	if !v.redraw {
		v.printf("%s", line)
		return
	}
	v.recent = append(v.recent, line)
	if len(v.recent) > recentAlerts {
		v.recent = v.recent[len(v.recent)-recentAlerts:]
	}
}

func (v *devView) table() {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.w == nil || len(v.models) == 0 {
		return
	}
	secs := time.Since(v.started).Seconds()
	names := make([]string, 0, len(v.models))
	for n := range v.models {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	fmt.Fprintf(&b, "\n%-32s %9s %8s %-22s %9s %-10s %8s %7s\n", "model", "events/s", "windows", "worst drift (PSI)", "p99 ms", "labelled", "coverage", "firing")
	for _, n := range names {
		r := v.models[n]
		worst := "-"
		if r.worstFeature != "" {
			f := r.worstFeature
			switch f {
			case processors.PredictionFeature:
				f = "prediction"
			case processors.ConfidenceFeature:
				f = "confidence"
			case processors.EntropyFeature:
				f = "entropy"
			}
			worst = fmt.Sprintf("%s %.2f", f, r.worstPSI)
		} else if strings.HasPrefix(r.judgement, "not judged") {
			worst = "not judged: n < min"
		}
		perf, coverage := "-", "-"
		if r.perf != "" {
			perf, coverage = r.perf, fmt.Sprintf("%.0f%%", 100*r.coverage)
		}
		fmt.Fprintf(&b, "%-32s %9.0f %8d %-22s %9.0f %-10s %8s %7d\n", n, float64(r.events)/secs, r.windows, worst, r.p99, perf, coverage, len(r.firing))
	}
	fmt.Fprintf(&b, "records %d, late %d, dead-lettered %d, windows %d, alerts %d\n",
		v.stats.Records, v.stats.Late, v.stats.DeadLettered, v.stats.WindowsClosed, v.stats.AlertsEmitted)
	if v.redraw {
		// Home, clear, then the whole screen again: the table stays where it is.
		screen := "\x1b[H\x1b[2J" + v.header + b.String()
		if len(v.recent) > 0 {
			screen += "\nlatest alerts:\n" + strings.Join(v.recent, "")
		}
		io.WriteString(v.w, screen)
		return
	}
	io.WriteString(v.w, b.String())
}
