package detectors

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/driftd/driftd/processors"
	"github.com/driftd/driftd/schemas"
)

// Reference sources.
const (
	SourceFirstWindows = "first_windows"
	SourceFile         = "file"
)

// ReferenceBins is the number of quantile bins a numeric reference is cut into; PSI is
// computed over PSIBins groups of them.
const (
	ReferenceBins = 50
	PSIBins       = 10
	// MaxReferenceCategories bounds the categories a reference keeps per feature.
	MaxReferenceCategories = 200
	// MaxSample bounds the values per numeric feature a reference is built from.
	MaxSample = 100000
)

// Profile is a versioned reference distribution for one model version: what every later
// window of that version is compared with. It is built once and reused.
type Profile struct {
	ID        string                     `json:"id"`
	Model     string                     `json:"model"`
	Version   string                     `json:"model_version"`
	Source    string                     `json:"source"`
	CreatedAt time.Time                  `json:"created_at"`
	Windows   int                        `json:"windows"`
	Events    uint64                     `json:"events"`
	Features  map[string]*FeatureProfile `json:"features"`
	// PCA models the joint distribution of the numeric features (nil with fewer than two).
	PCA *PCAModel `json:"pca,omitempty"`
}

// FeatureProfile is one feature's reference distribution.
type FeatureProfile struct {
	Kind       string            `json:"kind"` // "numeric" or "categorical"
	Count      uint64            `json:"count"`
	Missing    uint64            `json:"missing"`
	Mean       float64           `json:"mean,omitempty"`
	Std        float64           `json:"std,omitempty"`
	Edges      []float64         `json:"edges,omitempty"`
	Bins       []uint64          `json:"bins,omitempty"`
	Categories map[string]uint64 `json:"categories,omitempty"`
}

// Layout tells windows how to count values so that they compare with this profile.
func (p *Profile) Layout() *processors.Layout {
	l := &processors.Layout{ReferenceID: p.ID, Features: map[string]processors.FeatureLayout{}}
	if p.PCA != nil {
		l.Joint = p.PCA.Features
	}
	for name, f := range p.Features {
		switch f.Kind {
		case processors.Numeric.String():
			l.Features[name] = processors.FeatureLayout{Kind: processors.Numeric, Edges: f.Edges}
		case processors.Categorical.String():
			cats := make(map[string]struct{}, len(f.Categories))
			for c := range f.Categories {
				cats[c] = struct{}{}
			}
			l.Features[name] = processors.FeatureLayout{Kind: processors.Categorical, Categories: cats}
		}
	}
	return l
}

// MarshalProfile encodes a profile for storage.
func MarshalProfile(p *Profile) ([]byte, error) { return json.Marshal(p) }

// UnmarshalProfile decodes a stored profile.
func UnmarshalProfile(b []byte) (*Profile, error) {
	var p Profile
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("decode reference profile: %w", err)
	}
	return &p, nil
}

// Sample collects the values a reference is built from: every value of categorical
// features, and up to MaxSample values of each numeric feature (first come).
type Sample struct {
	Events uint64
	// rows keep each event's numeric features (NaN where absent), columns in order of
	// first sight, for the joint model.
	rows    [][]float64
	cols    map[string]int
	numeric map[string][]float64
	cats    map[string]map[string]uint64
	missing map[string]uint64
	kinds   map[string]processors.FeatureKind
}

// NewSample returns an empty sample.
func NewSample() *Sample {
	return &Sample{cols: map[string]int{}, numeric: map[string][]float64{}, cats: map[string]map[string]uint64{},
		missing: map[string]uint64{}, kinds: map[string]processors.FeatureKind{}}
}

// AddEvent adds one prediction's features and its prediction.
func (s *Sample) AddEvent(e *schemas.PredictionEvent) {
	s.Events++
	for i := range e.Features {
		s.Add(e.Features[i].Name, e.Features[i].Value)
	}
	s.Add(processors.PredictionFeature, e.Prediction)
	s.addRow(e.Features)
}

func (s *Sample) addRow(fs []schemas.Feature) {
	if len(s.rows) >= MaxJointRows {
		return
	}
	var row []float64
	for _, f := range fs {
		if f.Value.Kind != schemas.Number {
			continue
		}
		c, ok := s.cols[f.Name]
		if !ok {
			if len(s.cols) >= 64 { // the joint model covers at most 64 features
				continue
			}
			c = len(s.cols)
			s.cols[f.Name] = c
		}
		for len(row) <= c {
			row = append(row, math.NaN())
		}
		row[c] = f.Value.Num
	}
	if row != nil {
		s.rows = append(s.rows, row)
	}
}

// Add adds one value of one feature. A feature's kind is that of its first value.
func (s *Sample) Add(name string, v schemas.Value) {
	if v.Kind == schemas.Missing {
		s.missing[name]++
		return
	}
	kind := processors.Categorical
	if v.Kind == schemas.Number {
		kind = processors.Numeric
	}
	if k, ok := s.kinds[name]; !ok {
		if len(s.kinds) >= processors.DefaultLimits.MaxFeatures {
			return
		}
		s.kinds[name] = kind
	} else if k != kind {
		return
	}
	if kind == processors.Numeric {
		if len(s.numeric[name]) < MaxSample {
			s.numeric[name] = append(s.numeric[name], v.Num)
		}
		return
	}
	c := s.cats[name]
	if c == nil {
		c = map[string]uint64{}
		s.cats[name] = c
	}
	c[v.Category()]++
}

// Merge adds o into s.
func (s *Sample) Merge(o *Sample) {
	s.Events += o.Events
	for name, k := range o.kinds {
		if _, ok := s.kinds[name]; !ok {
			s.kinds[name] = k
		}
	}
	for name, vs := range o.numeric {
		room := MaxSample - len(s.numeric[name])
		s.numeric[name] = append(s.numeric[name], vs[:min(room, len(vs))]...)
	}
	for name, cs := range o.cats {
		if s.cats[name] == nil {
			s.cats[name] = map[string]uint64{}
		}
		for c, n := range cs {
			s.cats[name][c] += n
		}
	}
	for name, n := range o.missing {
		s.missing[name] += n
	}
	// Rows are re-keyed by name: the two samples may have met features in another order.
	for _, r := range o.rows {
		if len(s.rows) >= MaxJointRows {
			break
		}
		var fs []schemas.Feature
		for name, c := range o.cols {
			if c < len(r) && !math.IsNaN(r[c]) {
				fs = append(fs, schemas.Feature{Name: name, Value: schemas.Value{Kind: schemas.Number, Num: r[c]}})
			}
		}
		sort.Slice(fs, func(i, j int) bool { return fs[i].Name < fs[j].Name })
		s.addRow(fs)
	}
}

// Build turns the sample into a profile. createdAt is passed in (no clock here).
func (s *Sample) Build(model, version, source string, windows int, createdAt time.Time) *Profile {
	p := &Profile{Model: model, Version: version, Source: source, CreatedAt: createdAt.UTC(), Windows: windows,
		Events: s.Events, Features: map[string]*FeatureProfile{}}
	for name, kind := range s.kinds {
		f := &FeatureProfile{Kind: kind.String(), Missing: s.missing[name]}
		if kind == processors.Numeric {
			vals := append([]float64(nil), s.numeric[name]...)
			sort.Float64s(vals)
			f.Count = uint64(len(vals))
			var m processors.Moments
			for _, v := range vals {
				m.Add(v)
			}
			f.Mean, f.Std = m.Mean, m.Std()
			f.Edges = quantileEdges(vals, ReferenceBins)
			f.Bins = make([]uint64, len(f.Edges)+1)
			for _, v := range vals {
				f.Bins[processors.BinIndex(f.Edges, v)]++
			}
		} else {
			f.Categories = topCategories(s.cats[name], MaxReferenceCategories)
			for _, n := range f.Categories {
				f.Count += n
			}
		}
		p.Features[name] = f
	}
	p.PCA = s.fitPCA(p)
	p.ID = profileID(p)
	return p
}

// fitPCA models the numeric features that are present in most rows (sorted by name),
// over the rows that have all of them.
func (s *Sample) fitPCA(p *Profile) *PCAModel {
	var names []string
	for name, c := range s.cols {
		present := 0
		for _, r := range s.rows {
			if c < len(r) && !math.IsNaN(r[c]) {
				present++
			}
		}
		if f := p.Features[name]; f != nil && f.Kind == processors.Numeric.String() && f.Std > 0 && present*10 >= len(s.rows)*9 {
			names = append(names, name)
		}
	}
	if len(names) < 2 {
		return nil
	}
	sort.Strings(names)
	var rows [][]float64
	for _, r := range s.rows {
		row := make([]float64, len(names))
		ok := true
		for i, name := range names {
			c := s.cols[name]
			if c >= len(r) || math.IsNaN(r[c]) {
				ok = false
				break
			}
			row[i] = r[c]
		}
		if ok {
			rows = append(rows, row)
		}
	}
	m, err := FitPCA(names, rows)
	if err != nil {
		return nil
	}
	return m
}

// quantileEdges returns the distinct values at the k/bins quantiles (k = 1 … bins−1) of
// sorted vals, so each bin holds about 1/bins of the reference (ties merge bins).
func quantileEdges(sorted []float64, bins int) []float64 {
	if len(sorted) == 0 {
		return nil
	}
	var edges []float64
	for k := 1; k < bins; k++ {
		i := int(math.Ceil(float64(k)*float64(len(sorted))/float64(bins))) - 1
		v := sorted[max(i, 0)]
		if len(edges) == 0 || v > edges[len(edges)-1] {
			edges = append(edges, v)
		}
	}
	// A last edge at the maximum keeps "larger than anything in the reference" apart.
	if last := sorted[len(sorted)-1]; len(edges) == 0 || last > edges[len(edges)-1] {
		edges = append(edges, last)
	}
	return edges
}

func topCategories(counts map[string]uint64, k int) map[string]uint64 {
	if len(counts) <= k {
		out := make(map[string]uint64, len(counts))
		for c, n := range counts {
			out[c] = n
		}
		return out
	}
	names := make([]string, 0, len(counts))
	for c := range counts {
		names = append(names, c)
	}
	sort.Slice(names, func(i, j int) bool {
		if counts[names[i]] != counts[names[j]] {
			return counts[names[i]] > counts[names[j]]
		}
		return names[i] < names[j]
	})
	out := make(map[string]uint64, k+1)
	for i, c := range names {
		if i < k {
			out[c] = counts[c]
		} else {
			out[processors.OtherCategory] += counts[c]
		}
	}
	return out
}

// profileID is a content hash: the same data gives the same id, so re-building a
// reference after a restart does not create a new version.
func profileID(p *Profile) string {
	cp := *p
	cp.ID, cp.CreatedAt = "", time.Time{}
	b, _ := json.Marshal(&cp)
	h := sha256.Sum256(b)
	return p.Source + "-" + hex.EncodeToString(h[:6])
}
