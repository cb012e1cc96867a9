package report

import (
	"fmt"
	"html/template"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/driftd/driftd/detectors"
	"github.com/driftd/driftd/processors"
)

// latency sets each traffic row's p50 and p99 from its window's partitions' sketches,
// merged: the stored per-partition percentiles cannot be combined into one. A sketch
// that does not decode leaves its window's latency out (not drawn as 0), with one note
// per slot.
func (r reader) latency(period []any, d *Data) error {
	type key struct {
		start int64
		slot  string
	}
	merged := map[key]processors.Sketch{}
	bad := map[key]bool{}
	type badSlot struct {
		windows int
		first   time.Time
		err     error
	}
	badSlots := map[string]*badSlot{}
	var slots []string
	err := r.read("report_latency", period, func(rows driver.Rows) error {
		var start time.Time
		var version, deployment, enc string
		if err := rows.Scan(&start, &version, &deployment, &enc); err != nil {
			return err
		}
		k := key{start.UnixMilli(), version + " " + deployment}
		sk, err := processors.DecodeSketch([]byte(enc))
		if err != nil {
			b := badSlots[k.slot]
			if b == nil {
				b = &badSlot{first: start, err: err}
				badSlots[k.slot] = b
				slots = append(slots, k.slot)
			}
			if !bad[k] {
				b.windows++
			}
			bad[k] = true
			return nil
		}
		if cur, ok := merged[k]; ok {
			cur.Merge(sk)
		} else {
			merged[k] = sk
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, slot := range slots {
		b := badSlots[slot]
		d.Notes = append(d.Notes, fmt.Sprintf("latency of %s not shown for %d window(s) from %s: a stored sketch does not decode (%v)",
			slot, b.windows, b.first.UTC().Format("01-02 15:04"), b.err))
	}
	for i, t := range d.Traffic {
		k := key{t.Start.UnixMilli(), t.Slot}
		if sk, ok := merged[k]; ok && sk.Count() > 0 && !bad[k] {
			d.Traffic[i].P50, d.Traffic[i].P99 = sk.Quantile(0.5), sk.Quantile(0.99)
		} else {
			d.Traffic[i].NoLatency = true
		}
	}
	return nil
}

// performance reads the settled windows of the period (the performance query).
func (r reader) performance(sel Selection, d *Data) error {
	args := []any{clickhouse.Named("model", sel.Model), clickhouse.Named("since", chTime(sel.From))}
	return r.read("performance", args, func(rows driver.Rows) error {
		var (
			p                            Performance
			version, deployment          string
			predictions, beyond          uint64
			f1, logLoss, auc, rmse, mape float64
			outcomes                     map[string]float64
			inReference                  uint8
			labelsUntil                  time.Time
		)
		if err := rows.Scan(&p.Start, &version, &deployment, &p.Task, &predictions, &p.Labelled, &p.Coverage, &beyond,
			&p.Accuracy, &f1, &logLoss, &auc, &p.MAE, &rmse, &mape, &outcomes, &inReference, &labelsUntil); err != nil {
			return err
		}
		if p.Start.Before(sel.To) {
			p.Slot = version + " " + deployment
			d.Performance = append(d.Performance, p)
		}
		return nil
	})
}

// maxCategories bounds the categories a distribution chart shows (the largest).
const maxCategories = 12

// distributions reads the selected feature's and the prediction's distribution in the
// busiest slot's newest window, against that version's reference.
func (r reader) distributions(sel Selection, d *Data) error {
	events := map[[2]string]uint64{}
	for _, t := range d.Traffic {
		events[[2]string{t.Version, t.Deployment}] += t.Events
	}
	var slot [2]string
	var most uint64
	for s, n := range events {
		if n > most || n == most && (s[0] < slot[0] || s[0] == slot[0] && s[1] < slot[1]) {
			slot, most = s, n
		}
	}
	if most == 0 {
		return nil
	}
	feature := sel.Feature
	if feature == "" {
		feature = mostDrifted(d.Drift)
	}
	if feature == "" {
		for _, f := range d.Features {
			if !processors.IsOutputFeature(f.Name) {
				feature = f.Name
				break
			}
		}
	}
	var ref *detectors.Profile
	refBroken := false
	err := r.read("report_reference", []any{clickhouse.Named("model", sel.Model), clickhouse.Named("version", slot[0])}, func(rows driver.Rows) error {
		var body string
		if err := rows.Scan(&body); err != nil {
			return err
		}
		p, err := detectors.UnmarshalProfile([]byte(body))
		if err != nil {
			// The window is still drawn, without the reference to compare it with.
			d.Notes = append(d.Notes, fmt.Sprintf("the reference of version %s does not decode (%v): distributions are drawn without it", slot[0], err))
			refBroken = true
			return nil
		}
		ref = p
		return nil
	})
	if err != nil {
		return err
	}
	for _, f := range []string{feature, processors.PredictionFeature} {
		if f == "" || len(d.Distributions) > 0 && d.Distributions[0].Feature == f {
			continue
		}
		dist, err := r.distribution(sel, slot, f, ref, refBroken)
		if err != nil {
			return err
		}
		if dist != nil {
			d.Distributions = append(d.Distributions, *dist)
		}
	}
	return nil
}

// mostDrifted is the feature with the highest PSI of the period ("" without scores).
func mostDrifted(drift []Drift) string {
	best, peak := "", -1.0
	for _, x := range drift {
		if x.PSI > peak || x.PSI == peak && x.Feature < best {
			best, peak = x.Feature, x.PSI
		}
	}
	return best
}

// distribution reads one feature's newest window in slot (nil when it has none), its
// partitions merged: those counted between the reference's bin edges, and those written
// before it existed binned from the values they kept. A partition counted against
// another layout is left out, and the note says so.
func (r reader) distribution(sel Selection, slot [2]string, feature string, ref *detectors.Profile, refBroken bool) (*Distribution, error) {
	type partition struct {
		count uint64
		edges []float64
		bins  []uint64
		raw   []float64
		cats  map[string]uint64
	}
	dist := Distribution{Feature: feature, Slot: slot[0] + " " + slot[1]}
	var parts []partition
	args := []any{clickhouse.Named("model", sel.Model), clickhouse.Named("version", slot[0]), clickhouse.Named("deployment", slot[1]),
		clickhouse.Named("feature", feature), clickhouse.Named("from", chTime(sel.From)), clickhouse.Named("to", chTime(sel.To))}
	err := r.read("report_distribution", args, func(rows driver.Rows) error {
		var p partition
		if err := rows.Scan(&dist.Start, &dist.End, &dist.Kind, &p.count, &p.edges, &p.bins, &p.raw, &p.cats); err != nil {
			return err
		}
		parts = append(parts, p)
		return nil
	})
	if err != nil || len(parts) == 0 {
		return nil, err
	}
	var fp *detectors.FeatureProfile
	if ref != nil {
		fp = ref.Features[feature]
	}
	switch {
	case fp != nil:
	case ref != nil:
		dist.Note = "the reference has no profile of this feature"
	case refBroken:
		dist.Note = "the reference does not decode (see above)"
	default:
		dist.Note = "no reference for this version yet"
	}
	if dist.Kind != processors.Numeric.String() {
		cats := map[string]uint64{}
		for _, p := range parts {
			for c, n := range p.cats {
				cats[c] += n
			}
		}
		var refCats map[string]uint64
		if fp != nil {
			refCats = fp.Categories
		}
		dist.Categories, dist.Ref, dist.Cur = categoryShares(refCats, cats)
		if fp == nil {
			dist.Ref = nil
		}
		return &dist, nil
	}
	// The layout drawn: the reference's, else the first partition's own.
	var edges []float64
	if fp != nil && len(fp.Bins) > 0 && len(fp.Bins) == len(fp.Edges)+1 {
		edges, dist.Ref = fp.Edges, floats(fp.Bins)
	} else {
		for _, p := range parts {
			if len(p.bins) > 0 && len(p.bins) == len(p.edges)+1 {
				edges = p.edges
				break
			}
		}
	}
	if edges == nil {
		return &dist, nil
	}
	dist.Edges = edges
	cur := make([]float64, len(edges)+1)
	var total, drawn, unkept uint64
	for _, p := range parts {
		total += p.count
		switch {
		case len(p.bins) == len(edges)+1 && equalEdges(p.edges, edges):
			var binned uint64
			for i, n := range p.bins {
				cur[i] += float64(n)
				binned += n
			}
			drawn += binned
			if p.count > binned && p.count >= processors.MaxRawValues {
				// Binned from the values kept before the reference existed.
				unkept += p.count - binned
			}
		case len(p.raw) > 0:
			for _, x := range p.raw {
				cur[processors.BinIndex(edges, x)]++
			}
			drawn += uint64(len(p.raw))
			unkept += p.count - min(p.count, uint64(len(p.raw)))
		}
	}
	if drawn > 0 {
		dist.Cur = cur
	}
	switch other := total - drawn - unkept; {
	case other > 0:
		dist.Note = fmt.Sprintf("%d of the newest window's %d values are drawn: %d were counted against another layout's bins or stored without their values (by a driftd before migration 0016)", drawn, total, other)
	case unkept > 0:
		dist.Note = fmt.Sprintf("%d of the newest window's %d values are drawn: the window opened before the reference, which keeps the first %d values of each partition", drawn, total, processors.MaxRawValues)
	}
	return &dist, nil
}

func floats(xs []uint64) []float64 {
	out := make([]float64, len(xs))
	for i, x := range xs {
		out[i] = float64(x)
	}
	return out
}

func equalEdges(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// categoryShares lists the categories with the largest share on either side (at most
// maxCategories, the rest summed under "other") with their counts on each side.
func categoryShares(ref, cur map[string]uint64) ([]string, []float64, []float64) {
	total := func(m map[string]uint64) float64 {
		var n uint64
		for _, v := range m {
			n += v
		}
		return math.Max(float64(n), 1)
	}
	tr, tc := total(ref), total(cur)
	share := map[string]float64{}
	for c, n := range ref {
		share[c] = math.Max(share[c], float64(n)/tr)
	}
	for c, n := range cur {
		share[c] = math.Max(share[c], float64(n)/tc)
	}
	names := largestFirst(share)
	other := len(names) > maxCategories
	if other {
		names = names[:maxCategories]
	}
	shown := map[string]bool{}
	r, c := make([]float64, len(names)), make([]float64, len(names))
	for i, n := range names {
		shown[n] = true
		r[i], c[i] = float64(ref[n]), float64(cur[n])
	}
	if other {
		var ro, co float64
		for n, v := range ref {
			if !shown[n] {
				ro += float64(v)
			}
		}
		for n, v := range cur {
			if !shown[n] {
				co += float64(v)
			}
		}
		names, r, c = append(names, "(other)"), append(r, ro), append(c, co)
	}
	return names, r, c
}

// point is one value of one series at one time, for seriesChart.
type point struct {
	t      time.Time
	series string
	v      float64
}

// seriesChart draws points as one line per series over [from, to).
func seriesChart(from, to time.Time, points []point, unit string) template.HTML {
	span := to.Sub(from)
	bySeries := map[string][]point{}
	top := 0.0
	for _, p := range points {
		bySeries[p.series] = append(bySeries[p.series], p)
		top = math.Max(top, p.v)
	}
	if len(bySeries) == 0 || span <= 0 {
		return template.HTML(`<p class="none">no data</p>`)
	}
	if top == 0 {
		top = 1
	}
	names := make([]string, 0, len(bySeries))
	for s := range bySeries {
		names = append(names, s)
	}
	sort.Strings(names)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="line" viewBox="0 0 %d %d" width="%d" height="%d">`, labelW+chartW, chartH+14, labelW+chartW, chartH+14)
	fmt.Fprintf(&b, `<text x="%d" y="10">%.4g %s</text><text x="%d" y="%d">0</text>`, labelW-4, top, unit, labelW-4, chartH)
	for i, s := range names {
		fmt.Fprintf(&b, `<polyline class="s%d" points="`, i%4)
		for _, p := range bySeries[s] {
			x := float64(labelW) + float64(p.t.Sub(from))/float64(span)*chartW
			fmt.Fprintf(&b, "%.1f,%.1f ", x, chartH-p.v/top*(chartH-12))
		}
		fmt.Fprintf(&b, `"/><text class="s%d" x="%d" y="%d">%s</text>`, i%4, labelW-4, 24+12*i, template.HTMLEscapeString(s))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// distChart draws a distribution: for a numeric feature each bin's density (its share over
// its width, so that unequal bins compare), the reference as an outline and the newest
// window as bars; for a categorical one each category's share, side by side.
func distChart(d Distribution) template.HTML {
	const h = 120
	share := func(xs []float64) []float64 {
		var n float64
		for _, x := range xs {
			n += x
		}
		out := make([]float64, len(xs))
		for i, x := range xs {
			out[i] = x / math.Max(n, 1)
		}
		return out
	}
	var b strings.Builder
	if d.Kind != processors.Numeric.String() {
		if len(d.Categories) == 0 {
			return template.HTML(`<p class="none">no values</p>`)
		}
		r, c := share(d.Ref), share(d.Cur)
		top := 0.0
		for i := range d.Categories {
			if i < len(r) {
				top = math.Max(top, r[i])
			}
			top = math.Max(top, c[i])
		}
		top = math.Max(top, 1e-12) // every count 0: bars of height 0, not NaN
		bw := float64(chartW) / float64(len(d.Categories))
		fmt.Fprintf(&b, `<svg class="dist" viewBox="0 0 %d %d" width="%d" height="%d">`, labelW+chartW, h+28, labelW+chartW, h+28)
		for i, name := range d.Categories {
			x := float64(labelW) + float64(i)*bw
			if i < len(r) {
				fmt.Fprintf(&b, `<rect class="ref" x="%.1f" y="%.1f" width="%.1f" height="%.1f"><title>reference %.1f%%</title></rect>`, x+2, h-r[i]/top*h, bw/2-2, r[i]/top*h, 100*r[i])
			}
			fmt.Fprintf(&b, `<rect class="cur" x="%.1f" y="%.1f" width="%.1f" height="%.1f"><title>newest window %.1f%%</title></rect>`, x+bw/2, h-c[i]/top*h, bw/2-2, c[i]/top*h, 100*c[i])
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" style="text-anchor:middle">%s</text>`, x+bw/2, h+12, template.HTMLEscapeString(name))
		}
		b.WriteString(`</svg>`)
		return template.HTML(b.String())
	}
	if len(d.Edges) == 0 || (d.Ref == nil && d.Cur == nil) {
		return template.HTML(`<p class="none">no bins to draw</p>`)
	}
	// Bin i spans [e[i-1], e[i]]; the open outer bins are drawn as wide as their
	// neighbours.
	e := d.Edges
	gap := 1.0
	if len(e) > 1 {
		gap = (e[len(e)-1] - e[0]) / float64(len(e)-1)
	}
	bounds := append(append([]float64{e[0] - gap}, e...), e[len(e)-1]+gap)
	lo, hi := bounds[0], bounds[len(bounds)-1]
	x := func(v float64) float64 { return float64(labelW) + (v-lo)/math.Max(hi-lo, 1e-12)*chartW }
	density := func(xs []float64) []float64 {
		s := share(xs)
		for i := range s {
			s[i] /= math.Max(bounds[i+1]-bounds[i], 1e-12)
		}
		return s
	}
	var r, c []float64
	top := 0.0
	if d.Ref != nil {
		r = density(d.Ref)
		for _, v := range r {
			top = math.Max(top, v)
		}
	}
	if d.Cur != nil {
		c = density(d.Cur)
		for _, v := range c {
			top = math.Max(top, v)
		}
	}
	top = math.Max(top, 1e-12)
	fmt.Fprintf(&b, `<svg class="dist" viewBox="0 0 %d %d" width="%d" height="%d">`, labelW+chartW, h+28, labelW+chartW, h+28)
	for i, v := range c {
		fmt.Fprintf(&b, `<rect class="cur" x="%.1f" y="%.1f" width="%.1f" height="%.1f"/>`, x(bounds[i]), h-v/top*h, math.Max(x(bounds[i+1])-x(bounds[i])-0.5, 0.5), v/top*h)
	}
	if r != nil {
		b.WriteString(`<polyline class="ref" points="`)
		for i, v := range r {
			y := h - v/top*h
			fmt.Fprintf(&b, "%.1f,%.1f %.1f,%.1f ", x(bounds[i]), y, x(bounds[i+1]), y)
		}
		b.WriteString(`"/>`)
	}
	for _, v := range []float64{e[0], e[len(e)/2], e[len(e)-1]} {
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" style="text-anchor:middle">%.4g</text>`, x(v), h+12, v)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// canaryStrips draws each canary's verdict per window as a strip of cells (healthy,
// inconclusive, regression) with its latest reason.
func canaryStrips(from, to time.Time, cs []Canary) template.HTML {
	if len(cs) == 0 {
		return ""
	}
	span := to.Sub(from)
	if span <= 0 {
		return ""
	}
	byCanary := map[string][]Canary{}
	var names []string
	for _, c := range cs {
		if _, ok := byCanary[c.Canary]; !ok {
			names = append(names, c.Canary)
		}
		byCanary[c.Canary] = append(byCanary[c.Canary], c)
	}
	var b strings.Builder
	for _, n := range names {
		rows := byCanary[n]
		last := rows[len(rows)-1]
		fmt.Fprintf(&b, `<p>%s against %s: latest <b class="v-%s">%s</b> (%d vs %d requests): %s</p>`, template.HTMLEscapeString(n),
			template.HTMLEscapeString(last.Primary), template.HTMLEscapeString(last.Verdict), template.HTMLEscapeString(last.Verdict),
			last.CanaryEvents, last.PrimaryEvents, template.HTMLEscapeString(last.Reason))
		fmt.Fprintf(&b, `<svg class="strip" viewBox="0 0 %d 14" width="%d" height="14">`, labelW+chartW, labelW+chartW)
		for i, c := range rows {
			end := to
			if i+1 < len(rows) {
				end = rows[i+1].Start
			}
			x0 := float64(labelW) + float64(c.Start.Sub(from))/float64(span)*chartW
			x1 := float64(labelW) + float64(end.Sub(from))/float64(span)*chartW
			fmt.Fprintf(&b, `<rect class="v-%s" x="%.1f" width="%.1f" height="12"/>`, template.HTMLEscapeString(c.Verdict), x0, math.Max(x1-x0, 0.5))
		}
		b.WriteString(`</svg>`)
	}
	return template.HTML(b.String())
}

// missingRows are the features with missing or mismatched values, most missing first
// (at most maxRows).
func missingRows(fs []FeatureHealth) []FeatureHealth {
	var out []FeatureHealth
	for _, f := range fs {
		if f.Missing+f.Mismatched > 0 {
			out = append(out, f)
		}
	}
	rate := func(f FeatureHealth) float64 {
		return float64(f.Missing+f.Mismatched) / math.Max(float64(f.Present+f.Missing+f.Mismatched), 1)
	}
	sort.SliceStable(out, func(i, j int) bool { return rate(out[i]) > rate(out[j]) })
	if len(out) > maxRows {
		out = out[:maxRows]
	}
	return out
}

// largestFirst returns m's keys by value, largest first, ties by name.
func largestFirst(m map[string]float64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	return keys
}
