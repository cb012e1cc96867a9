package grafana

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/driftd/driftd/internal/testenv"
	"github.com/driftd/driftd/storage"
)

func TestMain(m *testing.M) { testenv.Main(m) }

type dashboard struct {
	UID, Title string
	Templating struct {
		List []struct {
			Name, Type string
			Query      string
			Datasource datasource
		}
	}
	Panels []panel
}

type panel struct {
	ID         int
	Type       string
	Title      string
	Datasource datasource
	GridPos    struct{ H, W, X, Y int }
	Targets    []struct {
		RefID      string `json:"refId"`
		RawSQL     string `json:"rawSql"`
		Datasource datasource
	}
}

type datasource struct{ Type, UID string }

// provisioned is the data source the provisioning file declares.
func provisioned(t *testing.T) datasource {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("provisioning", "datasources", "clickhouse.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Datasources []struct{ UID, Type string }
	}
	if err := yaml.Unmarshal(b, &f); err != nil || len(f.Datasources) != 1 {
		t.Fatalf("provisioned data sources %+v (%v)", f, err)
	}
	return datasource{Type: f.Datasources[0].Type, UID: f.Datasources[0].UID}
}

func load(t *testing.T) dashboard {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("dashboards", "driftd.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("dashboards/driftd.json: %v", err)
	}
	return d
}

// The dashboard reads the provisioned data source everywhere, has a model variable,
// and every panel has a query and a place on the 24-column grid that no other panel
// takes.
func TestDashboardStructure(t *testing.T) {
	ds, d := provisioned(t), load(t)
	if d.UID == "" || d.Title == "" {
		t.Errorf("uid %q, title %q", d.UID, d.Title)
	}
	if len(d.Templating.List) != 1 || d.Templating.List[0].Name != "model" || d.Templating.List[0].Datasource != ds || d.Templating.List[0].Query == "" {
		t.Errorf("templating %+v", d.Templating.List)
	}
	ids := map[int]bool{}
	taken := map[[2]int]int{}
	queries := 0
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d twice", p.ID)
		}
		ids[p.ID] = true
		g := p.GridPos
		if g.W <= 0 || g.H <= 0 || g.X < 0 || g.X+g.W > 24 {
			t.Errorf("panel %q at %+v", p.Title, g)
		}
		for x := g.X; x < g.X+g.W; x++ {
			for y := g.Y; y < g.Y+g.H; y++ {
				if other, ok := taken[[2]int{x, y}]; ok {
					t.Fatalf("panel %q overlaps panel %d at (%d, %d)", p.Title, other, x, y)
				}
				taken[[2]int{x, y}] = p.ID
			}
		}
		if p.Type == "row" {
			continue
		}
		if p.Datasource != ds || len(p.Targets) == 0 {
			t.Errorf("panel %q: data source %+v, %d queries", p.Title, p.Datasource, len(p.Targets))
		}
		for _, q := range p.Targets {
			if q.Datasource != ds || strings.TrimSpace(q.RawSQL) == "" {
				t.Errorf("panel %q query %s: data source %+v, sql %q", p.Title, q.RefID, q.Datasource, q.RawSQL)
			}
			queries++
		}
	}
	if queries < 10 {
		t.Errorf("%d queries", queries)
	}
}

// timeFilter is the ClickHouse plugin's $__timeFilter(column) macro.
var timeFilter = regexp.MustCompile(`\$__timeFilter\((\w+)\)`)

// render is a panel's query as Grafana sends it: macros expanded for the last 30 days,
// the model variable set, the database the test's own.
func render(sql, db, model string) string {
	sql = timeFilter.ReplaceAllString(sql, "$1 >= now64(3) - INTERVAL 30 DAY AND $1 <= now64(3)")
	sql = strings.ReplaceAll(sql, "${model}", model)
	return strings.ReplaceAll(sql, "driftd.", db+".")
}

// Every panel's query (and the variable's) runs on the engine against driftd's tables as
// the migrations make them, with a window, a drift score and an alert in them; the
// traffic panel returns the window.
func TestDashboardQueriesRun(t *testing.T) {
	ctx := testenv.Context(t, 2*time.Minute)
	addr, proto := testenv.ClickHouse(t)
	s, err := storage.Open(ctx, storage.Options{Addr: addr, Protocol: storage.Protocol(proto), Database: testenv.UniqueName(t)}, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Conn().Exec(context.Background(), "DROP DATABASE IF EXISTS "+s.Database())
		s.Close()
	})
	if _, err := s.Migrate(ctx, 3650); err != nil {
		t.Fatal(err)
	}
	db := s.Database()
	for _, q := range []string{
		`INSERT INTO ` + db + `.window_model_stats (model, model_version, deployment, window_start, window_end, topic, partition, events, errors, latency_p99, written_at)
VALUES ('m', '1', 'primary', now64(3) - INTERVAL 10 MINUTE, now64(3) - INTERVAL 5 MINUTE, 'p', 0, 300, 3, 120, now64(3))`,
		`INSERT INTO ` + db + `.drift_scores (model, model_version, deployment, window_start, window_end, feature, psi, drifted, written_at)
VALUES ('m', '1', 'primary', now64(3) - INTERVAL 10 MINUTE, now64(3) - INTERVAL 5 MINUTE, 'amount', 0.3, 1, now64(3))`,
		`INSERT INTO ` + db + `.alerts (alert_id, fingerprint, state, severity, kind, model, window_start, window_end, emitted_at, summary)
VALUES ('a', 'f', 'firing', 'critical', 'data_drift', 'm', now64(3) - INTERVAL 10 MINUTE, now64(3) - INTERVAL 5 MINUTE, now64(3), 'amount drifted')`,
	} {
		if err := s.Conn().Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	d := load(t)
	count := func(what, sql string) int {
		t.Helper()
		rows, err := s.Conn().Query(ctx, render(sql, db, "m"))
		if err != nil {
			t.Errorf("%s: %v\n%s", what, err, sql)
			return 0
		}
		defer rows.Close()
		n := 0
		for rows.Next() {
			n++
		}
		if err := rows.Err(); err != nil {
			t.Errorf("%s: %v", what, err)
		}
		return n
	}
	if n := count("variable model", d.Templating.List[0].Query); n != 1 {
		t.Errorf("the model variable lists %d models, want 1", n)
	}
	for _, p := range d.Panels {
		for _, q := range p.Targets {
			n := count(p.Title, q.RawSQL)
			t.Logf("%s: %d rows", p.Title, n)
			switch p.Title {
			case "Requests per second by version and slot", "Drift (PSI) per feature and window", "Open alerts", "Alert timeline":
				if n != 1 {
					t.Errorf("%s: %d rows, want the one written", p.Title, n)
				}
			}
		}
	}
}
