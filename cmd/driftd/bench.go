package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/spf13/cobra"

	"github.com/driftd/driftd/config"
	"github.com/driftd/driftd/consumers"
	"github.com/driftd/driftd/pipeline"
	"github.com/driftd/driftd/simulate"
)

// driftd bench: how fast driftd reads a backlog, against the fastest a Kafka consumer can
// read the same topic on the same machine in the same run. The topic is filled once with
// simulated predictions (and reused by later runs with the same parameters); a bare
// kafka-go group consumer reads it, then driftd run's own code (run, with the
// configuration's settings and the embedded engine) reads it in a fresh group.
// docs/performance.md has the numbers.

type throughputOptions struct {
	events     int
	features   int
	format     string
	partitions int
	models     int
	keyedBy    string
	rate       float64 // events per second of event time, per model
	seed       uint64
	members    int
	waitLast   bool
	timeout    time.Duration
	cpuProfile string
	memProfile string
	verbose    bool
}

// usage is what one part of the run cost the process.
type usage struct {
	cpu                      time.Duration // user + system
	allocBytes, allocObjects uint64
}

func (u usage) sub(v usage) usage {
	return usage{cpu: u.cpu - v.cpu, allocBytes: u.allocBytes - v.allocBytes, allocObjects: u.allocObjects - v.allocObjects}
}

// throughputResult is one bench run.
type throughputResult struct {
	topic  string
	reused bool
	fill   time.Duration

	bare     time.Duration // first record → last record, bare consumer
	bareCost usage

	// driftd's times, each from its first record consumed: every record read; the flush
	// after that (every window the data closed judged, written and committed): the span
	// its rate is taken over; and the last record's window written (it closes after
	// windows.idle_close of wall time without events).
	read, flushed, final time.Duration
	driftdCost           usage // first record → flushed
	peakHeap, peakLive   uint64
	peakRSS              uint64
	idleClose            time.Duration
	windows              uint64
	deadLettered         uint64
	rebalances           int64
	members              int
	spread               bool
}

func benchCmd() *cobra.Command {
	var o throughputOptions
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure driftd's throughput against a bare Kafka consumer on the same topic (real broker, embedded engine)",
		Long: `bench fills a topic of the configured brokers with simulated predictions (once: a later
run with the same parameters reuses it), reads it with a bare kafka-go group consumer
(FetchMessage, a commit every 10,000 records) to measure the ceiling, and then with
driftd run's pipeline (the configuration's settings, the embedded ClickHouse engine, a
fresh consumer group and database), in this process. It prints both rates, their ratio,
driftd's CPU time, allocations and peak memory. driftd's time runs from its first record
to the flush after its last one; the last record's window closes later, after
windows.idle_close of wall time without events, and is reported apart.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, log, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			if !o.verbose {
				log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
			}
			res, err := throughputBench(cmd.Context(), cfg, o, log, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			printThroughput(cmd.OutOrStdout(), o, res)
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.events, "events", 1_000_000, "predictions in the topic")
	f.IntVar(&o.features, "features", 6, "features per prediction (6 or 20; 5 to 20 accepted)")
	f.StringVar(&o.format, "format", "json", "wire format: json or avro (Confluent framing, bundled schema)")
	f.IntVar(&o.partitions, "partitions", 3, "partitions of the topic")
	f.IntVar(&o.models, "models", 14, "models, each sending the same rate")
	f.StringVar(&o.keyedBy, "keyed-by", "model", "record key: model (a model on one partition) or request (a model over every partition)")
	f.Float64Var(&o.rate, "rate", 10, "events per second of event time per model (sets how many windows the events span)")
	f.Uint64Var(&o.seed, "seed", 1, "simulator seed")
	f.IntVar(&o.members, "members", 1, "driftd members in the consumer group (1 to 3)")
	f.BoolVar(&o.waitLast, "wait-last", true, "wait for the last record's window to be written (it closes on the wall clock: up to a window plus lateness after the last record)")
	f.DurationVar(&o.timeout, "timeout", 2*time.Hour, "give up after this long")
	f.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the driftd part to this file")
	f.StringVar(&o.memProfile, "memprofile", "", "write a heap profile taken when the driftd part ends (before it stops) to this file, and one at the peak live heap to this file + \".peak\"")
	f.BoolVar(&o.verbose, "verbose", false, "log driftd's messages (info)")
	return cmd
}

func (o throughputOptions) validate() error {
	switch {
	case o.events <= 0:
		return fmt.Errorf("bench: --events must be positive")
	case o.features < 5 || o.features > simulate.MaxStreamFeatures:
		return fmt.Errorf("bench: --features %d: 6 or 20 (5 to %d accepted)", o.features, simulate.MaxStreamFeatures)
	case o.format != "json" && o.format != "avro":
		return fmt.Errorf("bench: --format %q is not json or avro", o.format)
	case o.partitions < 1:
		return fmt.Errorf("bench: --partitions must be at least 1")
	case o.models < 1:
		return fmt.Errorf("bench: --models must be at least 1")
	case o.keyedBy != "model" && o.keyedBy != "request":
		return fmt.Errorf("bench: --keyed-by %q is not model or request", o.keyedBy)
	case o.rate <= 0:
		return fmt.Errorf("bench: --rate must be positive")
	case o.members < 1 || o.members > 3:
		return fmt.Errorf("bench: --members %d: 1 to 3", o.members)
	}
	return nil
}

// benchStart is when the bench's stream begins: days before today (UTC), so that every
// event is in the past (limits.max_future) and recent enough for the tables' retention. It
// is part of the topic's name, so a topic is reused within a day.
func benchStart(o throughputOptions, now time.Time) (start time.Time, span time.Duration) {
	// Poisson arrivals: 10% more event time than the expected need, plus a minute, holds
	// o.events with room to spare (the stream is cut at o.events).
	expected := float64(o.events) / (float64(o.models) * o.rate)
	span = time.Duration((expected*1.1 + 60) * float64(time.Second))
	days := time.Duration(math.Ceil(span.Hours()/24)) * 24 * time.Hour
	return now.UTC().Truncate(24 * time.Hour).Add(-days), span
}

func benchTopic(o throughputOptions, start time.Time) string {
	return fmt.Sprintf("driftd-bench.%s.f%d.p%d.m%d.%s.n%d.r%s.s%d.%s", o.format, o.features, o.partitions, o.models, o.keyedBy,
		o.events, strconv.FormatFloat(o.rate, 'f', -1, 64), o.seed, start.Format("20060102"))
}

func throughputBench(ctx context.Context, cfg config.Config, o throughputOptions, log *slog.Logger, progress io.Writer) (throughputResult, error) {
	res := throughputResult{members: o.members, idleClose: time.Duration(cfg.Windows.IdleClose), spread: cfg.Kafka.GroupMode.Spread()}
	if err := o.validate(); err != nil {
		return res, err
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	ko, err := kafkaOptions(cfg)
	if err != nil {
		return res, err
	}
	if o.format == "avro" && cfg.Kafka.SchemaRegistry.BundledIDs["prediction"] == 0 {
		// Without a registry, Avro predictions carry the bundled schema under a pinned id.
		ids := map[string]uint32{"prediction": 1}
		for k, v := range cfg.Kafka.SchemaRegistry.BundledIDs {
			ids[k] = v
		}
		cfg.Kafka.SchemaRegistry.BundledIDs = ids
	}
	start, span := benchStart(o, time.Now())
	res.topic = benchTopic(o, start)
	began := time.Now()
	if res.reused, err = fillBenchTopic(ctx, ko, o, res.topic, start, span, cfg.Kafka.SchemaRegistry.BundledIDs["prediction"], progress); err != nil {
		return res, err
	}
	res.fill = time.Since(began)
	fmt.Fprintf(progress, "bench: topic %s ready (%s); bare consumer...\n", res.topic, fillNote(res))
	if res.bare, res.bareCost, err = bareConsumer(ctx, ko, res.topic, o.events); err != nil {
		return res, err
	}
	fmt.Fprintf(progress, "bench: bare consumer %.0f records/s; driftd (%d member(s))...\n", float64(o.events)/res.bare.Seconds(), o.members)
	if err := driftdBench(ctx, cfg, o, log, &res); err != nil {
		return res, err
	}
	return res, nil
}

func fillNote(res throughputResult) string {
	if res.reused {
		return "reused"
	}
	return "filled in " + res.fill.Round(100*time.Millisecond).String()
}

// benchClient asks the brokers about topics.
func benchClient(ko consumers.Options) *kafka.Client {
	return &kafka.Client{Addr: kafka.TCP(ko.Brokers...), Timeout: 10 * time.Second,
		Transport: &kafka.Transport{TLS: ko.TLS, SASL: ko.SASL, DialTimeout: 10 * time.Second}}
}

// topicRecords returns the partitions of topic and the records they hold (-1 partitions
// when the topic does not exist).
func topicRecords(ctx context.Context, ko consumers.Options, topic string) (partitions int, records int64, err error) {
	client := benchClient(ko)
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return 0, 0, fmt.Errorf("topic %s: metadata: %w", topic, err)
	}
	if len(md.Topics) != 1 || errors.Is(md.Topics[0].Error, kafka.UnknownTopicOrPartition) {
		return -1, 0, nil
	}
	if md.Topics[0].Error != nil {
		return 0, 0, fmt.Errorf("topic %s: %w", topic, md.Topics[0].Error)
	}
	var reqs []kafka.OffsetRequest
	for _, p := range md.Topics[0].Partitions {
		reqs = append(reqs, kafka.FirstOffsetOf(p.ID), kafka.LastOffsetOf(p.ID))
	}
	offs, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		return 0, 0, fmt.Errorf("topic %s: offsets: %w", topic, err)
	}
	for _, p := range offs.Topics[topic] {
		if p.Error != nil {
			return 0, 0, fmt.Errorf("topic %s partition %d: offsets: %w", topic, p.Partition, p.Error)
		}
		records += p.LastOffset - p.FirstOffset
	}
	return len(md.Topics[0].Partitions), records, nil
}

// fillBenchTopic makes topic hold o.events simulated predictions: it is reused if it
// already holds them (its name says what they are), otherwise (re)created and filled.
func fillBenchTopic(ctx context.Context, ko consumers.Options, o throughputOptions, topic string, start time.Time, span time.Duration, avroID uint32, progress io.Writer) (bool, error) {
	parts, n, err := topicRecords(ctx, ko, topic)
	if err != nil {
		return false, err
	}
	if parts == o.partitions && n == int64(o.events) {
		return true, nil
	}
	if parts >= 0 {
		// A fill that was cut off: start again.
		fmt.Fprintf(progress, "bench: topic %s holds %d records in %d partitions, not %d in %d: filling it again\n", topic, n, parts, o.events, o.partitions)
		if err := deleteTopic(ctx, ko, topic); err != nil {
			return false, err
		}
	}
	if err := consumers.EnsureTopics(ctx, ko, o.partitions, topic); err != nil {
		return false, err
	}
	stream, err := simulate.NewStream(benchStream(o, start, span))
	if err != nil {
		return false, err
	}
	var enc simulate.Encoder
	if o.format == "avro" {
		if enc, err = avroEncoder(ctx, avroID); err != nil {
			return false, err
		}
	}
	w := simWriter(ko)
	defer w.Close()
	const chunk = 10_000
	msgs := make([]kafka.Message, 0, chunk)
	for produced := 0; produced < o.events; {
		r, ok := stream.Next()
		if !ok {
			return false, fmt.Errorf("bench: the simulated stream ended after %d of %d predictions", produced, o.events)
		}
		m, err := enc.Encode(r, simulate.Topics{Predictions: topic})
		if err != nil {
			return false, err
		}
		if o.keyedBy == "model" {
			m.Key = []byte(r.Prediction.Model)
		}
		msgs = append(msgs, m)
		produced++
		if len(msgs) == chunk || produced == o.events {
			if err := w.WriteMessages(ctx, msgs...); err != nil {
				return false, fmt.Errorf("bench: fill %s: %w", topic, err)
			}
			msgs = msgs[:0]
			if produced%1_000_000 == 0 {
				fmt.Fprintf(progress, "bench: %d of %d predictions produced\n", produced, o.events)
			}
		}
	}
	return false, nil
}

// benchStream is the bench's traffic: o.models stationary models at o.rate events/s.
func benchStream(o throughputOptions, start time.Time, span time.Duration) simulate.StreamOptions {
	so := simulate.StreamOptions{Seed: o.seed, Start: start, Duration: span, Features: o.features}
	for i := 0; i < o.models; i++ {
		so.Models = append(so.Models, simulate.StreamModel{Name: fmt.Sprintf("bench-%02d", i), Rate: o.rate})
	}
	return so
}

func deleteTopic(ctx context.Context, ko consumers.Options, topic string) error {
	resp, err := benchClient(ko).DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: []string{topic}})
	if err == nil {
		err = resp.Errors[topic]
	}
	if err != nil {
		return fmt.Errorf("bench: delete topic %s: %w", topic, err)
	}
	// Deletion is asynchronous: wait until the topic is gone before creating it again.
	for {
		parts, _, err := topicRecords(ctx, ko, topic)
		if err == nil && parts < 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("bench: delete topic %s: %w", topic, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// processUsage reads the process's CPU time and the Go heap's allocations so far.
func processUsage() usage {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}, {Name: "/gc/heap/allocs:objects"}}
	metrics.Read(s)
	return usage{cpu: time.Duration(ru.Utime.Nano() + ru.Stime.Nano()),
		allocBytes: s[0].Value.Uint64(), allocObjects: s[1].Value.Uint64()}
}

// bareConsumer reads n records of topic in a fresh group as plainly as kafka-go allows:
// FetchMessage, a commit every 10,000 records. The time runs from the first record.
func bareConsumer(ctx context.Context, ko consumers.Options, topic string, n int) (time.Duration, usage, error) {
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: ko.Brokers, GroupID: "driftd-bench-bare-" + randomSuffix(), Topic: topic,
		Dialer: &kafka.Dialer{Timeout: 10 * time.Second, DualStack: true, TLS: ko.TLS, SASLMechanism: ko.SASL}})
	defer r.Close()
	var first time.Time
	var before usage
	for i := 1; i <= n; i++ {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			return 0, usage{}, fmt.Errorf("bench: bare consumer, record %d of %d: %w", i, n, err)
		}
		if i == 1 {
			first, before = time.Now(), processUsage()
		}
		if i%10_000 == 0 || i == n {
			if err := r.CommitMessages(ctx, m); err != nil {
				return 0, usage{}, fmt.Errorf("bench: bare consumer commit: %w", err)
			}
		}
	}
	return time.Since(first), processUsage().sub(before), nil
}

func randomSuffix() string {
	b := make([]byte, 4)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// benchTracker follows the members' pipelines through their observers.
type benchTracker struct {
	want     int64
	waitLast bool
	consumed atomic.Int64
	// Unix nanoseconds of the first and last record, the first flush after the last
	// record, and the flush that left no window open.
	first, last, flushed, final atomic.Int64
	startCost, flushCost        atomic.Pointer[usage]
	rebalances                  atomic.Int64
	done                        chan struct{}
	doneOnce                    sync.Once
	// spread: the members share the partitions and each model is judged by one of them
	// after every member has written its windows (spreadDone).
	spread  bool
	mu      sync.Mutex
	members []*benchObserver
	// readAt is when every record was read and every member past its own start-up grace
	// (no window closes before it: a backlog read faster is judged at the first flush
	// after it); the members' flushes are counted from then.
	readAt time.Time
}

// benchObserver is one member's observer: the metrics, and the tracker.
type benchObserver struct {
	pipeline.Observer
	t        *benchTracker
	consumed atomic.Int64
	// open and assigned are the member's open windows and partitions at its last flush.
	open, assigned atomic.Int64
	// Under the tracker's mutex: whether the member's start-up grace was over at its last
	// flush (pipeline.Stats.Started), and its flushes since readAt.
	started bool
	flushes int
}

func (b *benchObserver) Consumed(topic string) {
	b.Observer.Consumed(topic)
	b.consumed.Add(1)
	switch b.t.consumed.Add(1) {
	case 1:
		u := processUsage()
		b.t.startCost.Store(&u)
		b.t.first.Store(time.Now().UnixNano())
	case b.t.want:
		b.t.last.Store(time.Now().UnixNano())
	}
}

// State ends every flush, after its windows are written; flushed follows it.
func (b *benchObserver) State(open, series, partitions int) {
	b.Observer.State(open, series, partitions)
	b.open.Store(int64(open))
	b.assigned.Store(int64(partitions))
}

// flushed is told, at the end of every flush of the member, its counters.
func (b *benchObserver) flushed(s pipeline.Stats) {
	b.t.mu.Lock()
	b.started = s.Started
	b.t.mu.Unlock()
	if b.t.consumed.Load() < b.t.want || !s.Started || b.consumed.Load() == 0 {
		return // a standby's flush says nothing of the records' windows
	}
	if b.t.spread && !b.t.spreadDone(b) {
		return
	}
	if b.t.flushed.CompareAndSwap(0, time.Now().UnixNano()) {
		u := processUsage()
		b.t.flushCost.Store(&u)
	}
	if !b.t.waitLast {
		b.t.doneOnce.Do(func() { close(b.t.done) })
		return
	}
	if b.open.Load() == 0 && b.assigned.Load() > 0 { // not a member that lost its partitions
		b.t.final.CompareAndSwap(0, time.Now().UnixNano())
		b.t.doneOnce.Do(func() { close(b.t.done) })
	}
}

func (b *benchObserver) Rebalanced() {
	b.Observer.Rebalanced()
	b.t.rebalances.Add(1)
	b.t.mu.Lock()
	b.started = false // its grace starts again
	b.t.mu.Unlock()
}

// spreadDone, called at the end of member b's flush once every record is read, says
// whether a spread group has judged everything its members closed: every member that
// read records is past its own start-up grace (since it was last assigned partitions),
// and since then each has flushed three times: the first writes
// its last windows and progress, and by the third every judge has read all of them. It
// overstates the time by up to about two flush intervals.
func (t *benchTracker) spreadDone(b *benchObserver) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now()
	if t.readAt.IsZero() {
		for _, m := range t.members {
			if m.consumed.Load() > 0 && !m.started {
				return false
			}
		}
		t.readAt = now
		return false
	}
	b.flushes++
	for _, m := range t.members {
		if m.consumed.Load() > 0 && m.flushes < 3 {
			return false
		}
	}
	return true
}

// peakSampler records, every 50 ms, the largest Go heap seen: its objects (live and
// garbage not yet collected, which depends on GOGC) and its live part as of the last
// collection (what the state really holds). With profile set, it writes a heap profile
// there whenever the live heap passes the last one written by 10%: the profile's in-use
// figures are as of the last collection too, so the last one written shows what held
// the peak.
func peakSampler(stop <-chan struct{}, peak, peakLive *atomic.Uint64, profile string) {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/gc/heap/live:bytes"}}
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	var profiled uint64
	for {
		metrics.Read(s)
		if v := s[0].Value.Uint64(); v > peak.Load() {
			peak.Store(v)
		}
		if v := s[1].Value.Uint64(); v > peakLive.Load() {
			peakLive.Store(v)
			if profile != "" && v > profiled+profiled/10 {
				if err := writeHeapProfile(profile, false); err != nil {
					fmt.Fprintln(os.Stderr, err)
					profile = ""
				}
				profiled = v
			}
		}
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}

// peakRSS reads the process's peak resident memory (VmHWM), engine included.
func peakRSS() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// driftdBench runs o.members copies of driftd run's job in one fresh consumer group on the
// topic until every record is read and every window written. The first member runs the
// embedded engine; the others write to it over HTTP, as members sharing a ClickHouse do.
func driftdBench(ctx context.Context, cfg config.Config, o throughputOptions, log *slog.Logger, res *throughputResult) error {
	dir, err := os.MkdirTemp("", "driftd-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	topic := res.topic
	cfg.Kafka.Topics.Predictions = topic
	// Topics of the bench's own, so that nothing else's events or alerts mix in; the
	// pipeline and label topics exist (empty), so upstream tracking and the label join run
	// as with the defaults.
	cfg.Kafka.Topics.Pipeline, cfg.Kafka.Topics.Alerts, cfg.Kafka.Topics.DLQ = topic+".pipeline-events", topic+".alerts", topic+".dlq"
	cfg.Kafka.Topics.Labels = topic + ".labels"
	cfg.Kafka.GroupID = "driftd-bench-" + randomSuffix()
	cfg.HTTP.Listen = ""
	cfg.ClickHouse.Embedded.Enabled, cfg.ClickHouse.Embedded.DataDir, cfg.ClickHouse.Embedded.Listen = true, dir+"/clickhouse", "127.0.0.1:0"
	if o.members > 1 && cfg.ClickHouse.Password.Reveal() == "" {
		// The other members are clients of the first member's engine: they write with the
		// configured password.
		cfg.ClickHouse.Password = config.Secret(randomSuffix() + randomSuffix())
	}
	ko, err := kafkaOptions(cfg)
	if err != nil {
		return err
	}
	if err := consumers.EnsureTopics(ctx, ko, 1, cfg.Kafka.Topics.Pipeline, cfg.Kafka.Topics.Labels, cfg.Kafka.Topics.Alerts, cfg.Kafka.Topics.DLQ); err != nil {
		return err
	}

	t := &benchTracker{want: int64(o.events), waitLast: o.waitLast, done: make(chan struct{}),
		spread: cfg.Kafka.GroupMode.Spread()}
	var peak, peakLive atomic.Uint64
	stopSampler := make(chan struct{})
	peakProfile := ""
	if o.memProfile != "" {
		peakProfile = o.memProfile + ".peak"
	}
	go peakSampler(stopSampler, &peak, &peakLive, peakProfile)
	// Peak RSS from here on: writing 5 to clear_refs resets VmHWM (Linux).
	os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	type member struct {
		stats pipeline.Stats
		mu    sync.Mutex
		err   chan error
	}
	members := make([]*member, o.members)
	ready := make(chan string, 1)
	for i := range members {
		m := &member{err: make(chan error, 1)}
		members[i] = m
		mcfg := cfg
		if i > 0 {
			addr := ""
			select {
			case addr = <-ready:
			case err := <-members[0].err:
				return fmt.Errorf("bench: driftd member 1 stopped before it was ready: %w", err)
			case <-ctx.Done():
				return ctx.Err()
			}
			ready <- addr
			mcfg.ClickHouse.Embedded.Enabled = false
			mcfg.ClickHouse.Addr, mcfg.ClickHouse.Protocol = addr, "http"
		}
		var b *benchObserver
		h := hooks{
			observe: func(obs pipeline.Observer) pipeline.Observer {
				b = &benchObserver{Observer: obs, t: t}
				t.mu.Lock()
				t.members = append(t.members, b)
				t.mu.Unlock()
				return b
			},
			onFlush: func(s pipeline.Stats) {
				m.mu.Lock()
				m.stats = s
				m.mu.Unlock()
				b.flushed(s)
			},
		}
		if i == 0 {
			h.ready = func(addr string) { ready <- addr }
		}
		go func() { m.err <- run(runCtx, mcfg, log.With("member", i+1), h) }()
	}
	var runErr error
	select {
	case <-t.done:
	case <-ctx.Done():
		runErr = fmt.Errorf("bench: driftd read %d of %d records: %w", t.consumed.Load(), o.events, ctx.Err())
	case err := <-members[0].err:
		runErr = fmt.Errorf("bench: driftd stopped: %w", err)
		members[0].err <- err
	}
	close(stopSampler)
	if o.memProfile != "" && runErr == nil {
		if err := writeHeapProfile(o.memProfile, true); err != nil {
			return err
		}
	}
	stop()
	for i, m := range members {
		if err := <-m.err; err != nil && !errors.Is(err, context.Canceled) && runErr == nil {
			runErr = fmt.Errorf("bench: driftd member %d: %w", i+1, err)
		}
		m.mu.Lock()
		res.windows += m.stats.WindowsClosed
		res.deadLettered += m.stats.DeadLettered
		m.mu.Unlock()
	}
	if runErr != nil {
		return runErr
	}
	first := t.first.Load()
	res.read = time.Duration(t.last.Load() - first)
	res.flushed = time.Duration(t.flushed.Load() - first)
	if o.waitLast {
		res.final = time.Duration(t.final.Load() - first)
	}
	res.driftdCost = t.flushCost.Load().sub(*t.startCost.Load())
	res.peakHeap, res.peakLive, res.peakRSS = peak.Load(), peakLive.Load(), peakRSS()
	res.rebalances = t.rebalances.Load()
	return nil
}

// writeHeapProfile writes a heap profile to path. collect: as of now (it collects
// first); otherwise as of the last collection (the one that measured a peak).
func writeHeapProfile(path string, collect bool) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("bench: heap profile: %w", err)
	}
	if collect {
		runtime.GC()
	}
	if err := pprof.WriteHeapProfile(f); err != nil {
		f.Close()
		return fmt.Errorf("bench: heap profile: %w", err)
	}
	return f.Close()
}

func rate(n int, d time.Duration) float64 { return float64(n) / d.Seconds() }

// printThroughput prints the result, one "name: value" line each.
func printThroughput(w io.Writer, o throughputOptions, r throughputResult) {
	mib := func(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
	perRecord := func(u usage) string {
		n := float64(o.events)
		return fmt.Sprintf("cpu %.1f s (%.1f µs/record), %.0f allocs and %.0f B allocated per record",
			u.cpu.Seconds(), u.cpu.Seconds()*1e6/n, float64(u.allocObjects)/n, float64(u.allocBytes)/n)
	}
	fmt.Fprintf(w, "records: %d (%s, %d features, %d partitions, %d models, keyed by %s)\n", o.events, o.format, o.features, o.partitions, o.models, o.keyedBy)
	fmt.Fprintf(w, "topic: %s (%s)\n", r.topic, fillNote(r))
	fmt.Fprintf(w, "bare consumer: %.0f records/s (%.2f s), %s\n", rate(o.events, r.bare), r.bare.Seconds(), perRecord(r.bareCost))
	fmt.Fprintf(w, "driftd: %.0f records/s (%.2f s to the flush after the last record), %s\n", rate(o.events, r.flushed), r.flushed.Seconds(), perRecord(r.driftdCost))
	fmt.Fprintf(w, "ratio: %.1f%%\n", 100*r.bare.Seconds()/r.flushed.Seconds())
	fmt.Fprintf(w, "driftd last record read: %.2f s\n", r.read.Seconds())
	if o.waitLast {
		fmt.Fprintf(w, "driftd last window written: %.2f s (the last windows close on the wall clock: at their end plus lateness, after windows.idle_close %s without events)\n", r.final.Seconds(), r.idleClose)
	}
	fmt.Fprintf(w, "driftd memory: peak live heap %s, peak heap %s (garbage included), peak RSS %s (the process: engine included)\n", mib(r.peakLive), mib(r.peakHeap), mib(r.peakRSS))
	fmt.Fprintf(w, "driftd windows: %d written, %d records dead-lettered, %d rebalances\n", r.windows, r.deadLettered, r.rebalances)
	mode := "active/standby: one member reads every partition and judges everything; the others wait to take over"
	if r.spread {
		mode = "spread: each member reads its share of the partitions; each model is judged by the reader of one partition, " +
			"from every member's windows (timed to three flushes of every member after the last record and their graces: up to ~2 flush intervals over)"
	}
	fmt.Fprintf(w, "members: %d (%s)\n", r.members, mode)
	fmt.Fprintf(w, "cores: %d\n", runtime.NumCPU())
}
