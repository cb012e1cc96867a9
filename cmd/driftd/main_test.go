package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/driftd/driftd/detectors"
	"github.com/driftd/driftd/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// CSV and JSONL training files give the same reference.
func TestReadSampleFormatsAgree(t *testing.T) {
	var profiles []*detectors.Profile
	for _, f := range []string{"testdata/training.csv", "testdata/training.jsonl"} {
		s, err := readSample(f)
		if err != nil {
			t.Fatal(err)
		}
		p := s.Build("m", "1", detectors.SourceFile, 0, time.Date(2026, 3, 4, 0, 0, 0, 0, time.UTC))
		if p.Events != 4 || p.Features["amount"].Count != 3 || p.Features["amount"].Missing != 1 ||
			p.Features["country"].Categories["NL, north"] != 1 || p.Features["is_new"].Categories["true"] != 2 ||
			p.Features["__prediction__"].Count != 4 || len(p.Features) != 4 {
			t.Errorf("%s: profile %+v", f, p.Features)
		}
		profiles = append(profiles, p)
	}
	if profiles[0].ID != profiles[1].ID {
		t.Errorf("CSV and JSONL gave different references: %s vs %s", profiles[0].ID, profiles[1].ID)
	}
	for _, bad := range []struct{ name, body, want string }{
		{"x.txt", "a\n1\n", "use a .csv or .jsonl"},
		{"x.csv", "a,b\n", "no rows"},
		{"x.jsonl", "{\"a\": {\"b\": 1}}\n", "nested"},
		{"x.jsonl", "{not json\n", "line 1"},
	} {
		p := t.TempDir() + "/" + bad.name
		os.WriteFile(p, []byte(bad.body), 0o600)
		if _, err := readSample(p); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s %q: err = %v, want %q", bad.name, bad.body, err, bad.want)
		}
	}
}

// driftd baseline stores the reference where driftd run finds it.
func TestBaselineCommandStoresReference(t *testing.T) {
	addr, proto := testenv.ClickHouse(t)
	db := testenv.UniqueName(t)
	t.Setenv("DRIFTD_CLICKHOUSE_ADDR", addr)
	t.Setenv("DRIFTD_CLICKHOUSE_PROTOCOL", proto)
	t.Setenv("DRIFTD_CLICKHOUSE_DATABASE", db)
	var out bytes.Buffer
	root := newRoot()
	root.SetOut(&out)
	root.SetArgs([]string{"baseline", "--model", "fraud-scorer", "--version", "3.2.0", "--file", "testdata/training.csv"})
	if err := root.ExecuteContext(testenv.Context(t, time.Minute)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "stored reference file-") || !strings.Contains(out.String(), "amount, country, is_new") {
		t.Fatalf("output %q", out.String())
	}
	cfg, log, err := loadConfig(root)
	if err != nil {
		t.Fatal(err)
	}
	st, stop, err := openStore(testenv.Context(t, time.Minute), cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	defer st.Close()
	defer st.Conn().Exec(testenv.Context(t, time.Minute), "DROP DATABASE "+db)
	refs, err := st.LoadReferences(testenv.Context(t, time.Minute))
	if err != nil || len(refs) != 1 || refs[0].Model != "fraud-scorer" || refs[0].Source != detectors.SourceFile.String() || refs[0].Events != 4 {
		t.Fatalf("references %+v, %v", refs, err)
	}

	// A bad flag combination fails with one clear message.
	root = newRoot()
	root.SetArgs([]string{"baseline", "--model", "m"})
	if err := root.ExecuteContext(testenv.Context(t, time.Minute)); err == nil || !strings.Contains(err.Error(), "--version") {
		t.Fatalf("err = %v", err)
	}
}

// driftd report writes a model's report as one HTML file from the configured ClickHouse,
// and refuses a missing model or a period that ends before it starts.
func TestReportCommand(t *testing.T) {
	addr, proto := testenv.ClickHouse(t)
	db := testenv.UniqueName(t)
	t.Setenv("DRIFTD_CLICKHOUSE_ADDR", addr)
	t.Setenv("DRIFTD_CLICKHOUSE_PROTOCOL", proto)
	t.Setenv("DRIFTD_CLICKHOUSE_DATABASE", db)
	ctx := testenv.Context(t, time.Minute)
	root := newRoot()
	root.SetArgs([]string{"migrate"})
	root.SetOut(io.Discard)
	if err := root.ExecuteContext(ctx); err != nil {
		t.Fatal(err)
	}
	cfg, log, err := loadConfig(root)
	if err != nil {
		t.Fatal(err)
	}
	st, stop, err := openStore(ctx, cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	defer st.Close()
	defer st.Conn().Exec(context.Background(), "DROP DATABASE "+db)
	// Recent: the tables keep clickhouse.retention_days (90) of windows.
	at := time.Now().UTC().Truncate(time.Hour).Add(-2 * time.Hour)
	if err := st.Conn().Exec(ctx, `INSERT INTO `+db+`.drift_scores (model, model_version, deployment, window_start, window_end, feature, psi, drifted, written_at)
VALUES ('fraud', '1', 'primary', ?, ?, 'amount', 0.3, 1, now64(3))`, at, at.Add(5*time.Minute)); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "fraud.html")
	root = newRoot()
	root.SetErr(io.Discard)
	root.SetArgs([]string{"report", "--model", "fraud", "--out", out}) // the last 24 hours
	if err := root.ExecuteContext(ctx); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil || !strings.Contains(string(b), "driftd report: fraud") || !strings.Contains(string(b), ">amount</text>") {
		t.Fatalf("report %.300s (%v)", b, err)
	}
	for _, args := range [][]string{{"report"}, {"report", "--model", "fraud", "--from", "2026-03-05T00:00:00Z", "--to", "2026-03-04T00:00:00Z"},
		{"report", "--model", "fraud", "--to", "yesterday"}} {
		root = newRoot()
		root.SetArgs(args)
		if err := root.ExecuteContext(ctx); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}
