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
}

// Overview reads every model version and slot with traffic in [from, to), with its
// model's open alerts.
func Overview(ctx context.Context, q Querier, db string, from, to time.Time) ([]Row, error) {
	query, err := dsql.Query("report_overview", db)
	if err != nil {
		return nil, err
	}
	rows, err := q.Query(ctx, query, clickhouse.Named("from", from.UTC().Format("2006-01-02 15:04:05.000")),
		clickhouse.Named("to", to.UTC().Format("2006-01-02 15:04:05.000")))
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
	open, err := openAlerts(ctx, q, db)
	if err != nil {
		return nil, err
	}
	for i := range out {
		a := open[out[i].Model]
		out[i].Open, out[i].Status = a.n, "ok"
		switch {
		case a.critical:
			out[i].Status = "critical"
		case a.n > 0:
			out[i].Status = "warning"
		}
	}
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

type modelAlerts struct {
	n        int
	critical bool
}

// openAlerts counts each model's firing alerts (info ones are recommendations, not
// trouble), through the open_alerts query.
func openAlerts(ctx context.Context, q Querier, db string) (map[string]modelAlerts, error) {
	query, err := dsql.Query("open_alerts", db)
	if err != nil {
		return nil, err
	}
	rows, err := q.Query(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("open alerts: %w", err)
	}
	defer rows.Close()
	out := map[string]modelAlerts{}
	for rows.Next() {
		var fp, kind, model, feature, severity, summary string
		var since time.Time
		if err := rows.Scan(&fp, &kind, &model, &feature, &severity, &summary, &since); err != nil {
			return nil, fmt.Errorf("open alerts: %w", err)
		}
		if severity == "info" {
			continue
		}
		a := out[model]
		a.n++
		a.critical = a.critical || severity == "critical"
		out[model] = a
	}
	return out, rows.Err()
}

var overviewPage = template.Must(template.New("overview").Funcs(template.FuncMap{
	"rate":   func(r Row) float64 { return float64(r.Events) / max(r.Last.Sub(r.First).Seconds(), 1) },
	"failed": func(r Row) float64 { return 100 * float64(r.Failed) / max(float64(r.Events), 1) },
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>driftd</title>
<style>body{font:13px system-ui,sans-serif;margin:24px;color:#222}table{border-collapse:collapse}td,th{border-bottom:1px solid #ddd;padding:3px 8px;text-align:left}
td.n{text-align:right}.critical{color:#fff;background:#b91c1c}.warning{background:#fde68a}.ok{background:#dcfce7}.none{color:#888}</style></head><body>
<h1>driftd</h1><p>Models with traffic in the last 24 hours of data ({{.From.UTC.Format "2006-01-02 15:04"}} to {{.To.UTC.Format "2006-01-02 15:04"}} UTC).</p>
{{if .Rows}}<table><tr><th>status</th><th>model</th><th>version</th><th>slot</th><th>requests/s</th><th>failed</th><th>p99 (ms)</th><th>open alerts</th><th>last window</th></tr>
{{range .Rows}}<tr><td class="{{.Status}}">{{.Status}}</td><td><a href="model?name={{.Model}}">{{.Model}}</a></td><td>{{.Version}}</td><td>{{.Slot}}</td>
<td class="n">{{printf "%.1f" (rate .)}}</td><td class="n">{{printf "%.2f%%" (failed .)}}</td><td class="n">{{printf "%.0f" .P99}}</td><td class="n">{{.Open}}</td><td>{{.Last.UTC.Format "15:04"}}</td></tr>
{{end}}</table>{{else}}<p class="none">no model has sent anything in the last 24 hours</p>{{end}}
</body></html>
`))

// Handler serves the UI: / the overview of every model, /model?name=M[&from=&to=][&feature=F]
// a model's report (Render; feature is the one whose distribution is drawn). now is the wall clock. The pages cover the 24 hours up to the
// newest window (now when there is none) unless from and to (RFC 3339) say otherwise.
func Handler(src Source, now func() time.Time, log *slog.Logger) http.Handler {
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
		rows, err := Overview(r.Context(), q, db, from, to.Add(time.Millisecond))
		if err != nil {
			log.Warn("overview page", "err", err)
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		sort.SliceStable(rows, func(i, j int) bool { return severityRank(rows[i].Status) > severityRank(rows[j].Status) })
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if err := overviewPage.Execute(w, map[string]any{"From": from, "To": to, "Rows": rows}); err != nil {
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
