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
	"sort"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	dsql "github.com/driftd/driftd/sql"
)

// Querier runs a query (a clickhouse-go connection).
type Querier interface {
	Query(ctx context.Context, query string, args ...any) (driver.Rows, error)
	QueryRow(ctx context.Context, query string, args ...any) driver.Row
}

// Traffic is one slot's traffic in one window.
type Traffic struct {
	Start, End     time.Time
	Slot           string
	Events, Failed uint64
	P99            float64
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

// Data is what a report shows.
type Data struct {
	Model     string
	From, To  time.Time
	Generated time.Time
	Traffic   []Traffic
	Drift     []Drift
	Alerts    []Alert
}

// Load reads a model's windows and alerts in [from, to) from database db.
func Load(ctx context.Context, q Querier, db, model string, from, to time.Time) (Data, error) {
	d := Data{Model: model, From: from, To: to}
	args := []any{clickhouse.Named("model", model), clickhouse.Named("from", from.UTC().Format("2006-01-02 15:04:05.000")),
		clickhouse.Named("to", to.UTC().Format("2006-01-02 15:04:05.000"))}
	read := func(name string, scan func(driver.Rows) error) error {
		query, err := dsql.Query(name, db)
		if err != nil {
			return err
		}
		rows, err := q.Query(ctx, query, args...)
		if err != nil {
			return fmt.Errorf("report %s of %s: %w", name, model, err)
		}
		defer rows.Close()
		for rows.Next() {
			if err := scan(rows); err != nil {
				return fmt.Errorf("report %s of %s: %w", name, model, err)
			}
		}
		return rows.Err()
	}
	if err := read("report_traffic", func(r driver.Rows) error {
		var t Traffic
		err := r.Scan(&t.Start, &t.End, &t.Slot, &t.Events, &t.Failed, &t.P99)
		d.Traffic = append(d.Traffic, t)
		return err
	}); err != nil {
		return d, err
	}
	if err := read("report_drift", func(r driver.Rows) error {
		var x Drift
		var drifted uint8
		err := r.Scan(&x.Start, &x.Feature, &x.PSI, &drifted)
		x.Drifted = drifted != 0
		d.Drift = append(d.Drift, x)
		return err
	}); err != nil {
		return d, err
	}
	err := read("report_alerts", func(r driver.Rows) error {
		var a Alert
		err := r.Scan(&a.Emitted, &a.Start, &a.End, &a.State, &a.Severity, &a.Kind, &a.Version, &a.Slot, &a.Feature, &a.Summary)
		d.Alerts = append(d.Alerts, a)
		return err
	})
	return d, err
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
func heatMap(d Data) template.HTML {
	if len(d.Drift) == 0 {
		return ""
	}
	span := d.To.Sub(d.From)
	if span <= 0 {
		return ""
	}
	starts := map[int64]bool{}
	for _, x := range d.Drift {
		starts[x.Start.UnixMilli()] = true
	}
	cols := min(len(starts), maxColumns)
	col := func(t time.Time) int {
		c := int(float64(t.Sub(d.From)) / float64(span) * float64(cols))
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
	features := make([]string, 0, len(cells))
	for f := range cells {
		features = append(features, f)
	}
	sort.Slice(features, func(i, j int) bool {
		if peak[features[i]] != peak[features[j]] {
			return peak[features[i]] > peak[features[j]]
		}
		return features[i] < features[j]
	})
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

// lineChart draws one value per window and slot as a line per slot.
func lineChart(d Data, value func(Traffic) (float64, bool), unit string) template.HTML {
	span := d.To.Sub(d.From)
	bySlot := map[string][]Traffic{}
	top := 0.0
	for _, t := range d.Traffic {
		if v, ok := value(t); ok {
			bySlot[t.Slot] = append(bySlot[t.Slot], t)
			top = math.Max(top, v)
		}
	}
	if len(bySlot) == 0 || span <= 0 {
		return template.HTML(`<p class="none">no data</p>`)
	}
	if top == 0 {
		top = 1
	}
	slots := make([]string, 0, len(bySlot))
	for s := range bySlot {
		slots = append(slots, s)
	}
	sort.Strings(slots)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="line" viewBox="0 0 %d %d" width="%d" height="%d">`, labelW+chartW, chartH+14, labelW+chartW, chartH+14)
	fmt.Fprintf(&b, `<text x="%d" y="10">%.4g %s</text><text x="%d" y="%d">0</text>`, labelW-4, top, unit, labelW-4, chartH)
	for i, s := range slots {
		fmt.Fprintf(&b, `<polyline class="s%d" points="`, i%4)
		for _, t := range bySlot[s] {
			v, _ := value(t)
			x := float64(labelW) + float64(t.Start.Sub(d.From))/float64(span)*chartW
			fmt.Fprintf(&b, "%.1f,%.1f ", x, chartH-v/top*(chartH-12))
		}
		fmt.Fprintf(&b, `"/><text class="s%d" x="%d" y="%d">%s</text>`, i%4, 4, 24+12*i, template.HTMLEscapeString(s))
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
table{border-collapse:collapse}td,th{border-bottom:1px solid #ddd;padding:3px 6px;text-align:left;vertical-align:top}
.critical{color:#b91c1c}.warning{color:#b45309}.info{color:#1d4ed8}.resolved{color:#15803d}.none{color:#888}
</style></head><body>
<h1>driftd report: {{.Model}}</h1>
<p>{{.From.UTC.Format "2006-01-02 15:04"}} to {{.To.UTC.Format "2006-01-02 15:04"}} UTC · {{.Windows}} windows · {{.Requests}} requests · {{len .Data.Alerts}} alert transitions · generated {{.Generated.UTC.Format "2006-01-02 15:04"}} UTC</p>
<h2>Requests per second</h2>{{.Rate}}
<h2>p99 latency (busiest partition)</h2>{{.P99}}
<h2>Errors and timeouts</h2>{{.Failed}}
<h2>Drift per feature (PSI against the reference; most drifted first)</h2>
<p>PSI: <svg width="330" height="14">{{range $i, $e := .Legend}}<rect x="{{$e.X}}" width="14" height="12" class="h{{$i}}"/><text x="{{$e.TX}}" y="10" style="text-anchor:start">{{$e.Label}}</text>{{end}}</svg></p>
{{if .Heat}}{{.Heat}}{{else}}<p class="none">no drift scores</p>{{end}}
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

// Render writes d as one HTML page.
func Render(w io.Writer, d Data) error {
	windows := map[int64]bool{}
	var requests uint64
	for _, t := range d.Traffic {
		windows[t.Start.UnixMilli()] = true
		requests += t.Events
	}
	var legend []legendEntry
	for i, l := range []string{"<0.02", "0.02", "0.05", "0.1", "0.25", "≥0.5"} {
		legend = append(legend, legendEntry{X: i * 55, TX: i*55 + 17, Label: l})
	}
	perSecond := func(t Traffic) (float64, bool) {
		s := t.End.Sub(t.Start).Seconds()
		return float64(t.Events) / math.Max(s, 1), true
	}
	return page.Execute(w, map[string]any{
		"Model": d.Model, "From": d.From, "To": d.To, "Generated": d.Generated, "Data": d, "Windows": len(windows), "Requests": requests,
		"Rate": lineChart(d, perSecond, "req/s"),
		"P99":  lineChart(d, func(t Traffic) (float64, bool) { return t.P99, t.Events > 0 }, "ms"),
		"Failed": lineChart(d, func(t Traffic) (float64, bool) {
			return 100 * float64(t.Failed) / math.Max(float64(t.Events), 1), t.Events > 0
		}, "%"),
		"Heat": heatMap(d), "Legend": legend,
	})
}
