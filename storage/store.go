// Package storage writes driftd's results to ClickHouse and reads back what a restart
// needs (closed windows, reference profiles, alert states), through clickhouse-go/v2 over
// the native protocol (a ClickHouse server) or HTTP (a server or the embedded engine).
package storage

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/driftd/driftd/detectors"
	"github.com/driftd/driftd/internal/retry"
	"github.com/driftd/driftd/processors"
	"github.com/driftd/driftd/schemas"
	dsql "github.com/driftd/driftd/sql"
)

// Options say how to reach ClickHouse.
type Options struct {
	Addr     string   // host:port
	Protocol Protocol // native (also when empty) or http
	Database string
	Username string
	Password string
	// TLS, if set, is used for the connection (nil: plain).
	TLS *tls.Config
	// MaxBatchRows bounds the rows of one INSERT (clickhouse-go builds a batch in memory).
	MaxBatchRows int
	// Cluster, when set, is the ClickHouse cluster the tables are laid out on (replicated
	// local tables behind Distributed ones; docs/clickhouse-cluster.md), and ReplicaPath
	// the Keeper path prefix of their replicas ("": sql.DefaultReplicaPath).
	Cluster     string
	ReplicaPath string
}

// Store is driftd's ClickHouse sink and state source.
type Store struct {
	conn    driver.Conn
	addr    string
	db      string
	layout  dsql.Layout // TTLDays unset: Migrate is told it
	log     *slog.Logger
	maxRows int
	// joinPage is how many predictions a page of the label join holds (joinPage).
	joinPage int
	// spreadGroup: restores read windows only up to judge_progress (ForSpreadGroup).
	spreadGroup bool
	// keyCols holds *keyColumns between writes of prediction keys (writeKeys): their
	// arrays hold a batch of keys, one per prediction, which would otherwise be made
	// again for every batch. Shared by the views of the store (ForSpreadGroup).
	keyCols *sync.Pool
	// types: the column types of inserts over HTTP (nil over the native protocol).
	types *insertTypes
}

// ForSpreadGroup returns a view of s for a member of a spread group, which shares s's
// connection (close s, not the view): its restores read each model's windows only up to
// judge_progress, since such a group writes partials before they are judged. One
// member's restores read every window written, as before migration 0017: during a
// rolling upgrade an older member writes windows without judge_progress.
func (s *Store) ForSpreadGroup() *Store {
	v := *s
	v.spreadGroup = true
	return &v
}

// Open connects and checks the connection.
func Open(ctx context.Context, o Options, log *slog.Logger) (*Store, error) {
	if !dsql.ValidIdentifier(o.Database) {
		return nil, fmt.Errorf("clickhouse.database %q: use letters, digits and underscores", o.Database)
	}
	if err := dsql.CheckCluster(o.Cluster); err != nil {
		return nil, fmt.Errorf("clickhouse.cluster: %w", err)
	}
	if o.Cluster != "" && o.ReplicaPath != "" {
		if err := dsql.CheckReplicaPath(o.ReplicaPath); err != nil {
			return nil, fmt.Errorf("clickhouse.replica_path: %w", err)
		}
	}
	opts := &clickhouse.Options{
		Addr:        []string{o.Addr},
		Auth:        clickhouse.Auth{Username: o.Username, Password: o.Password},
		DialTimeout: 5 * time.Second,
		ReadTimeout: 60 * time.Second,
	}
	switch o.Protocol {
	case "", ProtocolNative:
		opts.Protocol = clickhouse.Native
	case ProtocolHTTP:
		opts.Protocol = clickhouse.HTTP
	default:
		_, err := ParseProtocol(string(o.Protocol))
		return nil, fmt.Errorf("clickhouse.protocol: %w", err)
	}
	opts.TLS = o.TLS
	conn, err := clickhouse.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("open clickhouse %s: %w", o.Addr, err)
	}
	if err := conn.Ping(ctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("connect to clickhouse %s (%s): %w", o.Addr, opts.Protocol, err)
	}
	if o.MaxBatchRows <= 0 {
		o.MaxBatchRows = 50000
	}
	s := &Store{conn: conn, addr: o.Addr, db: o.Database, log: log, maxRows: o.MaxBatchRows, joinPage: joinPage,
		keyCols: &sync.Pool{New: func() any { return new(keyColumns) }},
		layout:  dsql.Layout{Database: o.Database, Cluster: o.Cluster, ReplicaPath: o.ReplicaPath}}
	if opts.Protocol == clickhouse.HTTP {
		s.types = &insertTypes{}
	}
	return s, nil
}

// writing is the context of driftd's inserts. On a cluster they go through Distributed
// tables, which by default queue the rows on the local disk and return before any shard
// has them; insert_distributed_sync makes the INSERT return only once every shard has
// written its part, so that a flush is stored before its offsets are committed, and a
// retried block reaches the shard's replicated table as the same block (deduplicated).
// (distributed_foreground_insert since ClickHouse 23.11; the old name is its alias there
// and is also understood by servers before.)
func (s *Store) writing(ctx context.Context) context.Context { return s.writingWith(ctx, nil) }

// writingWith is writing's context with further settings of the insert.
func (s *Store) writingWith(ctx context.Context, set clickhouse.Settings) context.Context {
	if s.layout.Cluster != "" {
		set = maps.Clone(set)
		if set == nil {
			set = clickhouse.Settings{}
		}
		set["insert_distributed_sync"] = 1
	}
	if len(set) == 0 {
		return ctx
	}
	return clickhouse.Context(ctx, clickhouse.WithSettings(set))
}

// Close closes the connection.
func (s *Store) Close() error { return s.conn.Close() }

// Conn exposes the connection for queries (tests, the CLI).
func (s *Store) Conn() driver.Conn { return s.conn }

// Addr is the address the store is connected to.
func (s *Store) Addr() string { return s.addr }

// Database is the database driftd writes to.
func (s *Store) Database() string { return s.db }

// Migrate creates the database and applies every migration not applied yet, recording
// each in schema_migrations. It is safe to run concurrently from several instances:
// every statement is idempotent. On a cluster every DDL statement runs ON CLUSTER, and
// waits (distributed_ddl_task_timeout, 180 s by default) until every host has run it.
func (s *Store) Migrate(ctx context.Context, ttlDays int) ([]string, error) {
	if ttlDays <= 0 {
		return nil, fmt.Errorf("retention must be at least one day, got %d", ttlDays)
	}
	l := s.layout
	l.TTLDays = ttlDays
	migs, err := dsql.Migrations(l)
	if err != nil {
		return nil, err
	}
	setup, err := dsql.Setup(l)
	if err != nil {
		return nil, err
	}
	ctx = s.writing(ctx)
	for _, q := range setup {
		if err := s.conn.Exec(ctx, q); err != nil {
			return nil, fmt.Errorf("migrate: %w", err)
		}
	}
	applied := map[uint32]bool{}
	rows, err := s.conn.Query(ctx, "SELECT DISTINCT version FROM "+s.db+".schema_migrations")
	if err != nil {
		return nil, fmt.Errorf("read applied migrations: %w", err)
	}
	for rows.Next() {
		var v uint32
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read applied migrations: %w", err)
		}
		applied[v] = true
	}
	rows.Close()
	var done []string
	for _, m := range migs {
		if applied[m.Version] {
			continue
		}
		for i, stmt := range m.Statements {
			if err := s.conn.Exec(ctx, stmt); err != nil {
				return done, fmt.Errorf("migration %04d_%s statement %d: %w", m.Version, m.Name, i+1, err)
			}
		}
		b, err := s.conn.PrepareBatch(ctx, "INSERT INTO "+s.db+".schema_migrations (version, name, applied_at)")
		if err != nil {
			return done, fmt.Errorf("record migration %d: %w", m.Version, err)
		}
		if err := b.Append(m.Version, m.Name, time.Now().UTC()); err != nil {
			return done, fmt.Errorf("record migration %d: %w", m.Version, err)
		}
		if err := b.Send(); err != nil {
			return done, fmt.Errorf("record migration %d: %w", m.Version, err)
		}
		done = append(done, fmt.Sprintf("%04d_%s", m.Version, m.Name))
	}
	return done, nil
}

// Migrated reports whether every migration has been applied.
func (s *Store) Migrated(ctx context.Context) (bool, error) {
	migs, err := dsql.Migrations(dsql.Layout{Database: s.db, TTLDays: 1})
	if err != nil {
		return false, err
	}
	var n uint64
	if err := s.conn.QueryRow(ctx, "SELECT uniqExact(version) FROM "+s.db+".schema_migrations").Scan(&n); err != nil {
		return false, err
	}
	return int(n) >= len(migs), nil
}

// Ready reports whether ClickHouse answers and every migration is applied.
func (s *Store) Ready(ctx context.Context) error {
	if err := s.conn.Ping(ctx); err != nil {
		return fmt.Errorf("clickhouse: %w", err)
	}
	ok, err := s.Migrated(ctx)
	if err != nil {
		return fmt.Errorf("clickhouse migrations: %w", err)
	}
	if !ok {
		return errors.New("clickhouse migrations not applied")
	}
	return nil
}

// LateEvent is one event that arrived after its window closed.
type LateEvent struct {
	Source     processors.Source
	EventID    string
	Series     processors.SeriesKey
	Start, End int64
	EventTime  time.Time
}

// MultivariateFeature names the joint (PCA) score in drift_scores; its statistic is the
// reconstruction error.
const MultivariateFeature = "__multivariate__"

// StageRow is one pipeline stage's partial window (one source partition).
type StageRow struct {
	Pipeline, Stage                  string
	Start, End                       time.Time
	TP                               processors.TopicPartition
	FirstOffset, LastOffset          int64
	Runs, Failures                   uint64
	DurationP50, DurationP90         float64
	DurationP99, DurationMax         float64
	RecordsIn, RecordsOut, NullCount float64
	LastSuccess                      time.Time
	Errors                           map[string]uint64
}

// Batch is what one flush writes: closed windows with their verdicts, late events and
// alerts. Every row is keyed so that writing the same batch twice changes nothing.
type Batch struct {
	Closed   []processors.Closed
	Stages   []StageRow
	Verdicts []detectors.Verdict
	Late     []LateEvent
	Alerts   []*schemas.AlertEvent
	// AlertStates are the alerter's states this batch's judging changed; StageStates the
	// stages as of the end of the stage windows judged; ReferenceSamples what the windows
	// add to references still being built (migration 0006).
	AlertStates      []detectors.FingerprintState
	StageStates      []StageState
	ReferenceSamples []ReferenceSample
	// Performance are settled windows' performance rows, each with its series' concept
	// drift detector state after it (migrations 0009, 0010).
	Performance []PerformanceRow
	// Canary are canary windows compared with the primary's (migration 0013); Shadow
	// shadow windows joined to the primary's predictions (0014).
	Canary []detectors.CanaryComparison
	Shadow []ShadowRow
	// Spread judging (migration 0017): the partitions' shares of first windows written
	// with their partials; how far each model is judged (after the judgement, before the
	// partials' rows); how far each partition's windows are written (last of all). A
	// window in Closed without partials was read back and judged: its partials' rows are
	// written again with its judgement.
	SampleParts   []SamplePart
	JudgedThrough []JudgeProgress
	// StageRuns are the finished runs read from the pipeline topic (migration 0018),
	// written before Progress (a pipeline partition's clock says its runs are written).
	StageRuns []StageRun
	Progress  []PartitionProgress
	WrittenAt time.Time

	verdicts map[windowKey]int // Verdicts by window (verdict), built over the first indexed
	indexed  int
}

// windowKey names one window of one series.
type windowKey struct {
	series processors.SeriesKey
	start  int64 // unix ms
}

// Empty reports whether the batch has nothing to write.
func (b *Batch) Empty() bool {
	return len(b.Closed) == 0 && len(b.Stages) == 0 && len(b.Late) == 0 && len(b.Alerts) == 0 &&
		len(b.AlertStates) == 0 && len(b.StageStates) == 0 && len(b.ReferenceSamples) == 0 &&
		len(b.Performance) == 0 && len(b.Canary) == 0 && len(b.Shadow) == 0 &&
		len(b.SampleParts) == 0 && len(b.JudgedThrough) == 0 && len(b.Progress) == 0 && len(b.StageRuns) == 0
}

// inserter fills one table in blocks of at most maxRows rows that touch at most
// MaxPartitionsPerBlock of its partitions.
type inserter struct {
	s     *Store
	ctx   context.Context
	t     table
	batch driver.Batch
	rows  int
	parts map[int64]bool
}

func (s *Store) inserter(ctx context.Context, t table) *inserter {
	return &inserter{s: s, ctx: ctx, t: t, parts: map[int64]bool{}}
}

func (in *inserter) append(row []any) error {
	if in.t.partition != nil {
		p := in.t.partition(row)
		if !in.parts[p] && len(in.parts) >= MaxPartitionsPerBlock {
			if err := in.flush(); err != nil {
				return err
			}
		}
		in.parts[p] = true
	}
	if in.batch == nil {
		b, err := in.s.prepareInsert(in.s.writing(in.ctx), in.t)
		if err != nil {
			return err
		}
		in.batch = b
	}
	if err := in.batch.Append(row...); err != nil {
		in.s.insertFailed()
		return fmt.Errorf("append row to %s: %w", in.t.name, err)
	}
	in.rows++
	if in.rows >= in.s.maxRows {
		return in.flush()
	}
	return nil
}

func (in *inserter) flush() error {
	clear(in.parts)
	if in.batch == nil {
		return nil
	}
	b := in.batch
	in.batch, in.rows = nil, 0
	return in.s.sendInsert(in.t, b)
}

func ms(t int64) time.Time { return time.UnixMilli(t).UTC() }

// finite keeps NaN and ±Inf out of ClickHouse, where they would poison sums.
func finite(f float64) float64 {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0
	}
	return f
}

// Write writes a batch. It does not retry; see WriteWithRetry.
func (s *Store) Write(ctx context.Context, b *Batch) error {
	at := b.WrittenAt.UTC()
	feats := s.inserter(ctx, featureStats())
	for _, c := range b.Closed {
		for _, p := range c.Partials {
			for _, row := range featureRows(p, at) {
				if err := feats.append(row); err != nil {
					return err
				}
			}
		}
	}
	if err := feats.flush(); err != nil {
		return err
	}
	scores := s.inserter(ctx, driftScores())
	for _, v := range b.Verdicts {
		for _, row := range scoreRows(v, at) {
			if err := scores.append(row); err != nil {
				return err
			}
		}
	}
	if err := scores.flush(); err != nil {
		return err
	}
	late := s.inserter(ctx, lateEvents())
	for _, l := range b.Late {
		if err := late.append(lateRow(l, at)); err != nil {
			return err
		}
	}
	if err := late.flush(); err != nil {
		return err
	}
	if err := s.writeCanary(ctx, b); err != nil {
		return err
	}
	if err := s.writeShadow(ctx, b); err != nil {
		return err
	}
	if err := s.writeState(ctx, b); err != nil {
		return err
	}
	if err := s.writeSampleParts(ctx, b); err != nil {
		return err
	}
	if err := s.writeStageRuns(ctx, b); err != nil {
		return err
	}
	// Alerts go before the alerter's states: a state found stored after a crash has its
	// alerts stored too.
	alerts := s.inserter(ctx, alertRows())
	for _, a := range b.Alerts {
		if err := alerts.append(alertRow(a)); err != nil {
			return err
		}
	}
	if err := alerts.flush(); err != nil {
		return err
	}
	if err := s.writeAlertStates(ctx, b); err != nil {
		return err
	}
	if err := s.writePerformance(ctx, b); err != nil {
		return err
	}
	// pipeline_stage_stats and window_model_stats are written last: a restart reads them
	// to tell which windows are written (LoadClosedStageWindows, LoadClosedWindows), so
	// their rows must not exist before the window's other rows, scores, late events,
	// alerts and detection state do.
	stages := s.inserter(ctx, stageStats())
	for _, r := range b.Stages {
		if err := stages.append(stageRow(r, at)); err != nil {
			return err
		}
	}
	if err := stages.flush(); err != nil {
		return err
	}
	models := s.inserter(ctx, modelStats())
	for _, c := range b.Closed {
		version := b.partialVersion(c.Merged, s.spreadGroup)
		for _, p := range c.Partials {
			if err := models.append(modelRow(b, c, p, version)); err != nil {
				return err
			}
		}
	}
	if err := models.flush(); err != nil {
		return err
	}
	// After every row of the windows judged (a spread judge's empty windows are new rows
	// here): judge_progress never covers a window whose rows are not written, so a judge
	// that restarts after a cut-off write judges it again rather than leave a hole.
	if err := s.writeJudgement(ctx, b); err != nil {
		return err
	}
	return s.writeProgress(ctx, b)
}

// partialVersion is the written_at of window w's partial rows. A spread group writes them
// before w is judged and may write them again after (a partition's new owner reads again
// the records its previous owner wrote but had not committed): unjudged, they take w's
// end as their version, which the judge's copy (rewriteJudged: after w's end) always
// beats, so a late copy of the same contents cannot take the judgement away whatever the
// clocks. One member (spread false) writes a window's rows once, judged.
func (b *Batch) partialVersion(w *processors.WindowAgg, spread bool) time.Time {
	at := b.WrittenAt.UTC()
	if !spread {
		return at
	}
	end := time.UnixMilli(w.End).UTC()
	if b.verdict(w) == nil {
		return end
	}
	if judged := end.Add(time.Millisecond); judged.After(at) {
		return judged
	}
	return at
}

// verdict returns the verdict of window w, if the batch has one. The index is built on
// first use: a flush writes a row per partition of every window, and scanning the
// verdicts for each made writing quadratic in the windows of a flush.
func (b *Batch) verdict(w *processors.WindowAgg) *detectors.Verdict {
	if b.verdicts == nil || b.indexed != len(b.Verdicts) {
		b.verdicts, b.indexed = make(map[windowKey]int, len(b.Verdicts)), len(b.Verdicts)
		for i, v := range b.Verdicts {
			k := windowKey{v.Window.Series, v.Window.Start}
			if _, dup := b.verdicts[k]; !dup {
				b.verdicts[k] = i
			}
		}
	}
	if i, ok := b.verdicts[windowKey{w.Series, w.Start}]; ok {
		return &b.Verdicts[i]
	}
	return nil
}

// Backoff is how writes wait between attempts and when they give up (retry.Policy).
type Backoff = retry.Policy

// DefaultBackoff doubles from 200 ms up to 15 s between attempts and never gives up.
var DefaultBackoff = Backoff{Initial: 200 * time.Millisecond, Max: 15 * time.Second}

// WriteWithRetry writes b, retrying retryable errors with backoff until it succeeds, ctx
// ends, or bo.MaxOutage passes (an error wrapping retry.ErrOutage). It returns a fatal
// error at once: the caller sets those rows aside.
func (s *Store) WriteWithRetry(ctx context.Context, b *Batch, bo Backoff, onRetry func(error)) error {
	return retry.Do(ctx, bo, "write to clickhouse", Classify, func(a retry.Attempt) {
		if a.Wait == 0 { // not retried: Do returns this error
			return
		}
		if onRetry != nil {
			onRetry(a.Err)
		}
		s.log.Warn("clickhouse write failed; retrying", "err", a.Err, "attempt", a.N, "failing_for", a.Elapsed.Round(time.Millisecond), "in", a.Wait.Round(time.Millisecond))
	}, func(ctx context.Context) error { return s.Write(ctx, b) })
}

// SaveReference stores a reference profile (a new version if its content is new).
func (s *Store) SaveReference(ctx context.Context, p *detectors.Profile) error {
	body, err := detectors.MarshalProfile(p)
	if err != nil {
		return err
	}
	in := s.inserter(ctx, table{name: "reference_profiles", cols: "model, model_version, reference_id, source, created_at, windows, events, profile"})
	if err := in.append([]any{p.Model, p.Version, p.ID, p.Source, p.CreatedAt.UTC(), uint32(p.Windows), p.Events, string(body)}); err != nil {
		return err
	}
	return in.flush()
}

// LoadReferences returns the newest reference profile of every model version.
func (s *Store) LoadReferences(ctx context.Context) ([]*detectors.Profile, error) {
	rows, err := s.conn.Query(ctx, "SELECT argMax(profile, created_at) FROM "+s.db+".reference_profiles FINAL GROUP BY model, model_version")
	if err != nil {
		return nil, fmt.Errorf("load reference profiles: %w", err)
	}
	defer rows.Close()
	var out []*detectors.Profile
	for rows.Next() {
		var body string
		if err := rows.Scan(&body); err != nil {
			return nil, fmt.Errorf("load reference profiles: %w", err)
		}
		p, err := detectors.UnmarshalProfile([]byte(body))
		if err != nil {
			return nil, fmt.Errorf("load reference profiles: %w: %w", ErrUnreadable, err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// ClosedWindow is a window already written for one partition.
type ClosedWindow struct {
	Model      string
	Start, End int64
	TP         processors.TopicPartition
	LastOffset int64
}

// LoadClosedWindows returns, per model, the windows written within lookback of its
// newest window, with the last offset written per partition.
func (s *Store) LoadClosedWindows(ctx context.Context, lookback time.Duration) ([]ClosedWindow, error) {
	return s.loadClosed(ctx, "window_model_stats", "model", "last_offset", lookback)
}

// LoadClosedStageWindows is LoadClosedWindows for pipeline stages (Model holds the
// pipeline name).
func (s *Store) LoadClosedStageWindows(ctx context.Context, lookback time.Duration) ([]ClosedWindow, error) {
	return s.loadClosed(ctx, "pipeline_stage_stats", "pipeline", "last_offset", lookback)
}

// The subqueries of IN and JOIN are GLOBAL throughout: on a cluster the tables are
// Distributed, and the engine refuses a subquery over a Distributed table run on every
// shard (code 288, distributed_product_mode 'deny'; seen in the engine here), which would
// also see only that shard's rows. GLOBAL runs it once and ships its result to the
// shards; on one server it changes nothing.
func (s *Store) loadClosed(ctx context.Context, table, group, offset string, lookback time.Duration) ([]ClosedWindow, error) {
	q := fmt.Sprintf(`SELECT w.%[3]s, w.window_start, any(w.window_end), w.topic, w.partition, max(w.%[5]s)
FROM %[1]s.%[2]s AS w
GLOBAL INNER JOIN (SELECT %[3]s, max(window_start) AS latest FROM %[1]s.%[2]s GROUP BY %[3]s) AS l ON w.%[3]s = l.%[3]s
WHERE w.window_start >= l.latest - toIntervalSecond(%[4]d)
GROUP BY w.%[3]s, w.window_start, w.topic, w.partition`, s.db, table, group, int64(lookback.Seconds()), offset)
	rows, err := s.conn.Query(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("load closed windows of %s: %w", table, err)
	}
	out, err := closedWindows(rows)
	if err != nil {
		return nil, fmt.Errorf("load closed windows of %s: %w", table, err)
	}
	return out, nil
}

// closedWindows reads rows of (model, window_start, window_end, topic, partition,
// last offset) into ClosedWindows, and closes them.
func closedWindows(rows driver.Rows) ([]ClosedWindow, error) {
	defer rows.Close()
	var out []ClosedWindow
	for rows.Next() {
		var (
			c          ClosedWindow
			start, end time.Time
			part       int32
		)
		if err := rows.Scan(&c.Model, &start, &end, &c.TP.Topic, &part, &c.LastOffset); err != nil {
			return nil, err
		}
		c.Start, c.End, c.TP.Partition = start.UnixMilli(), end.UnixMilli(), int(part)
		out = append(out, c)
	}
	return out, rows.Err()
}

// LoadWindow rebuilds a stored window of one series, its partitions merged in the order
// the processor merges them (topic, partition), for a rolling reference or a low-volume
// merge: features with their bins against the reference's edges, service counts and the
// joint co-moments, so that it is judged as the window in memory was. It returns nil when
// the window was not written.
func (s *Store) LoadWindow(ctx context.Context, series processors.SeriesKey, start time.Time) (*processors.WindowAgg, error) {
	ws, err := s.loadWindows(ctx, series.Model, `model_version = {version:String} AND deployment = {deployment:String} AND window_start = {start:DateTime64(3, 'UTC')}`,
		clickhouse.Named("version", series.Version), clickhouse.Named("deployment", series.Deployment), clickhouse.Named("start", chTime(start)))
	if err != nil {
		return nil, fmt.Errorf("load window %v at %v: %w", series, start, err)
	}
	if len(ws) == 0 {
		return nil, nil
	}
	return ws[0], nil
}

// LoadWindows rebuilds, as LoadWindow does, every stored window of model ending after
// after and at or before through (every version and deployment), in start order and then
// by version and deployment: a spread group's judge reads a model's complete windows
// back with two queries, not two per window. Empty windows the judge gave silent series
// are left out (it makes them again).
func (s *Store) LoadWindows(ctx context.Context, model string, after, through time.Time) ([]*processors.WindowAgg, error) {
	ws, err := s.loadWindows(ctx, model, `window_end > {after:DateTime64(3, 'UTC')} AND window_end <= {through:DateTime64(3, 'UTC')}`,
		clickhouse.Named("after", chTime(after)), clickhouse.Named("through", chTime(through)))
	if err != nil {
		return nil, fmt.Errorf("load the windows of %s from %v to %v: %w", model, after, through, err)
	}
	return ws, nil
}

// loadWindows rebuilds the windows of model whose rows match where (with args).
func (s *Store) loadWindows(ctx context.Context, model, where string, args ...any) ([]*processors.WindowAgg, error) {
	args = append(args, clickhouse.Named("model", model))
	rows, err := s.conn.Query(ctx, `SELECT model_version, deployment, window_start, window_end, feature, kind, count, missing, mismatched, mean, std, min, max,
  sketch, categories, unseen, reference_id, bin_edges, bin_counts, raw
FROM `+s.db+`.window_feature_stats FINAL
WHERE model = {model:String} AND `+where+`
ORDER BY window_start, model_version, deployment, topic, partition, feature`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	type window struct {
		key        windowKey
		end        int64
		parts      []processors.StoredFeature
		aggregated *processors.WindowAgg
	}
	var ws []*window
	byKey := map[windowKey]*window{}
	for rows.Next() {
		var (
			f          processors.StoredFeature
			sketch     string
			k          windowKey
			start, end time.Time
		)
		k.series.Model = model
		if err := rows.Scan(&k.series.Version, &k.series.Deployment, &start, &end, &f.Name, &f.Kind, &f.Count, &f.Missing, &f.Mismatched,
			&f.Mean, &f.Std, &f.Min, &f.Max, &sketch, &f.Categories, &f.Unseen, &f.ReferenceID, &f.Edges, &f.Bins, &f.Raw); err != nil {
			return nil, err
		}
		f.Sketch = []byte(sketch)
		k.start = start.UnixMilli()
		w, ok := byKey[k]
		if !ok {
			w = &window{key: k, end: end.UnixMilli()}
			byKey[k] = w
			ws = append(ws, w)
		}
		w.parts = append(w.parts, f)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows.Close()
	if len(ws) == 0 {
		return nil, nil
	}
	out := make([]*processors.WindowAgg, len(ws))
	for i, w := range ws {
		agg, err := processors.RebuildWindow(w.key.series, w.key.start, w.end, w.parts)
		if err != nil {
			return nil, fmt.Errorf("%v at %v: %w: %w", w.key.series, ms(w.key.start), ErrUnreadable, err)
		}
		w.aggregated, out[i] = agg, agg
	}
	return out, s.loadService(ctx, model, where, args, func(k windowKey) *processors.WindowAgg {
		if w, ok := byKey[k]; ok {
			return w.aggregated
		}
		return nil
	})
}

// loadService adds rebuilt windows' service counts (events, statuses, latency, input
// size, the joint co-moments) from their window_model_stats rows, so that they can be
// judged again, not only serve as a reference. window gives the rebuilt window of a key
// (nil: none).
func (s *Store) loadService(ctx context.Context, model, where string, args []any, window func(windowKey) *processors.WindowAgg) error {
	rows, err := s.conn.Query(ctx, `SELECT model_version, deployment, window_start, events, ok, errors, timeouts, null_predictions, latency_sketch, latency_max,
  input_size_count, input_size_mean, input_size_std, input_size_min, input_size_max, dropped_features,
  joint_n, joint_mean, joint_comoments
FROM `+s.db+`.window_model_stats FINAL
WHERE model = {model:String} AND `+where+` AND partition >= 0
ORDER BY window_start, model_version, deployment, topic, partition`, args...)
	if err != nil {
		return fmt.Errorf("load service counts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			p      processors.StoredService
			sketch string
			inputN uint64
			k      windowKey
			start  time.Time
		)
		k.series.Model = model
		if err := rows.Scan(&k.series.Version, &k.series.Deployment, &start, &p.Events, &p.OK, &p.Errors, &p.Timeouts, &p.NullPredictions, &sketch, &p.LatencyMax,
			&inputN, &p.InputSize.Mean, &p.InputSizeStd, &p.InputSize.Min, &p.InputSize.Max, &p.DroppedFeatures,
			&p.Joint.N, &p.Joint.Mean, &p.Joint.C); err != nil {
			return fmt.Errorf("load service counts: %w", err)
		}
		k.start = start.UnixMilli()
		w := window(k)
		if w == nil {
			continue
		}
		p.InputSize.N, p.LatencySketch = float64(inputN), []byte(sketch)
		if err := w.AddService(p); err != nil {
			return fmt.Errorf("load service counts of %v at %v: %w: %w", k.series, ms(k.start), ErrUnreadable, err)
		}
	}
	return rows.Err()
}

// SeriesEnd is where a series' written windows end: the last window, and the last one
// with events (a silent series is given empty windows from there; pipeline/volume.go).
type SeriesEnd struct {
	Series        processors.SeriesKey
	Size          time.Duration
	End, LastData time.Time
}

// LoadSeriesEnds returns every series' last written window within lookback of the newest
// window written.
func (s *Store) LoadSeriesEnds(ctx context.Context, lookback time.Duration) ([]SeriesEnd, error) {
	join, cond := s.judgedOnly()
	rows, err := s.conn.Query(ctx, `SELECT model, model_version, deployment, toInt64(argMax(dateDiff('millisecond', window_start, window_end), window_end)), max(window_end), maxIf(window_end, events > 0)
FROM (SELECT w.model AS model, w.model_version AS model_version, w.deployment AS deployment, w.window_start AS window_start, any(w.window_end) AS window_end, sum(w.events) AS events
      FROM `+s.db+`.window_model_stats AS w FINAL `+join+`
      WHERE w.window_start >= (SELECT max(window_start) FROM `+s.db+`.window_model_stats) - toIntervalSecond({lookback:UInt64}) AND `+cond+`
      GROUP BY model, model_version, deployment, window_start)
GROUP BY model, model_version, deployment`, clickhouse.Named("lookback", fmt.Sprint(uint64(lookback.Seconds()))))
	if err != nil {
		return nil, fmt.Errorf("load series ends: %w", err)
	}
	defer rows.Close()
	var out []SeriesEnd
	for rows.Next() {
		var e SeriesEnd
		var sizeMs int64
		if err := rows.Scan(&e.Series.Model, &e.Series.Version, &e.Series.Deployment, &sizeMs, &e.End, &e.LastData); err != nil {
			return nil, fmt.Errorf("load series ends: %w", err)
		}
		e.Size, e.End, e.LastData = time.Duration(sizeMs)*time.Millisecond, e.End.UTC(), e.LastData.UTC()
		out = append(out, e)
	}
	return out, rows.Err()
}

// WindowVolume is one written window's volume judgement: its events, the events it was
// expected to hold (0 when its volume was not judged against an expectation it fell short
// of) and whether it was judged low.
type WindowVolume struct {
	Series     processors.SeriesKey
	Start, End time.Time
	Events     uint64
	Expected   float64
	Low        bool
}

// LoadVolumeWindows returns, per series, its windows within lookback of the newest
// window from its perSeries-th newest window not judged low on (every one within
// lookback when it has fewer), oldest first, with their volume judgements: a restart
// rebuilds each series' recent volume and its run of windows below expectation from
// them. Counted in windows not judged low, so that a drop longer than perSeries windows
// (an hour of 10-second windows) still finds the windows before it, which it is judged
// against.
func (s *Store) LoadVolumeWindows(ctx context.Context, lookback time.Duration, perSeries int) ([]WindowVolume, error) {
	join, cond := s.judgedOnly()
	rows, err := s.conn.Query(ctx, `SELECT model, model_version, deployment, window_start, window_end, ev, expected, low FROM (
  SELECT *, sum(toUInt64(low = 0)) OVER (PARTITION BY model, model_version, deployment ORDER BY window_start DESC
                                         ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS kept_since
  FROM (
    SELECT w.model AS model, w.model_version AS model_version, w.deployment AS deployment, w.window_start AS window_start, any(w.window_end) AS window_end, sum(w.events) AS ev,
           max(w.expected_events) AS expected, max(w.volume_low) AS low
    FROM `+s.db+`.window_model_stats AS w FINAL `+join+`
    WHERE w.window_start >= (SELECT max(window_start) FROM `+s.db+`.window_model_stats) - toIntervalSecond({lookback:UInt64}) AND `+cond+`
    GROUP BY model, model_version, deployment, window_start))
WHERE kept_since < {per:UInt64} OR (kept_since = {per:UInt64} AND low = 0)
ORDER BY window_start, model, model_version, deployment`, clickhouse.Named("lookback", fmt.Sprint(uint64(lookback.Seconds()))), clickhouse.Named("per", fmt.Sprint(perSeries)))
	if err != nil {
		return nil, fmt.Errorf("load volume windows: %w", err)
	}
	defer rows.Close()
	var out []WindowVolume
	for rows.Next() {
		var w WindowVolume
		var low uint8
		if err := rows.Scan(&w.Series.Model, &w.Series.Version, &w.Series.Deployment, &w.Start, &w.End, &w.Events, &w.Expected, &low); err != nil {
			return nil, fmt.Errorf("load volume windows: %w", err)
		}
		w.Start, w.End, w.Low = w.Start.UTC(), w.End.UTC(), low != 0
		out = append(out, w)
	}
	return out, rows.Err()
}

// HourlyEvents is a series' events in one hour, from its written windows: how many
// windows started in the hour and how many of them were empty.
type HourlyEvents struct {
	Series         processors.SeriesKey
	Hour           time.Time
	Events         uint64
	Windows, Empty uint64
	Squares        float64 // the sum of the squares of its windows' events
}

// LoadHourlyEvents returns every series' events per hour within lookback of its newest
// window (the same-hour volume expectations after a restart).
func (s *Store) LoadHourlyEvents(ctx context.Context, lookback time.Duration) ([]HourlyEvents, error) {
	join, cond := s.judgedOnly()
	rows, err := s.conn.Query(ctx, `SELECT model, model_version, deployment, toStartOfHour(window_start) AS hour, sum(ev), count(), countIf(ev = 0), sum(toFloat64(ev) * ev)
FROM (SELECT w.model AS model, w.model_version AS model_version, w.deployment AS deployment, w.window_start AS window_start, sum(w.events) AS ev
      FROM `+s.db+`.window_model_stats AS w FINAL `+join+`
      WHERE w.window_start >= (SELECT max(window_start) FROM `+s.db+`.window_model_stats) - toIntervalSecond({lookback:UInt64}) AND `+cond+`
      GROUP BY model, model_version, deployment, window_start)
GROUP BY model, model_version, deployment, hour ORDER BY hour`, clickhouse.Named("lookback", fmt.Sprint(uint64(lookback.Seconds()))))
	if err != nil {
		return nil, fmt.Errorf("load hourly events: %w", err)
	}
	defer rows.Close()
	var out []HourlyEvents
	for rows.Next() {
		var h HourlyEvents
		var hour time.Time
		if err := rows.Scan(&h.Series.Model, &h.Series.Version, &h.Series.Deployment, &hour, &h.Events, &h.Windows, &h.Empty, &h.Squares); err != nil {
			return nil, fmt.Errorf("load hourly events: %w", err)
		}
		h.Hour = hour.UTC()
		out = append(out, h)
	}
	return out, rows.Err()
}

// StageHistory is one stage's stored window: what it adds to the baselines of later ones
// and its latest success.
type StageHistory struct {
	Pipeline, Stage string
	Start           time.Time
	Point           detectors.StagePoint
	LastSuccess     time.Time
}

// LoadStageHistory returns every stage's windows within lookback of its newest window
// (the baselines and the last success after a restart): the output volume summed over
// the window's partials, the rest as its judge stored it with the window's state (none
// for a window judged by a driftd older than migration 0020, or not judged).
func (s *Store) LoadStageHistory(ctx context.Context, lookback time.Duration) ([]StageHistory, error) {
	q := fmt.Sprintf(`SELECT v.pipeline, v.stage, v.window_start, v.records_out, v.last_success,
  st.log_duration_n, st.log_duration_mean, st.log_duration_m2, st.lost_in, st.lost, st.null_out, st.nulls
FROM (
  SELECT w.pipeline AS pipeline, w.stage AS stage, w.window_start AS window_start, sum(w.records_out) AS records_out, max(w.last_success) AS last_success
  FROM %[1]s.pipeline_stage_stats AS w FINAL
  GLOBAL INNER JOIN (SELECT pipeline, stage, max(window_start) AS latest FROM %[1]s.pipeline_stage_stats GROUP BY pipeline, stage) AS l
    ON w.pipeline = l.pipeline AND w.stage = l.stage
  WHERE w.window_start >= l.latest - toIntervalSecond(%[2]d)
  GROUP BY w.pipeline, w.stage, w.window_start
) AS v
GLOBAL LEFT JOIN (
  SELECT pipeline, stage, window_start, log_duration_n, log_duration_mean, log_duration_m2, lost_in, lost, null_out, nulls
  FROM %[1]s.pipeline_stage_state FINAL
  WHERE window_start >= (SELECT min(latest) FROM (SELECT max(window_start) AS latest FROM %[1]s.pipeline_stage_stats GROUP BY pipeline, stage)) - toIntervalSecond(%[2]d)
) AS st ON v.pipeline = st.pipeline AND v.stage = st.stage AND v.window_start = st.window_start
ORDER BY v.window_start`, s.db, int64(lookback.Seconds()))
	rows, err := s.conn.Query(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("load stage history: %w", err)
	}
	defer rows.Close()
	var out []StageHistory
	for rows.Next() {
		var h StageHistory
		p := &h.Point
		if err := rows.Scan(&h.Pipeline, &h.Stage, &h.Start, &p.RecordsOut, &h.LastSuccess, &p.LogDuration.N, &p.LogDuration.Mean, &p.LogDuration.M2,
			&p.LostIn, &p.Lost, &p.NullOut, &p.Nulls); err != nil {
			return nil, fmt.Errorf("load stage history: %w", err)
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

// FiringAlert is a fingerprint whose latest stored state is firing.
type FiringAlert struct {
	Fingerprint, Severity string
}

// LoadFiringAlerts returns the fingerprints currently firing.
// MarkPublished records that alerts reached the alert topic (the outbox's last step).
func (s *Store) MarkPublished(ctx context.Context, ids []string, at time.Time) error {
	in := s.inserter(ctx, table{name: "alerts_published", cols: "alert_id, published_at"})
	for _, id := range ids {
		if err := in.append([]any{id, at.UTC()}); err != nil {
			return fmt.Errorf("mark alerts published: %w", err)
		}
	}
	if err := in.flush(); err != nil {
		return fmt.Errorf("mark alerts published: %w", err)
	}
	return nil
}

// LoadUnpublishedAlerts returns the alerts stored within lookback of the newest one that
// were never recorded as published, oldest first.
func (s *Store) LoadUnpublishedAlerts(ctx context.Context, lookback time.Duration) ([]*schemas.AlertEvent, error) {
	q := fmt.Sprintf(`SELECT alert_id, fingerprint, state, severity, kind, model, model_version, deployment, feature, pipeline, stage,
metric, value, threshold, window_start, window_end, emitted_at, summary, details
FROM %[1]s.alerts FINAL
WHERE alert_id GLOBAL NOT IN (SELECT alert_id FROM %[1]s.alerts_published)
  AND emitted_at >= (SELECT max(emitted_at) FROM %[1]s.alerts) - toIntervalSecond(%[2]d)
ORDER BY emitted_at, alert_id`, s.db, int64(lookback.Seconds()))
	rows, err := s.conn.Query(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("load unpublished alerts: %w", err)
	}
	defer rows.Close()
	var out []*schemas.AlertEvent
	for rows.Next() {
		var a schemas.AlertEvent
		if err := rows.Scan(&a.AlertID, &a.Fingerprint, &a.State, &a.Severity, &a.Kind, &a.Model, &a.ModelVersion, &a.Deployment,
			&a.Feature, &a.Pipeline, &a.Stage, &a.Metric, &a.Value, &a.Threshold, &a.WindowStart, &a.WindowEnd, &a.EmittedAt,
			&a.Summary, &a.Details); err != nil {
			return nil, fmt.Errorf("load unpublished alerts: %w", err)
		}
		out = append(out, &a)
	}
	return out, rows.Err()
}

func (s *Store) LoadFiringAlerts(ctx context.Context) ([]FiringAlert, error) {
	rows, err := s.conn.Query(ctx, "SELECT fingerprint, argMax(severity, emitted_at) FROM "+s.db+".alerts FINAL GROUP BY fingerprint HAVING argMax(state, emitted_at) = 'firing'")
	if err != nil {
		return nil, fmt.Errorf("load alert states: %w", err)
	}
	defer rows.Close()
	var out []FiringAlert
	for rows.Next() {
		var a FiringAlert
		if err := rows.Scan(&a.Fingerprint, &a.Severity); err != nil {
			return nil, fmt.Errorf("load alert states: %w", err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}
