package report

import (
	"context"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"sort"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	dsql "github.com/driftd/driftd/sql"
)

// Source gives the UI its ClickHouse connection and database (ok false until driftd has
// connected).
type Source func() (q Querier, db string, ok bool)

// Row is one model version and slot on the overview.
type Row struct {
	Model, Version, Slot string
	Events, Failed       uint64
	P99                  float64
	First, Last          time.Time
	// Status is "critical", "warning" or "ok": the worst firing alert of the model.
	Status string
	Open   int
	// Labelled and Predictions are the model's settled windows' labelled predictions of
	// the period (Predictions 0: no label was joined).
	Labelled, Predictions uint64
}

// Stage is one upstream pipeline stage on the overview.
type Stage struct {
	Pipeline, Stage           string
	Runs, Failures            uint64
	LatestSuccess, LastWindow time.Time
	// Status is the worst firing alert of the stage ("ok" without one).
	Status string
}

// Health is driftd's own state, for the overview: its consumer group membership, how
// far behind it reads, and its last flush (zero: none yet).
type Health struct {
	Group                               string
	Joined                              bool
	Assigned, GroupAssigned, Partitions int
	// Members is how many members the group has (-1: not known).
	Members int
	// Lag is the records behind the newest on this member's partitions as of the last
	// record read of each; GroupLag the records the group has not committed, checked
	// every few seconds (-1: not known), which grows while the group stalls.
	Lag, GroupLag int64
	// LagErr is why GroupLag is not known, or a partition the group cannot read on from.
	LagErr    string
	LastFlush time.Time
	Records   uint64
	Err       string
}

// Overview reads every model version and slot with traffic in [from, to), with its
// model's open alerts and label coverage, and every upstream pipeline stage with runs in
// it, with its open alerts.
func Overview(ctx context.Context, q Querier, db string, from, to time.Time) ([]Row, []Stage, error) {
	open, err := openAlerts(ctx, q, db)
	if err != nil {
		return nil, nil, err
	}
	rows, err := models(ctx, q, db, from, to, open)
	if err != nil {
		return nil, nil, err
	}
	stages, err := stages(ctx, q, db, from, to, open)
	return rows, stages, err
}

// models reads the overview's model rows.
func models(ctx context.Context, q Querier, db string, from, to time.Time, open open) ([]Row, error) {
	query, err := dsql.Query("report_overview", db)
	if err != nil {
		return nil, err
	}
	rows, err := q.Query(ctx, query, clickhouse.Named("from", chTime(from)), clickhouse.Named("to", chTime(to)))
	if err != nil {
		return nil, fmt.Errorf("overview: %w", err)
	}
	var out []Row
	for rows.Next() {
		var r Row
		if err := rows.Scan(&r.Model, &r.Version, &r.Slot, &r.Events, &r.Failed, &r.P99, &r.First, &r.Last); err != nil {
			rows.Close()
			return nil, fmt.Errorf("overview: %w", err)
		}
		out = append(out, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("overview: %w", err)
	}
	coverage := map[[3]string][2]uint64{}
	cq, err := dsql.Query("report_coverage", db)
	if err != nil {
		return nil, err
	}
	crows, err := q.Query(ctx, cq, clickhouse.Named("from", chTime(from)), clickhouse.Named("to", chTime(to)))
	if err != nil {
		return nil, fmt.Errorf("label coverage: %w", err)
	}
	for crows.Next() {
		var k [3]string
		var c [2]uint64
		if err := crows.Scan(&k[0], &k[1], &k[2], &c[0], &c[1]); err != nil {
			crows.Close()
			return nil, fmt.Errorf("label coverage: %w", err)
		}
		coverage[k] = c
	}
	crows.Close()
	if err := crows.Err(); err != nil {
		return nil, fmt.Errorf("label coverage: %w", err)
	}
	seen := map[string]bool{}
	for i := range out {
		c := coverage[[3]string{out[i].Model, out[i].Version, out[i].Slot}]
		out[i].Labelled, out[i].Predictions = c[0], c[1]
		a := open.models[out[i].Model]
		out[i].Open, out[i].Status = a.n, a.status()
		seen[out[i].Model] = true
	}
	// A model silent for the whole period still has its alerts firing (a volume drop to
	// nothing): it is listed, without traffic, rather than vanishing.
	for m, a := range open.models {
		if !seen[m] {
			out = append(out, Row{Model: m, Open: a.n, Status: a.status()})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Model < out[j].Model })
	return out, nil
}

// stages reads the overview's pipeline stages.
func stages(ctx context.Context, q Querier, db string, from, to time.Time, open open) ([]Stage, error) {
	query, err := dsql.Query("report_pipelines", db)
	if err != nil {
		return nil, err
	}
	rows, err := q.Query(ctx, query, clickhouse.Named("from", chTime(from)), clickhouse.Named("to", chTime(to)))
	if err != nil {
		return nil, fmt.Errorf("pipelines: %w", err)
	}
	var out []Stage
	for rows.Next() {
		var st Stage
		if err := rows.Scan(&st.Pipeline, &st.Stage, &st.Runs, &st.Failures, &st.LatestSuccess, &st.LastWindow); err != nil {
			rows.Close()
			return nil, fmt.Errorf("pipelines: %w", err)
		}
		out = append(out, st)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("pipelines: %w", err)
	}
	seen := map[[2]string]bool{}
	for i := range out {
		k := [2]string{out[i].Pipeline, out[i].Stage}
		out[i].Status, seen[k] = open.stages[k].status(), true
	}
	// A stage with no run in the period is what a freshness alert is about: it is listed
	// with that alert rather than vanishing.
	for k, a := range open.stages {
		if !seen[k] {
			out = append(out, Stage{Pipeline: k[0], Stage: k[1], Status: a.status()})
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		return out[i].Pipeline < out[j].Pipeline || out[i].Pipeline == out[j].Pipeline && out[i].Stage < out[j].Stage
	})
	return out, nil
}

// Latest is the end of model's newest window ("": any model's; zero: none).
func Latest(ctx context.Context, q Querier, db, model string) (time.Time, error) {
	query, err := dsql.Query("report_latest", db)
	if err != nil {
		return time.Time{}, err
	}
	var t time.Time
	if err := q.QueryRow(ctx, query, clickhouse.Named("model", model)).Scan(&t); err != nil {
		return time.Time{}, fmt.Errorf("newest window of %q: %w", model, err)
	}
	if t.Unix() <= 0 {
		return time.Time{}, nil
	}
	return t.UTC(), nil
}

// pageEnd is where a page ends by default: the newest window's end, or now without one.
func pageEnd(ctx context.Context, q Querier, db, model string, now time.Time) (time.Time, error) {
	t, err := Latest(ctx, q, db, model)
	if err != nil || t.IsZero() {
		return now.UTC(), err
	}
	return t, nil
}

// firing counts the firing alerts of a model or a stage.
type firing struct {
	n        int
	critical bool
}

// status is "critical", "warning" or "ok".
func (f firing) status() string {
	switch {
	case f.critical:
		return "critical"
	case f.n > 0:
		return "warning"
	}
	return "ok"
}

// open are the firing alerts by model and by pipeline stage.
type open struct {
	models map[string]firing
	stages map[[2]string]firing
}

// openAlerts counts each model's and stage's firing alerts (info ones are
// recommendations, not trouble), through the open_alerts query.
func openAlerts(ctx context.Context, q Querier, db string) (open, error) {
	query, err := dsql.Query("open_alerts", db)
	if err != nil {
		return open{}, err
	}
	out := open{models: map[string]firing{}, stages: map[[2]string]firing{}}
	rows, err := q.Query(ctx, query)
	if err != nil {
		return out, fmt.Errorf("open alerts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var fp, kind, model, feature, severity, summary, pipeline, stage string
		var since time.Time
		if err := rows.Scan(&fp, &kind, &model, &feature, &severity, &summary, &since, &pipeline, &stage); err != nil {
			return out, fmt.Errorf("open alerts: %w", err)
		}
		if severity == "info" {
			continue
		}
		count := func(f firing) firing {
			f.n++
			f.critical = f.critical || severity == "critical"
			return f
		}
		if model != "" {
			out.models[model] = count(out.models[model])
		}
		if pipeline != "" {
			k := [2]string{pipeline, stage}
			out.stages[k] = count(out.stages[k])
		}
	}
	return out, rows.Err()
}

var overviewPage = template.Must(template.New("overview").Funcs(template.FuncMap{
	"rate":   func(r Row) float64 { return float64(r.Events) / max(r.Last.Sub(r.First).Seconds(), 1) },
	"failed": func(r Row) float64 { return 100 * float64(r.Failed) / max(float64(r.Events), 1) },
	"coverage": func(r Row) string {
		if r.Predictions == 0 {
			return "-"
		}
		return fmt.Sprintf("%.0f%%", 100*float64(r.Labelled)/float64(r.Predictions))
	},
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>driftd</title>
<style>body{font:13px system-ui,sans-serif;margin:24px;color:#222}h2{font-size:15px;margin-top:24px}table{border-collapse:collapse}td,th{border-bottom:1px solid #ddd;padding:3px 8px;text-align:left}
td.n{text-align:right}.critical{color:#fff;background:#b91c1c}.warning{background:#fde68a}.ok{background:#dcfce7}.none{color:#888}</style></head><body>
<h1>driftd</h1><p>Models with traffic or firing alerts in the last 24 hours of data ({{.From.UTC.Format "2006-01-02 15:04"}} to {{.To.UTC.Format "2006-01-02 15:04"}} UTC).</p>
{{if .Rows}}<table id="models"><tr><th>status</th><th>model</th><th>version</th><th>slot</th><th>requests/s</th><th>failed</th><th>p99 (ms, highest partition)</th><th>label coverage</th><th>open alerts</th><th>last window</th></tr>
{{range .Rows}}<tr><td class="{{.Status}}">{{.Status}}</td><td><a href="model?name={{.Model}}">{{.Model}}</a></td><td>{{.Version}}</td><td>{{.Slot}}</td>
<td class="n">{{printf "%.1f" (rate .)}}</td><td class="n">{{printf "%.2f%%" (failed .)}}</td><td class="n">{{printf "%.0f" .P99}}</td><td class="n">{{coverage .}}</td><td class="n">{{.Open}}</td><td>{{if .Last.IsZero}}no traffic in the period{{else}}{{.Last.UTC.Format "15:04"}}{{end}}</td></tr>
{{end}}</table>{{else}}<p class="none">no model has sent anything in the last 24 hours</p>{{end}}
<h2>Upstream pipelines</h2>
{{if .Stages}}<table id="stages"><tr><th>status</th><th>pipeline</th><th>stage</th><th>runs</th><th>failures</th><th>latest success</th></tr>
{{range .Stages}}<tr><td class="{{.Status}}">{{.Status}}</td><td>{{.Pipeline}}</td><td>{{.Stage}}</td><td class="n">{{.Runs}}</td><td class="n">{{.Failures}}</td><td>{{if .LatestSuccess.IsZero}}{{if .Runs}}none in the period{{else}}no run in the period{{end}}{{else}}{{.LatestSuccess.UTC.Format "01-02 15:04"}}{{end}}</td></tr>
{{end}}</table>{{else}}<p class="none">no pipeline events in the last 24 hours</p>{{end}}
{{with .Health}}<h2>driftd</h2>
<table id="health"><tr><th>consumer group</th><td>{{.Group}}{{if not .Joined}} (joining){{end}}</td></tr>
<tr><th>partitions</th><td>this member reads {{.Assigned}}{{if ge .GroupAssigned 0}}, the group {{.GroupAssigned}}{{end}}{{if ge .Partitions 0}} of {{.Partitions}}{{end}}{{if ge .Members 0}} · {{.Members}} member(s){{end}}</td></tr>
<tr><th>lag</th><td>{{if ge .GroupLag 0}}{{.GroupLag}} records not yet committed by the group · {{end}}{{.Lag}} records behind the newest at the last record this member read{{if .LagErr}} <span class="warning">{{.LagErr}}</span>{{end}}</td></tr>
<tr><th>last flush</th><td>{{if .LastFlush.IsZero}}none yet{{else}}{{.LastFlush.UTC.Format "2006-01-02 15:04:05"}} UTC{{end}} · {{.Records}} records read</td></tr>
{{if .Err}}<tr><th>problem</th><td class="warning">{{.Err}}</td></tr>{{end}}</table>{{end}}
</body></html>
`))

// Handler serves the UI: / the overview of every model, the upstream pipelines and
// driftd's own health (health; nil to leave it out), /model?name=M[&from=&to=][&feature=F]
// a model's report (Render; feature is the one whose distribution is drawn). now is the wall clock. The pages cover the 24 hours up to the
// newest window (now when there is none) unless from and to (RFC 3339) say otherwise.
func Handler(src Source, health func() Health, now func() time.Time, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	conn := func(w http.ResponseWriter) (Querier, string, bool) {
		q, db, ok := src()
		if !ok {
			http.Error(w, "driftd has not connected to ClickHouse yet", http.StatusServiceUnavailable)
		}
		return q, db, ok
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		q, db, ok := conn(w)
		if !ok {
			return
		}
		to, err := pageEnd(r.Context(), q, db, "", now())
		if err != nil {
			log.Warn("overview page", "err", err)
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		from := to.Add(-24 * time.Hour)
		rows, stages, err := Overview(r.Context(), q, db, from, to.Add(time.Millisecond))
		if err != nil {
			log.Warn("overview page", "err", err)
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		sort.SliceStable(rows, func(i, j int) bool { return severityRank(rows[i].Status) > severityRank(rows[j].Status) })
		var h *Health
		if health != nil {
			v := health()
			h = &v
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if err := overviewPage.Execute(w, map[string]any{"From": from, "To": to, "Rows": rows, "Stages": stages, "Health": h}); err != nil {
			log.Warn("overview page", "err", err)
		}
	})
	mux.HandleFunc("/model", func(w http.ResponseWriter, r *http.Request) {
		model := r.URL.Query().Get("name")
		if model == "" {
			http.Error(w, "name: the model is required", http.StatusBadRequest)
			return
		}
		var to, from time.Time
		for _, p := range []struct {
			name string
			t    *time.Time
		}{{"to", &to}, {"from", &from}} {
			if v := r.URL.Query().Get(p.name); v != "" {
				t, err := time.Parse(time.RFC3339, v)
				if err != nil {
					http.Error(w, fmt.Sprintf("%s %q is not an RFC 3339 time", p.name, v), http.StatusBadRequest)
					return
				}
				*p.t = t.UTC()
			}
		}
		q, db, ok := conn(w)
		if !ok {
			return
		}
		if to.IsZero() {
			var err error
			if to, err = pageEnd(r.Context(), q, db, model, now()); err != nil {
				log.Warn("model page", "model", model, "err", err)
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
		}
		if from.IsZero() {
			from = to.Add(-24 * time.Hour)
		}
		d, err := Load(r.Context(), q, db, Selection{Model: model, Feature: r.URL.Query().Get("feature"), From: from, To: to})
		if err != nil {
			log.Warn("model page", "model", model, "err", err)
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		d.Generated = now()
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if err := Render(w, d, true); err != nil {
			log.Warn("model page", "model", model, "err", err)
		}
	})
	return mux
}

func severityRank(s string) int {
	switch s {
	case "critical":
		return 2
	case "warning":
		return 1
	}
	return 0
}
