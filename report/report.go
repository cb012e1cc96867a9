// Package report renders one model's stored windows as a single self-contained HTML file
// (driftd report): traffic, latency and failures per slot, a drift heat map of every
// feature over the period, and the alert timeline. It reads aggregates through the
// queries in sql/queries, never raw events, and draws its charts as inline SVG, so that a
// day of five-minute windows and twenty features weighs kilobytes, opens offline and can
// be attached to an incident.
package report

import (
	"context"
	"fmt"
	"html/template"
	"io"
	"math"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/driftd/driftd/detectors"
	dsql "github.com/driftd/driftd/sql"
)

// Querier runs a query (a clickhouse-go connection).
type Querier interface {
	Query(ctx context.Context, query string, args ...any) (driver.Rows, error)
	QueryRow(ctx context.Context, query string, args ...any) driver.Row
}

// Traffic is one slot's traffic in one window: requests, failed requests, null
// predictions, and latency percentiles from its partitions' sketches merged.
type Traffic struct {
	Start, End time.Time
	// Slot is "version deployment".
	Version, Deployment, Slot string
	Events, Failed, Nulls     uint64
	P50, P99                  float64
	// NoLatency: the window's latency is not known (a sketch that does not decode).
	NoLatency bool
}

// Drift is one feature's drift in one window.
type Drift struct {
	Start   time.Time
	Feature string
	PSI     float64
	Drifted bool
}

// Alert is one alert transition.
type Alert struct {
	Emitted, Start, End                           time.Time
	State, Severity, Kind, Version, Slot, Feature string
	Summary                                       string
}

// FeatureHealth is one feature's values over the period: present, missing (null or
// absent) and of the other kind.
type FeatureHealth struct {
	Name, Kind                   string
	Present, Missing, Mismatched uint64
}

// Distribution is one feature of one slot in its newest window of the period against
// its version's reference: counts between the reference's bin edges (numeric) or per
// category. Ref or Cur is nil when that side is not known.
type Distribution struct {
	Feature, Slot string
	Start, End    time.Time
	Kind          string
	Edges         []float64
	Ref, Cur      []float64
	Categories    []string // the categories shown, in order (categorical)
	Note          string   // why a side is missing
}

// Performance is one slot's settled window: accuracy (classification) or mean absolute
// error (regression), and label coverage.
type Performance struct {
	Start                   time.Time
	Slot, Task              string
	Labelled                uint64
	Accuracy, MAE, Coverage float64
}

// Canary is one canary window's verdict against the primary.
type Canary struct {
	Start                       time.Time
	Canary, Primary             string
	Verdict, Reason             string
	CanaryEvents, PrimaryEvents uint64
}

// Shadow is one shadow window's agreement with the primary.
type Shadow struct {
	Start                  time.Time
	Shadow, Primary        string
	Matched                uint64
	Agreement, MeanAbsDiff float64
}

// Data is what a report shows.
type Data struct {
	Model     string
	From, To  time.Time
	Generated time.Time
	Traffic   []Traffic
	Drift     []Drift
	Alerts    []Alert
	Features  []FeatureHealth
	// Distributions are the selected feature's and the prediction's (busiest slot).
	Distributions []Distribution
	Performance   []Performance
	Canary        []Canary
	Shadow        []Shadow
	// Notes say what the page could not show and why (a stored row that does not
	// decode): one bad row costs its part of a chart, not the page.
	Notes []string
}

// Selection is what a report covers: a model over [From, To), and the feature whose
// distribution it draws ("": the most drifted).
type Selection struct {
	Model, Feature string
	From, To       time.Time
}

// chTime is a time as the queries' DateTime64 parameters take it.
func chTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05.000") }

// reader runs the named queries of sql/queries for one report.
type reader struct {
	ctx   context.Context
	q     Querier
	db    string
	model string
}

func (r reader) read(name string, args []any, scan func(driver.Rows) error) error {
	query, err := dsql.Query(name, r.db)
	if err != nil {
		return err
	}
	rows, err := r.q.Query(r.ctx, query, args...)
	if err != nil {
		return fmt.Errorf("report %s of %s: %w", name, r.model, err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return fmt.Errorf("report %s of %s: %w", name, r.model, err)
		}
	}
	return rows.Err()
}

// Load reads what a report of sel shows from database db.
func Load(ctx context.Context, q Querier, db string, sel Selection) (Data, error) {
	d := Data{Model: sel.Model, From: sel.From, To: sel.To}
	r := reader{ctx: ctx, q: q, db: db, model: sel.Model}
	period := []any{clickhouse.Named("model", sel.Model), clickhouse.Named("from", chTime(sel.From)), clickhouse.Named("to", chTime(sel.To))}
	steps := []struct {
		name string
		scan func(driver.Rows) error
	}{
		{"report_traffic", func(rows driver.Rows) error {
			var t Traffic
			err := rows.Scan(&t.Start, &t.End, &t.Version, &t.Deployment, &t.Events, &t.Failed, &t.Nulls)
			t.Slot = t.Version + " " + t.Deployment
			d.Traffic = append(d.Traffic, t)
			return err
		}},
		{"report_drift", func(rows driver.Rows) error {
			var x Drift
			var drifted uint8
			err := rows.Scan(&x.Start, &x.Feature, &x.PSI, &drifted)
			x.Drifted = drifted != 0
			d.Drift = append(d.Drift, x)
			return err
		}},
		{"report_alerts", func(rows driver.Rows) error {
			var a Alert
			err := rows.Scan(&a.Emitted, &a.Start, &a.End, &a.State, &a.Severity, &a.Kind, &a.Version, &a.Slot, &a.Feature, &a.Summary)
			d.Alerts = append(d.Alerts, a)
			return err
		}},
		{"report_features", func(rows driver.Rows) error {
			var f FeatureHealth
			err := rows.Scan(&f.Name, &f.Kind, &f.Present, &f.Missing, &f.Mismatched)
			d.Features = append(d.Features, f)
			return err
		}},
		{"report_canary", func(rows driver.Rows) error {
			var c Canary
			err := rows.Scan(&c.Start, &c.Canary, &c.Primary, &c.Verdict, &c.CanaryEvents, &c.PrimaryEvents, &c.Reason)
			d.Canary = append(d.Canary, c)
			return err
		}},
		{"report_shadow", func(rows driver.Rows) error {
			var x Shadow
			err := rows.Scan(&x.Start, &x.Shadow, &x.Primary, &x.Matched, &x.Agreement, &x.MeanAbsDiff)
			d.Shadow = append(d.Shadow, x)
			return err
		}},
	}
	for _, st := range steps {
		if err := r.read(st.name, period, st.scan); err != nil {
			return d, err
		}
	}
	if err := r.latency(period, &d); err != nil {
		return d, err
	}
	if err := r.performance(sel, &d); err != nil {
		return d, err
	}
	return d, r.distributions(sel, &d)
}

// chart geometry (SVG user units).
const (
	chartW, chartH = 720, 110
	labelW         = 150
	cellH          = 14
	// maxColumns bounds the heat map's columns: windows beyond it are merged (their
	// highest PSI shown), so a month weighs no more than a day.
	maxColumns = 144
	maxRows    = 40
)

// heatClass is the colour class of a PSI: the thresholds driftd judges by (0.1 warning,
// 0.25 critical by default) fall between classes.
func heatClass(psi float64) int {
	for i, edge := range []float64{0.02, 0.05, 0.1, 0.25, 0.5} {
		if psi < edge {
			return i
		}
	}
	return 5
}

// heatMap draws features (rows, the most drifted first) by period (columns) as runs of
// same-coloured cells: a feature that did not move is one rectangle.
func heatMap(d Data, from time.Time) template.HTML {
	if len(d.Drift) == 0 {
		return ""
	}
	span := d.To.Sub(from)
	if span <= 0 {
		return ""
	}
	starts := map[int64]bool{}
	for _, x := range d.Drift {
		starts[x.Start.UnixMilli()] = true
	}
	cols := min(len(starts), maxColumns)
	col := func(t time.Time) int {
		c := int(float64(t.Sub(from)) / float64(span) * float64(cols))
		return min(max(c, 0), cols-1)
	}
	peak := map[string]float64{}
	cells := map[string][]float64{}
	for _, x := range d.Drift {
		if _, ok := cells[x.Feature]; !ok {
			cells[x.Feature] = make([]float64, cols)
			for i := range cells[x.Feature] {
				cells[x.Feature][i] = -1 // no window
			}
		}
		c := col(x.Start)
		cells[x.Feature][c] = math.Max(cells[x.Feature][c], x.PSI)
		peak[x.Feature] = math.Max(peak[x.Feature], x.PSI)
	}
	features := largestFirst(peak)
	if len(features) > maxRows {
		features = features[:maxRows]
	}
	cw := float64(chartW) / float64(cols)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="heat" viewBox="0 0 %d %d" width="%d" height="%d">`, labelW+chartW, len(features)*cellH, labelW+chartW, len(features)*cellH)
	for r, f := range features {
		y := r * cellH
		fmt.Fprintf(&b, `<text x="%d" y="%d" data-peak="%.3g">%s</text>`, labelW-4, y+cellH-3, peak[f], template.HTMLEscapeString(f))
		row := cells[f]
		for c := 0; c < cols; {
			e := c + 1
			class := -1
			if row[c] >= 0 {
				class = heatClass(row[c])
			}
			for e < cols && (row[e] < 0 && class < 0 || row[e] >= 0 && heatClass(row[e]) == class) {
				e++
			}
			if class >= 0 {
				fmt.Fprintf(&b, `<rect x="%.1f" y="%d" width="%.1f" height="%d" class="h%d"/>`, float64(labelW)+float64(c)*cw, y, float64(e-c)*cw, cellH-1, class)
			}
			c = e
		}
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

var page = template.Must(template.New("report").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>driftd report: {{.Model}}</title>
<style>
body{font:13px system-ui,sans-serif;margin:24px;color:#222}h1{font-size:18px}h2{font-size:15px;margin-top:28px}
svg text{font-size:10px;text-anchor:end;fill:#444}polyline{fill:none;stroke-width:1.5}
.s0{stroke:#1f77b4;fill:#1f77b4}.s1{stroke:#ff7f0e;fill:#ff7f0e}.s2{stroke:#2ca02c;fill:#2ca02c}.s3{stroke:#9467bd;fill:#9467bd}
polyline.s0,polyline.s1,polyline.s2,polyline.s3{fill:none}
.h0{fill:#f1f5f9}.h1{fill:#dbe7f3}.h2{fill:#fde68a}.h3{fill:#fb923c}.h4{fill:#dc2626}.h5{fill:#7f1d1d}
rect.cur{fill:#93c5fd}rect.ref{fill:#d1d5db}polyline.ref{stroke:#111;stroke-width:1.5}
.v-healthy{fill:#16a34a;color:#15803d}.v-inconclusive{fill:#d1d5db;color:#555}.v-regression{fill:#dc2626;color:#b91c1c}
table{border-collapse:collapse}td,th{border-bottom:1px solid #ddd;padding:3px 6px;text-align:left;vertical-align:top}td.n{text-align:right}
.critical{color:#b91c1c}.warning{color:#b45309}.info{color:#1d4ed8}.resolved{color:#15803d}.none{color:#888}
</style></head><body>
<h1>driftd report: {{.Model}}</h1>
{{range .Data.Notes}}<p class="warning">{{.}}</p>
{{end}}<p>{{.From.UTC.Format "2006-01-02 15:04"}} to {{.To.UTC.Format "2006-01-02 15:04"}} UTC · {{.Windows}} windows · {{.Requests}} requests · {{len .Data.Alerts}} alert transitions · generated {{.Generated.UTC.Format "2006-01-02 15:04"}} UTC</p>
<h2>Requests per second</h2>{{.Rate}}
<h2>Latency p50 and p99 (partitions' sketches merged)</h2>{{.Latency}}
<h2>Errors and timeouts</h2>{{.Failed}}
<h2>Null predictions</h2>{{.Nulls}}
<h2>Drift per feature (PSI against the reference; most drifted first)</h2>
<p>PSI: <svg width="330" height="14">{{range $i, $e := .Legend}}<rect x="{{$e.X}}" width="14" height="12" class="h{{$i}}"/><text x="{{$e.TX}}" y="10" style="text-anchor:start">{{$e.Label}}</text>{{end}}</svg></p>
{{if .Heat}}{{.Heat}}{{else}}<p class="none">no drift scores</p>{{end}}
{{range .Dists}}<h2>Distribution of {{.D.Feature}} ({{.D.Slot}}): reference{{if .D.Cur}} vs the newest window, {{.D.Start.UTC.Format "01-02 15:04"}}–{{.D.End.UTC.Format "15:04"}}{{end}}</h2>
<p class="legend"><svg width="360" height="12"><rect class="ref" width="12" height="10"/><text x="16" y="9" style="text-anchor:start">reference (an outline for numbers)</text><rect class="cur" x="220" width="12" height="10"/><text x="236" y="9" style="text-anchor:start">newest window</text></svg>{{if .D.Note}} <span class="none">{{.D.Note}}</span>{{end}}</p>
{{.Chart}}{{end}}
{{if .Features}}<form method="get" action="model"><input type="hidden" name="name" value="{{.Model}}">distribution of <select name="feature">{{range .Data.Features}}<option{{if eq .Name $.Selected}} selected{{end}}>{{.Name}}</option>{{end}}</select> <button>show</button></form>{{end}}
<h2>Missing and mismatched values</h2>
{{if .Missing}}<table><tr><th>feature</th><th>kind</th><th>present</th><th>missing</th><th>other kind</th></tr>
{{range .Missing}}<tr><td>{{.Name}}</td><td>{{.Kind}}</td><td class="n">{{.Present}}</td><td class="n">{{.Missing}}</td><td class="n">{{.Mismatched}}</td></tr>
{{end}}</table>{{else}}<p class="none">every feature had a value of its kind in every event</p>{{end}}
{{if .Data.Performance}}<h2>Performance (settled windows: accuracy, or mean absolute error)</h2>{{.Perf}}<h2>Label coverage</h2>{{.Coverage}}{{end}}
{{if .Data.Canary}}<h2>Canary against the primary</h2>{{.Canary}}{{end}}
{{if .Data.Shadow}}<h2>Shadow agreement with the primary</h2>{{.Shadow}}{{end}}
<h2>Alert timeline</h2>
{{if .Data.Alerts}}<table><tr><th>window</th><th>state</th><th>kind</th><th>slot</th><th>summary</th></tr>
{{range .Data.Alerts}}<tr><td>{{.Start.UTC.Format "01-02 15:04"}}–{{.End.UTC.Format "15:04"}}</td><td class="{{if eq .State "resolved"}}resolved{{else}}{{.Severity}}{{end}}">{{.State}} {{.Severity}}</td><td>{{.Kind}}</td><td>{{.Version}} {{.Slot}}</td><td>{{.Summary}}</td></tr>
{{end}}</table>{{else}}<p class="none">no alerts</p>{{end}}
</body></html>
`))

// legendEntry is one colour of the heat map's legend.
type legendEntry struct {
	X, TX int
	Label string
}

// distSection is one distribution with its chart.
type distSection struct {
	D     Distribution
	Chart template.HTML
}

// Render writes d as one HTML page. With form set (the UI), a form picks the feature
// whose distribution is drawn; a report file has none (it is read offline).
func Render(w io.Writer, d Data, form bool) error {
	windows := map[int64]bool{}
	var requests uint64
	var rate, p50, p99, failed, nulls []point
	for _, t := range d.Traffic {
		windows[t.Start.UnixMilli()] = true
		requests += t.Events
		rate = append(rate, point{t.Start, t.Slot, float64(t.Events) / math.Max(t.End.Sub(t.Start).Seconds(), 1)})
		if t.Events > 0 {
			if !t.NoLatency {
				p50 = append(p50, point{t.Start, t.Slot + " p50", t.P50})
				p99 = append(p99, point{t.Start, t.Slot + " p99", t.P99})
			}
			failed = append(failed, point{t.Start, t.Slot, 100 * float64(t.Failed) / float64(t.Events)})
			nulls = append(nulls, point{t.Start, t.Slot, 100 * float64(t.Nulls) / float64(t.Events)})
		}
	}
	var legend []legendEntry
	for i, l := range []string{"<0.02", "0.02", "0.05", "0.1", "0.25", "≥0.5"} {
		legend = append(legend, legendEntry{X: i * 55, TX: i*55 + 17, Label: l})
	}
	var dists []distSection
	for _, x := range d.Distributions {
		dists = append(dists, distSection{x, distChart(x)})
	}
	var perf, coverage, shadow []point
	for _, p := range d.Performance {
		coverage = append(coverage, point{p.Start, p.Slot, 100 * p.Coverage})
		switch {
		case p.Labelled == 0:
			// Nothing to score: not an accuracy of 0.
		case p.Task == detectors.TaskRegression:
			perf = append(perf, point{p.Start, p.Slot + " MAE", p.MAE})
		default:
			perf = append(perf, point{p.Start, p.Slot + " accuracy", p.Accuracy})
		}
	}
	for _, x := range d.Shadow {
		if x.Matched > 0 { // nothing compared is not 0% agreement
			shadow = append(shadow, point{x.Start, x.Shadow + " vs " + x.Primary, 100 * x.Agreement})
		}
	}
	// The charts span the data: a model that started sending an hour ago is not drawn
	// squeezed into the last 4% of a day.
	from := d.To
	for _, t := range d.Traffic {
		if t.Start.Before(from) {
			from = t.Start
		}
	}
	for _, x := range d.Drift {
		if x.Start.Before(from) {
			from = x.Start
		}
	}
	if from.Before(d.From) || !from.Before(d.To) {
		from = d.From
	}
	selected := ""
	if len(d.Distributions) > 0 {
		selected = d.Distributions[0].Feature
	}
	return page.Execute(w, map[string]any{
		"Model": d.Model, "From": d.From, "To": d.To, "Generated": d.Generated, "Data": d, "Windows": len(windows), "Requests": requests,
		"Rate":    seriesChart(from, d.To, rate, "req/s"),
		"Latency": seriesChart(from, d.To, append(p50, p99...), "ms"),
		"Failed":  seriesChart(from, d.To, failed, "%"),
		"Nulls":   seriesChart(from, d.To, nulls, "%"),
		"Heat":    heatMap(d, from), "Legend": legend, "Dists": dists, "Features": form && len(d.Features) > 0, "Selected": selected,
		"Missing": missingRows(d.Features),
		"Perf":    seriesChart(from, d.To, perf, ""), "Coverage": seriesChart(from, d.To, coverage, "%"),
		"Canary": canaryStrips(from, d.To, d.Canary), "Shadow": seriesChart(from, d.To, shadow, "%"),
	})
}
