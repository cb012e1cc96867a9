package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/driftd/driftd/config"
	"github.com/driftd/driftd/internal/replay"
	"github.com/driftd/driftd/pipeline"
	"github.com/driftd/driftd/schemas"
	"github.com/driftd/driftd/simulate"
)

// The detection benchmark: simulated streams read by the real pipeline with the default
// settings (and the configuration given with -c), in memory, counting false alarms on
// stationary streams and how many windows each kind of change takes to be found.
// docs/detection.md has its table.

// benchCase is one stream judged by one pipeline.
type benchCase struct {
	name     string
	window   time.Duration
	rate     float64
	change   string
	duration time.Duration
	changeAt time.Duration // 0 for a stationary stream
	// expect are the alert kinds that find the change (empty: it must stay silent).
	expect []string
	// unit is what the delay is counted in: the model's window, or the pipeline's.
	unit time.Duration
	// traffic is the model's traffic shape (simulate.Traffic*; Poisson when empty).
	traffic string
}

// benchResult is what a case gave.
type benchResult struct {
	benchCase
	events      int
	windows     int
	falseAlarms []string
	found       bool
	delay       float64 // windows (unit) from the change to the first alert of an expected kind
	foundBy     string
	elapsed     time.Duration
}

// expectedKinds maps a change to the alert kinds that report it.
var expectedKinds = map[string][]string{
	simulate.ChangeShift:           {schemas.KindDataDrift, schemas.KindPredictionDrift},
	simulate.ChangeGradual:         {schemas.KindDataDrift, schemas.KindPredictionDrift},
	simulate.ChangeNewCategory:     {schemas.KindDataDrift, schemas.KindInputQuality},
	simulate.ChangeMissing:         {schemas.KindInputQuality},
	simulate.ChangeSentinel:        {schemas.KindInputQuality, schemas.KindDataDrift},
	simulate.ChangeNullPredictions: {schemas.KindOutputQuality},
	simulate.ChangeLatency:         {schemas.KindLatency},
	simulate.ChangeErrors:          {schemas.KindErrors},
	simulate.ChangeVolumeDrop:      {schemas.KindVolume},
	simulate.ChangeStopped:         {schemas.KindVolume},
	simulate.ChangeFailingStage:    {"pipeline_failure"},
	simulate.ChangeSilentStage:     {"pipeline_freshness"},
	simulate.ChangeSlowStage:       {"pipeline_duration"},
	simulate.ChangeLossyStage:      {"pipeline_volume"},
	simulate.ChangeNullStage:       {"pipeline_quality"},
	simulate.ChangeTinyShift:       nil,
}

type benchOptions struct {
	rates, tinyRates, changeRates string
	shapeRates                    string
	windows                       string
	hours, changeHours            float64
	seed                          uint64
	only                          string
	parallel                      int
	check, verbose                bool
	cpuProfile                    string
}

func detectBenchCmd() *cobra.Command {
	var o benchOptions
	cmd := &cobra.Command{
		Use:   "detect-bench",
		Short: "Measure false alarms and detection delays of the current settings on simulated streams (in memory)",
		Long: `detect-bench reads simulated streams through driftd's real pipeline, in memory (no Kafka,
no ClickHouse), with the settings driftd run would use (defaults, or -c). Stationary streams
must raise no alert; each kind of change must be found within a few windows; a tiny,
irrelevant shift at high volume must stay silent. It prints a Markdown table.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, _, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			return detectBench(cmd.Context(), cfg, o, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.rates, "rates", "1,10,100", "events/s of the stationary streams")
	f.StringVar(&o.changeRates, "change-rates", "1,10", "events/s of the streams with a change")
	f.StringVar(&o.tinyRates, "tiny-rates", "100,1000", "events/s of the streams with a tiny, irrelevant shift")
	f.StringVar(&o.shapeRates, "shape-rates", "1,10", "events/s of the stationary streams whose traffic is not Poisson (bursty for --hours, diurnal for twice that: a day of same-hour history and a day judged by it)")
	f.StringVar(&o.windows, "windows", "1m,5m", "window sizes")
	f.Float64Var(&o.hours, "hours", 24, "event time of each stationary stream, hours")
	f.Float64Var(&o.changeHours, "change-hours", 8, "event time of each stream with a change, hours (the change starts 2 hours before the end)")
	f.Uint64Var(&o.seed, "seed", 1, "random seed")
	f.StringVar(&o.only, "only", "", "run only cases whose name contains this")
	f.IntVar(&o.parallel, "parallel", runtime.GOMAXPROCS(0), "cases run at once")
	f.BoolVar(&o.check, "check", false, "exit non-zero on any false alarm or missed change")
	f.BoolVar(&o.verbose, "verbose", false, "log the pipeline's messages")
	f.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the run to this file (go tool pprof)")
	return cmd
}

func parseFloats(s string) ([]float64, error) {
	var out []float64
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		v, err := strconv.ParseFloat(p, 64)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("%q is not a positive number", p)
		}
		out = append(out, v)
	}
	return out, nil
}

func benchCases(cfg config.Config, o benchOptions) ([]benchCase, error) {
	rates, err := parseFloats(o.rates)
	if err != nil {
		return nil, fmt.Errorf("--rates: %w", err)
	}
	changeRates, err := parseFloats(o.changeRates)
	if err != nil {
		return nil, fmt.Errorf("--change-rates: %w", err)
	}
	shapeRates, err := parseFloats(o.shapeRates)
	if err != nil {
		return nil, fmt.Errorf("--shape-rates: %w", err)
	}
	tinyRates, err := parseFloats(o.tinyRates)
	if err != nil {
		return nil, fmt.Errorf("--tiny-rates: %w", err)
	}
	var windows []time.Duration
	for _, p := range strings.Split(o.windows, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(p))
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("--windows: %q is not a duration", p)
		}
		windows = append(windows, d)
	}
	hours := time.Duration(o.hours * float64(time.Hour))
	changeHours := time.Duration(o.changeHours * float64(time.Hour))
	if changeHours <= 2*time.Hour {
		return nil, fmt.Errorf("--change-hours must be more than 2")
	}
	pipeWindow := time.Duration(cfg.Pipelines.Window)
	var cases []benchCase
	for _, w := range windows {
		for _, r := range rates {
			cases = append(cases, benchCase{name: fmt.Sprintf("stationary %g/s %s", r, w), window: w, rate: r, duration: hours, unit: w})
		}
		for _, r := range shapeRates {
			cases = append(cases,
				benchCase{name: fmt.Sprintf("stationary bursty %g/s %s", r, w), window: w, rate: r, duration: hours, unit: w, traffic: simulate.TrafficBursty},
				benchCase{name: fmt.Sprintf("stationary diurnal %g/s %s", r, w), window: w, rate: r, duration: 2 * hours, unit: w, traffic: simulate.TrafficDiurnal})
		}
		for _, r := range changeRates {
			for _, ch := range simulate.ModelChanges {
				if ch == simulate.ChangeTinyShift {
					continue
				}
				cases = append(cases, benchCase{name: fmt.Sprintf("%s %g/s %s", ch, r, w), window: w, rate: r, change: ch,
					duration: changeHours, changeAt: changeHours - 2*time.Hour, expect: expectedKinds[ch], unit: w})
			}
		}
		// A partial outage of traffic that is not Poisson: the volume rules allow for its
		// spread, and must still find the fall.
		for _, r := range shapeRates {
			for _, ch := range []string{simulate.ChangeVolumeDrop, simulate.ChangeStopped} {
				cases = append(cases, benchCase{name: fmt.Sprintf("%s bursty %g/s %s", ch, r, w), window: w, rate: r, change: ch,
					duration: changeHours, changeAt: changeHours - 2*time.Hour, expect: expectedKinds[ch], unit: w, traffic: simulate.TrafficBursty})
			}
		}
		for _, r := range tinyRates {
			cases = append(cases, benchCase{name: fmt.Sprintf("%s %g/s %s", simulate.ChangeTinyShift, r, w), window: w, rate: r,
				change: simulate.ChangeTinyShift, duration: changeHours, changeAt: changeHours - 2*time.Hour, unit: w})
		}
	}
	// A stage's durations, losses and nulls are judged against the same hour of the
	// previous days: its stream runs for more than a day before the change.
	pipeHours := max(changeHours, 28*time.Hour)
	for _, ch := range simulate.PipelineChanges {
		cases = append(cases, benchCase{name: fmt.Sprintf("%s (runs every 5m)", ch), window: windows[0], rate: 1, change: ch,
			duration: pipeHours, changeAt: pipeHours - 2*time.Hour, expect: expectedKinds[ch], unit: pipeWindow})
	}
	if o.only != "" {
		var kept []benchCase
		for _, c := range cases {
			if strings.Contains(c.name, o.only) {
				kept = append(kept, c)
			}
		}
		cases = kept
	}
	return cases, nil
}

func detectBench(ctx context.Context, cfg config.Config, o benchOptions, out io.Writer) error {
	cases, err := benchCases(cfg, o)
	if err != nil {
		return err
	}
	if o.parallel < 1 {
		o.parallel = 1
	}
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	results := make([]benchResult, len(cases))
	errs := make([]error, len(cases))
	sem := make(chan struct{}, o.parallel)
	var wg sync.WaitGroup
	for i, c := range cases {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			results[i], errs[i] = runBenchCase(ctx, cfg, c, o)
			if errs[i] == nil {
				fmt.Fprintf(os.Stderr, "detect-bench: %-40s %9d events %6.1fs\n", c.name, results[i].events, results[i].elapsed.Seconds())
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return fmt.Errorf("detect-bench %s: %w", cases[i].name, err)
		}
	}
	bad := writeBenchTable(out, results)
	if o.check && bad > 0 {
		return fmt.Errorf("detect-bench: %d cases with false alarms or missed changes", bad)
	}
	return nil
}

// runBenchCase reads one case's stream through a pipeline with cfg's settings.
func runBenchCase(ctx context.Context, cfg config.Config, c benchCase, o benchOptions) (benchResult, error) {
	res := benchResult{benchCase: c}
	began := time.Now()
	cfg.Windows.Size = config.Duration(c.window)
	cfg.Kafka.Topics.Predictions, cfg.Kafka.Topics.Pipeline = replay.PredictionTopic, replay.PipelineTopic
	start := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	so := simulate.StreamOptions{Seed: o.seed, Start: start, Duration: c.duration}
	pipe := simulate.StreamPipeline{Name: "orders", Stages: []string{"extract", "join", "build_features"}, Every: 5 * time.Minute, Models: []string{"bench-model"}}
	switch c.change {
	case simulate.ChangeFailingStage, simulate.ChangeSilentStage, simulate.ChangeSlowStage, simulate.ChangeLossyStage, simulate.ChangeNullStage:
		pipe.Change, pipe.ChangeAt = c.change, c.changeAt
		so.Models = []simulate.StreamModel{{Name: "bench-model", Rate: c.rate}}
	default:
		so.Models = []simulate.StreamModel{{Name: "bench-model", Rate: c.rate, Change: c.change, ChangeAt: c.changeAt, Traffic: c.traffic}}
	}
	// Two more stages' pipelines, unchanged: one running every minute (sixty runs a
	// window), one every hour (one run a window), so that every case also counts the
	// false alarms of stages at other cadences.
	so.Pipelines = []simulate.StreamPipeline{pipe,
		{Name: "events", Stages: []string{"collect", "dedupe"}, Every: time.Minute, Models: []string{"bench-model"}},
		{Name: "accounts", Stages: []string{"snapshot", "load"}, Every: time.Hour, Models: []string{"bench-model"}}}
	clock := &replay.Clock{}
	src, err := replay.NewSource(so, replay.Live, 3, 2*time.Duration(cfg.Windows.IdleClose)+time.Duration(cfg.Pipelines.Window), clock)
	if err != nil {
		return res, err
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if o.verbose {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil)).With("case", c.name)
	}
	store, sink := replay.NewStore(), &replay.Sink{}
	set := pipeline.SettingsFromConfig(cfg, schemas.Decoder{Format: schemas.FormatJSON}, schemas.Decoder{Format: schemas.FormatJSON})
	set.DecodeAhead = 0 // the replay source's Fetch moves the simulated clock
	r := pipeline.New(set, src, sink, sink, store, log, clock.Now)
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	src.Stop = cancel
	if err := r.Restore(runCtx); err != nil {
		return res, err
	}
	if err := r.Run(runCtx); err != nil && ctx.Err() != nil {
		return res, err
	}
	if err := r.Shutdown(ctx); err != nil {
		return res, err
	}
	if len(sink.DeadLetters) > 0 {
		return res, fmt.Errorf("%d records dead-lettered, first: %s", len(sink.DeadLetters), sink.DeadLetters[0])
	}
	res.events, res.windows, res.elapsed = src.Read(), store.Verdicts, time.Since(began)
	changeTime := start.Add(c.changeAt)
	expected := map[string]bool{}
	for _, k := range c.expect {
		expected[k] = true
	}
	for _, t := range replay.Transitions(store.Alerts) {
		if t.State != schemas.StateFiring || t.WindowEnd.After(start.Add(c.duration)) {
			// The run's tail: the stream has ended and a quiet stream is judged as one.
			continue
		}
		after := c.change != "" && t.WindowEnd.After(changeTime)
		if after && expected[t.Kind] {
			if !res.found {
				res.found = true
				res.delay = float64(t.WindowEnd.Sub(changeTime)) / float64(c.unit)
				res.foundBy = t.Kind
				if t.Metric != "" {
					res.foundBy += " (" + t.Metric + ")"
				}
			}
			continue
		}
		if after && len(c.expect) > 0 {
			continue // a consequence of the change (a shift also moves the predictions)
		}
		res.falseAlarms = append(res.falseAlarms, t.String())
	}
	return res, nil
}

// writeBenchTable prints the results and returns how many cases failed.
func writeBenchTable(out io.Writer, results []benchResult) int {
	sort.SliceStable(results, func(i, j int) bool { return results[i].name < results[j].name })
	bad := 0
	fmt.Fprintln(out, "| case | events | windows judged | false alarms | found | delay (windows) | by |")
	fmt.Fprintln(out, "|---|---:|---:|---:|---|---:|---|")
	for _, r := range results {
		found, delay := "-", "-"
		switch {
		case len(r.expect) > 0 && r.found:
			found, delay = "yes", fmt.Sprintf("%.1f", r.delay)
		case len(r.expect) > 0:
			found = "**missed**"
		}
		if len(r.falseAlarms) > 0 || (len(r.expect) > 0 && !r.found) {
			bad++
		}
		fmt.Fprintf(out, "| %s | %d | %d | %d | %s | %s | %s |\n", r.name, r.events, r.windows, len(r.falseAlarms), found, delay, r.foundBy)
	}
	for _, r := range results {
		for i, a := range r.falseAlarms {
			if i == 5 {
				fmt.Fprintf(out, "\n%s: %d more false alarms", r.name, len(r.falseAlarms)-5)
				break
			}
			fmt.Fprintf(out, "\n%s: false alarm: %s", r.name, a)
		}
	}
	fmt.Fprintln(out)
	return bad
}
