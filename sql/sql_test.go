package sql

import (
	"strings"
	"testing"
)

func TestMigrationsRender(t *testing.T) {
	migs, err := Migrations(Layout{Database: "driftd_test", TTLDays: 30})
	if err != nil {
		t.Fatal(err)
	}
	want := map[uint32]string{1: "init", 2: "pipeline_stages", 3: "drift_distances", 4: "k_sample_tests", 5: "alert_outbox", 6: "detection_state", 7: "window_judgement"}
	got := map[uint32]string{}
	for i, m := range migs {
		if i > 0 && m.Version <= migs[i-1].Version {
			t.Errorf("migration %d after %d: not in order", m.Version, migs[i-1].Version)
		}
		got[m.Version] = m.Name
	}
	for v, name := range want {
		if got[v] != name {
			t.Errorf("migration %d is %q, want %q", v, got[v], name)
		}
	}
	tables := 0
	for _, m := range migs {
		for _, s := range m.Statements {
			if strings.Contains(s, "{db}") || strings.Contains(s, "{ttl_days}") || strings.HasSuffix(strings.TrimSpace(s), ";") {
				t.Errorf("statement not rendered or not split: %q", s)
			}
			if strings.HasPrefix(s, "CREATE TABLE IF NOT EXISTS driftd_test.") {
				tables++
			}
			if strings.Contains(s, "TTL") && !strings.Contains(s, "INTERVAL 30 DAY") {
				t.Errorf("TTL not rendered: %q", s)
			}
		}
	}
	if tables != 27 { // 27 created, three of them dropped again by 0011, one by 0023, one by 0025
		t.Errorf("%d tables, want 27", tables)
	}
	for _, bad := range []string{"", "drop table x", "a;b", "1db", "db`"} {
		if _, err := Migrations(Layout{Database: bad, TTLDays: 30}); err == nil {
			t.Errorf("database name %q accepted", bad)
		}
	}
}

func TestQueriesAreSingleStatements(t *testing.T) {
	names := QueryNames()
	if len(names) < 5 {
		t.Fatalf("queries %v", names)
	}
	for _, n := range names {
		q, err := Query(n, "driftd")
		if err != nil {
			t.Errorf("%s: %v", n, err)
		}
		if !strings.Contains(q, "driftd.") {
			t.Errorf("%s does not name the database: %q", n, q)
		}
	}
	if _, err := Query("nope", "driftd"); err == nil {
		t.Error("a missing query was found")
	}
}
