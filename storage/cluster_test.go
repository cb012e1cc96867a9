package storage_test

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/driftd/driftd/detectors"
	"github.com/driftd/driftd/internal/testenv"
	"github.com/driftd/driftd/processors"
	dsql "github.com/driftd/driftd/sql"
	"github.com/driftd/driftd/storage"
)

// localCluster has two shards, so that the engine plans every query as on a real cluster
// (a one-shard cluster is read as one table: a subquery without GLOBAL passes there and
// fails on a cluster). The first is this engine itself (is_local: it serves no TCP port,
// and a local replica is reached without one); the second is a port nothing listens on,
// given weight 0 so that no row is sent to it, and skipped by the reads
// (skip_unavailable_shards).
const localCluster = `<clickhouse>
  <tcp_port>9000</tcp_port>
  <remote_servers>
    <local>
      <shard><weight>1</weight><internal_replication>true</internal_replication><replica><host>localhost</host><port>9000</port></replica></shard>
      <shard><weight>0</weight><internal_replication>true</internal_replication><replica><host>127.0.0.1</host><port>1</port></replica></shard>
    </local>
  </remote_servers>
</clickhouse>
`

// driftd's writes and reads go through Distributed tables as they do on a cluster, and
// every read returns what it returns on one server, row for row. The engine here has no
// Keeper and runs no distributed DDL, so the cluster layout's tables are created without
// ON CLUSTER and with the non-replicated engines (what the DDL differs in is checked by
// the sql package's tests); the Distributed tables, the inserts through them
// (insert_distributed_sync), FINAL over them and the GLOBAL subqueries are the real ones.
// The engine is one per process and this one needs a cluster configured, so the test
// runs again in a child process with it.
func TestDistributedReadsEqualOneServer(t *testing.T) {
	if os.Getenv(testenv.EngineConfigEnv) == "" {
		testenv.Engine(t) // fail here, not in the child, when the engine is missing
		cfg := filepath.Join(t.TempDir(), "config.xml")
		if err := os.WriteFile(cfg, []byte(localCluster), 0o644); err != nil {
			t.Fatal(err)
		}
		ctx := testenv.Context(t, 3*time.Minute)
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestDistributedReadsEqualOneServer$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), testenv.EngineConfigEnv+"="+cfg)
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS: TestDistributedReadsEqualOneServer") {
			t.Fatalf("with a cluster configured: %v\n%s", err, out)
		}
		return
	}
	ctx := testenv.Context(t, 2*time.Minute)
	one := openStore(t)
	// The engine is one session: the setting holds for every query after it.
	if err := one.Conn().Exec(ctx, "SET skip_unavailable_shards = 1"); err != nil {
		t.Fatal(err)
	}
	if _, err := one.Migrate(ctx, 3650); err != nil {
		t.Fatal(err)
	}
	dist := openDistributed(ctx, t, "local")

	ref, closed, alerts, b := resultsBatch(t)
	sample := detectors.NewSample()
	body, err := sample.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	state := &storage.Batch{WrittenAt: t0,
		AlertStates: []detectors.FingerprintState{{Fingerprint: alerts[0].Fingerprint, AlertState: detectors.AlertState{Firing: true, Severity: "warning", Bad: 1, Last: t0.Add(time.Minute)}}},
		StageStates: []storage.StageState{{Pipeline: "orders", Stage: "join", Start: t0, End: t0.Add(time.Hour), ConsecutiveFailures: 1,
			Successes: []time.Time{t0.Add(10 * time.Minute)}, Failures: []time.Time{t0.Add(20 * time.Minute)},
			Point: detectors.StagePoint{LogDuration: processors.Moments{N: 2, Mean: 7.6, M2: 0.02}, LostIn: 100, Lost: 10, NullOut: 90, Nulls: 3}}},
		ReferenceSamples: []storage.ReferenceSample{{Model: "new-model", Version: "1", Start: t0, Sample: body}},
		SampleParts:      []storage.SamplePart{{Model: "new-model", Version: "1", Start: t0, TP: processors.TopicPartition{Topic: "p", Partition: 2}, Sample: body}},
		Progress: []storage.PartitionProgress{{TP: processors.TopicPartition{Topic: "p", Partition: 2}, Through: time.UnixMilli(0).UTC(), EventMax: time.UnixMilli(0).UTC()},
			{Model: closed[0].Merged.Series.Model, TP: processors.TopicPartition{Topic: "p", Partition: 2}, Through: t0.Add(time.Minute), EventMax: t0.Add(2 * time.Minute), Lagging: true}}}
	// A window read back and judged by a spread group's judge: its partials' rows are
	// written again with the judgement, then the judge's progress.
	rejudged := &storage.Batch{WrittenAt: t0.Add(time.Hour), Closed: []processors.Closed{{Merged: closed[0].Merged}},
		Verdicts:      []detectors.Verdict{{Window: closed[0].Merged, Judgement: "judged by a spread group's judge", ExpectedEvents: 12, VolumeLow: true}},
		JudgedThrough: []storage.JudgeProgress{{Model: closed[0].Merged.Series.Model, Through: time.UnixMilli(closed[0].Merged.End).UTC()}}}
	keys, labels := labelData()
	perf, _ := performanceBatch(t)
	for _, s := range []*storage.Store{one, dist} {
		if err := s.SaveReference(ctx, ref); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 2; i++ {
			if err := s.WriteLabelData(ctx, keys, labels, t0.Add(time.Duration(i)*time.Second)); err != nil {
				t.Fatal(err)
			}
			perf.WrittenAt = t0.Add(time.Duration(i) * time.Second)
			if err := s.WriteWithRetry(ctx, perf, storage.DefaultBackoff, nil); err != nil {
				t.Fatal(err)
			}
		}
		for i := 0; i < 2; i++ { // the second write is a replay after a restart
			b.WrittenAt = t0.Add(time.Duration(i) * time.Second)
			if err := s.WriteWithRetry(ctx, b, storage.DefaultBackoff, nil); err != nil {
				t.Fatal(err)
			}
			if err := s.WriteWithRetry(ctx, state, storage.DefaultBackoff, nil); err != nil {
				t.Fatal(err)
			}
			if err := s.WriteWithRetry(ctx, rejudged, storage.DefaultBackoff, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The rows are in the local tables, written through the Distributed ones.
	for _, table := range []string{"window_model_stats", "window_feature_stats", "drift_scores", "alerts", "late_events", "pipeline_stage_stats",
		"reference_profiles", "alert_state", "pipeline_stage_state", "reference_samples", "prediction_key_batches", "label_events", "label_offsets", "label_progress",
		"window_performance"} {
		var n uint64
		if err := dist.Conn().QueryRow(ctx, "SELECT count() FROM "+dist.Database()+"."+table+dsql.LocalSuffix).Scan(&n); err != nil || n == 0 {
			t.Errorf("%s%s holds %d rows (%v)", table, dsql.LocalSuffix, n, err)
		}
	}

	same := func(name string, load func(*storage.Store) (any, error)) {
		t.Helper()
		a, errA := load(one)
		d, errD := load(dist)
		if errA != nil || errD != nil {
			t.Errorf("%s: one server: %v; distributed: %v", name, errA, errD)
			return
		}
		ca, cd := canonical(t, a), canonical(t, d)
		if ca == "[]" || ca == "null" || ca == `""` {
			t.Errorf("%s: nothing read: the comparison would prove nothing", name)
		}
		if ca != cd {
			t.Errorf("%s differs:\none server:  %s\ndistributed: %s", name, ca, cd)
		}
	}
	day := 48 * time.Hour
	same("LoadReferences", func(s *storage.Store) (any, error) {
		ps, err := s.LoadReferences(ctx)
		var ids []string
		for _, p := range ps {
			ids = append(ids, p.Model+"/"+p.Version+"/"+p.ID)
		}
		return ids, err
	})
	same("LoadFiringAlerts", func(s *storage.Store) (any, error) { return s.LoadFiringAlerts(ctx) })
	same("LoadUnpublishedAlerts", func(s *storage.Store) (any, error) { return s.LoadUnpublishedAlerts(ctx, day) })
	same("LoadClosedWindows", func(s *storage.Store) (any, error) { return s.LoadClosedWindows(ctx, time.Hour) })
	same("LoadClosedStageWindows", func(s *storage.Store) (any, error) { return s.LoadClosedStageWindows(ctx, time.Hour) })
	same("LoadLateWindows", func(s *storage.Store) (any, error) { return s.LoadLateWindows(ctx, time.Hour) })
	same("LoadSeriesEnds", func(s *storage.Store) (any, error) { return s.LoadSeriesEnds(ctx, day) })
	same("LoadLabelProgress", func(s *storage.Store) (any, error) {
		p, m, err := s.LoadLabelProgress(ctx)
		return []any{p, m}, err
	})
	same("LoadSettled", func(s *storage.Store) (any, error) {
		st, err := s.LoadSettled(ctx)
		return fmt.Sprintf("%+v", st), err // fmt prints maps sorted; the confusion map's keys are structs
	})
	same("LoadSettled of one series", func(s *storage.Store) (any, error) {
		st, err := s.LoadSettled(ctx, labelSeries)
		if err == nil && len(st) != 1 {
			err = fmt.Errorf("%d series", len(st))
		}
		return fmt.Sprintf("%+v", st), err
	})
	same("LoadUnsettledWindows", func(s *storage.Store) (any, error) {
		return s.LoadUnsettledWindows(ctx, []string{closed[0].Merged.Series.Model}, t0.Add(-day), t0.Add(day))
	})
	same("LoadWindowPairs", func(s *storage.Store) (any, error) {
		pairs, beyond, err := joinWindow(ctx, s, storage.SettledWindow{Series: labelSeries, Start: t0, End: t0.Add(5 * time.Minute)},
			storage.JoinSpec{From: t0.Add(-time.Minute), Until: t0.Add(20 * time.Minute), Cutoff: t0.Add(25 * time.Minute), Horizon: time.Hour, Partitions: labelPartitions(3)})
		return []any{pairs, beyond}, err
	})
	same("LoadHourlyEvents", func(s *storage.Store) (any, error) { return s.LoadHourlyEvents(ctx, day) })
	same("LoadStageHistory", func(s *storage.Store) (any, error) { return s.LoadStageHistory(ctx, day) })
	same("LoadAlertStates", func(s *storage.Store) (any, error) { return s.LoadAlertStates(ctx, day) })
	same("LoadStageStates", func(s *storage.Store) (any, error) { return s.LoadStageStates(ctx, day) })
	same("LoadReferenceSamples", func(s *storage.Store) (any, error) { return s.LoadReferenceSamples(ctx) })
	same("LoadPartitionProgress", func(s *storage.Store) (any, error) {
		ps, err := s.LoadPartitionProgress(ctx)
		if err == nil && (len(ps) != 2 || ps[0].Lagging || !ps[1].Lagging) {
			err = fmt.Errorf("progress %+v: the model's row (only) is read behind", ps)
		}
		return ps, err
	})
	same("LoadJudgeProgress", func(s *storage.Store) (any, error) { return s.LoadJudgeProgress(ctx) })
	same("LoadWrittenWindows", func(s *storage.Store) (any, error) {
		ws, err := s.LoadWrittenWindows(ctx, []string{closed[0].Merged.Series.Model}, t0.Add(-day), t0.Add(day))
		if err == nil && len(ws) == 0 {
			err = errors.New("no windows written")
		}
		slices.SortFunc(ws, func(a, b storage.ClosedWindow) int { return cmp.Compare(fmt.Sprint(a), fmt.Sprint(b)) })
		return ws, err
	})
	same("LoadWindows", func(s *storage.Store) (any, error) {
		ws, err := s.LoadWindows(ctx, closed[0].Merged.Series.Model, t0.Add(-day), t0.Add(day))
		var out []any
		for _, w := range ws {
			a := w.Features["amount"]
			out = append(out, []any{w.Start, w.Events, w.Errors, w.Latency.Quantile(0.99), a.Count, a.Moments.Mean, a.Bins})
		}
		return out, err
	})
	same("LoadSampleParts", func(s *storage.Store) (any, error) { return s.LoadSampleParts(ctx, "new-model", t0, t0) })
	same("LoadVolumeWindows", func(s *storage.Store) (any, error) { return s.LoadVolumeWindows(ctx, day, 100) })
	// A spread group's restores: the windows up to judge_progress (the GLOBAL join).
	same("LoadSeriesEnds of a spread group", func(s *storage.Store) (any, error) { return s.ForSpreadGroup().LoadSeriesEnds(ctx, day) })
	same("LoadHourlyEvents of a spread group", func(s *storage.Store) (any, error) { return s.ForSpreadGroup().LoadHourlyEvents(ctx, day) })
	same("LoadVolumeWindows of a spread group", func(s *storage.Store) (any, error) { return s.ForSpreadGroup().LoadVolumeWindows(ctx, day, 100) })
	same("judgement written again", func(s *storage.Store) (any, error) {
		return testenv.TSV(ctx, s.Conn(), "SELECT partition, judgement, expected_events, volume_low, events FROM "+s.Database()+
			".window_model_stats FINAL WHERE judgement != '' ORDER BY partition")
	})
	same("LoadWindow", func(s *storage.Store) (any, error) {
		w, err := s.LoadWindow(ctx, closed[0].Merged.Series, time.UnixMilli(closed[0].Merged.Start))
		if err != nil || w == nil {
			return nil, fmt.Errorf("window not read back: %v", err)
		}
		a := w.Features["amount"]
		return []any{w.Events, w.OK, w.Errors, w.Latency.Quantile(0.99), a.Count, a.Moments.Mean, a.Sketch.Quantile(0.5), w.Features["country"].Categories}, nil
	})
	for _, name := range dsql.QueryNames() {
		same("query "+name, func(s *storage.Store) (any, error) {
			q, err := dsql.Query(name, s.Database())
			if err != nil {
				return nil, err
			}
			// The queries' parameters, as literals (TSV wraps the query in a subquery).
			q = strings.NewReplacer("{model:String}", "'fraud''s \"scorer\"'", "{pipeline:String}", "'orders'",
				"{since:DateTime64(3)}", "toDateTime64('2026-03-04 00:00:00', 3, 'UTC')", "{limit:UInt32}", "10",
				"{from:DateTime64(3)}", "toDateTime64('2026-03-04 00:00:00', 3, 'UTC')", "{version:String}", "'1'", "{deployment:String}", "'primary'", "{feature:String}", "'amount'", "{to:DateTime64(3)}", "toDateTime64('2026-03-05 00:00:00', 3, 'UTC')").Replace(q)
			return testenv.TSV(ctx, s.Conn(), q)
		})
	}
	if err := dist.MarkPublished(ctx, []string{alerts[0].AlertID}, t0); err != nil {
		t.Fatal(err)
	}
	if got, err := dist.LoadUnpublishedAlerts(ctx, day); err != nil || len(got) != 0 {
		t.Errorf("after marking published: %d unpublished, %v", len(got), err)
	}
}

var replicatedEngine = regexp.MustCompile(`Replicated(\w*)MergeTree\('[^']*', '\{replica\}'(, )?`)

// openDistributed opens a store on the cluster layout of a new database, created as
// TestDistributedReadsEqualOneServer explains, with its migrations recorded as applied.
func openDistributed(ctx context.Context, t *testing.T, cluster string) *storage.Store {
	t.Helper()
	addr, proto := testenv.ClickHouse(t)
	s, err := storage.Open(ctx, storage.Options{Addr: addr, Protocol: storage.Protocol(proto), Database: testenv.UniqueName(t), Cluster: cluster}, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Conn().Exec(context.Background(), "DROP DATABASE IF EXISTS "+s.Database())
		s.Close()
	})
	l := dsql.Layout{Database: s.Database(), TTLDays: 3650, Cluster: cluster}
	stmts, err := dsql.Setup(l)
	if err != nil {
		t.Fatal(err)
	}
	migs, err := dsql.Migrations(l)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range migs {
		stmts = append(stmts, m.Statements...)
	}
	for _, stmt := range stmts {
		stmt = strings.ReplaceAll(stmt, " ON CLUSTER '"+cluster+"'", "")
		stmt = replicatedEngine.ReplaceAllString(stmt, "${1}MergeTree(")
		if err := s.Conn().Exec(ctx, stmt); err != nil {
			t.Fatalf("%v\n%s", err, stmt)
		}
	}
	sync := clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"insert_distributed_sync": 1}))
	for _, m := range migs {
		if err := s.Conn().Exec(sync, fmt.Sprintf("INSERT INTO %s.schema_migrations VALUES (%d, '%s', now64(3))", s.Database(), m.Version, m.Name)); err != nil {
			t.Fatal(err)
		}
	}
	if ok, err := s.Migrated(ctx); !ok || err != nil {
		t.Fatalf("migrations not seen through the Distributed table: %v %v", ok, err)
	}
	return s
}

// canonical is v as JSON with the elements of a slice in sorted order: several of the
// reads promise no order, on one server or on a cluster.
func canonical(t *testing.T, v any) string {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var elems []json.RawMessage
	if json.Unmarshal(raw, &elems) != nil {
		return string(raw)
	}
	lines := make([]string, len(elems))
	for i, e := range elems {
		lines[i] = string(e)
	}
	slices.Sort(lines)
	return "[" + strings.Join(lines, ",") + "]"
}
