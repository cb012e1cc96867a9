package detectors

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"slices"
	"testing"
)

type changeRun struct {
	Drifts   []int `json:"drifts"`
	Warnings []int `json:"-"`
}

// riverRun is a changeRun as gen_changes.py writes it: warnings as [first, last] runs.
type riverRun struct {
	Drifts   []int    `json:"drifts"`
	Warnings [][2]int `json:"warnings"`
}

func (r riverRun) expand() changeRun {
	out := changeRun{Drifts: r.Drifts}
	for _, w := range r.Warnings {
		for i := w[0]; i <= w[1]; i++ {
			out.Warnings = append(out.Warnings, i)
		}
	}
	return out
}

type changeReference struct {
	River   string `json:"river"`
	Streams map[string]struct {
		Binary  bool      `json:"binary"`
		DriftAt *int      `json:"drift_at"`
		Values  []float64 `json:"values"`
	} `json:"streams"`
	Detections map[string]map[string]riverRun `json:"detections"`
	KSWINSeeds map[string][][]int             `json:"kswin_seeds"`
	ParamCases []struct {
		Kind     string         `json:"kind"`
		Params   map[string]any `json:"params"`
		Stream   string         `json:"stream"`
		Drifts   []int          `json:"drifts"`
		Warnings [][2]int       `json:"warnings"`
	} `json:"param_cases"`
	KSExact []struct {
		N, H int
		D, P float64
	} `json:"ks_exact"`
}

func loadChangeReference(t testing.TB) changeReference {
	t.Helper()
	b, err := os.ReadFile("testdata/changes_reference.json")
	if err != nil {
		t.Fatal(err)
	}
	var ref changeReference
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	if ref.River != "0.26.1" || len(ref.Streams) == 0 {
		t.Fatalf("reference from River %q with %d streams", ref.River, len(ref.Streams))
	}
	return ref
}

// runChange feeds values to d and returns the indices of drifts and of warnings.
func runChange(d ChangeDetector, values []float64) changeRun {
	var r changeRun
	for i, v := range values {
		switch d.Update(v) {
		case ChangeDrift:
			r.Drifts = append(r.Drifts, i)
		case ChangeWarning:
			r.Warnings = append(r.Warnings, i)
		}
	}
	return r
}

func newDefaultChange(t testing.TB, kind ChangeKind) ChangeDetector {
	t.Helper()
	d, err := NewChangeDetector(kind, DefaultChangeParams())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// River's warning flag can stay up on the value that reports a drift (EDDM); a
// ChangeState reports the drift alone.
func riverWarnings(r changeRun) []int {
	var w []int
	for _, i := range r.Warnings {
		if !slices.Contains(r.Drifts, i) {
			w = append(w, i)
		}
	}
	return w
}

// TestChangeDetectorsMatchRiver: the deterministic detectors report exactly River
// 0.26.1's drift and warning indices on every reference stream (testdata/gen_changes.py).
func TestChangeDetectorsMatchRiver(t *testing.T) {
	ref := loadChangeReference(t)
	for _, kind := range ChangeKinds() {
		if kind == ChangeKSWIN {
			continue
		}
		byStream := ref.Detections[kind.String()]
		if len(byStream) == 0 {
			t.Fatalf("%s: no reference detections", kind)
		}
		for name, wantRuns := range byStream {
			want := wantRuns.expand()
			t.Run(kind.String()+"/"+name, func(t *testing.T) {
				got := runChange(newDefaultChange(t, kind), ref.Streams[name].Values)
				if !slices.Equal(got.Drifts, want.Drifts) {
					t.Errorf("drifts\n got %v\nwant %v", got.Drifts, want.Drifts)
				}
				if ww := riverWarnings(want); !slices.Equal(got.Warnings, ww) {
					t.Errorf("warnings: got %d, want %d\n got %v\nwant %v", len(got.Warnings), len(ww), head(got.Warnings), head(ww))
				}
			})
		}
	}
}

func head(x []int) []int { return x[:min(len(x), 20)] }

// riverParams sets p's fields for kind from River's keyword arguments.
func riverParams(t *testing.T, kind ChangeKind, kw map[string]any) ChangeParams {
	t.Helper()
	p := DefaultChangeParams()
	for k, v := range kw {
		f, isNum := v.(float64)
		b, isBool := v.(bool)
		str, isStr := v.(string)
		ok := true
		switch kind.String() + "." + k {
		case "adwin.delta":
			p.ADWIN.Delta = f
		case "adwin.clock":
			p.ADWIN.Clock = int(f)
		case "adwin.max_buckets":
			p.ADWIN.MaxBuckets = int(f)
		case "adwin.min_window_length":
			p.ADWIN.MinWindowLength = int(f)
		case "adwin.grace_period":
			p.ADWIN.GracePeriod = int(f)
		case "ddm.warm_start":
			p.DDM.WarmStart = int(f)
		case "ddm.warning_threshold":
			p.DDM.WarningThreshold = f
		case "ddm.drift_threshold":
			p.DDM.DriftThreshold = f
		case "eddm.warm_start":
			p.EDDM.WarmStart = int(f)
		case "eddm.alpha":
			p.EDDM.Alpha = f
		case "eddm.beta":
			p.EDDM.Beta = f
		case "hddm-a.drift_confidence":
			p.HDDMA.DriftConfidence = f
		case "hddm-a.warning_confidence":
			p.HDDMA.WarningConfidence = f
		case "hddm-a.two_sided_test":
			p.HDDMA.TwoSidedTest, ok = b, isBool
		case "hddm-w.lambda_val":
			p.HDDMW.Lambda = f
		case "hddm-w.two_sided_test":
			p.HDDMW.TwoSidedTest, ok = b, isBool
		case "page-hinkley.mode":
			m, err := ParsePageHinkleyMode(str)
			if err != nil || !isStr {
				t.Fatalf("mode %v: %v", v, err)
			}
			p.PageHinkley.Mode, isNum = m, true
		case "page-hinkley.threshold":
			p.PageHinkley.Threshold = f
		case "page-hinkley.delta":
			p.PageHinkley.Delta = f
		case "page-hinkley.min_instances":
			p.PageHinkley.MinInstances = int(f)
		default:
			t.Fatalf("%s: unmapped River parameter %s", kind, k)
		}
		if !ok || (!isNum && !isBool) {
			t.Fatalf("%s.%s: unexpected value %v", kind, k, v)
		}
	}
	return p
}

// TestChangeDetectorsMatchRiverParams: the same exact match with non-default
// parameters (ADWIN's clock and buckets, the two-sided HDDM tests, Page-Hinkley's
// one-sided modes, other warm-ups and thresholds), including streams whose error falls.
func TestChangeDetectorsMatchRiverParams(t *testing.T) {
	ref := loadChangeReference(t)
	if len(ref.ParamCases) == 0 {
		t.Fatal("no parameter cases in the reference")
	}
	for _, c := range ref.ParamCases {
		t.Run(fmt.Sprintf("%s/%v/%s", c.Kind, c.Params, c.Stream), func(t *testing.T) {
			kind, err := ParseChangeKind(c.Kind)
			if err != nil {
				t.Fatal(err)
			}
			d, err := NewChangeDetector(kind, riverParams(t, kind, c.Params))
			if err != nil {
				t.Fatal(err)
			}
			got := runChange(d, ref.Streams[c.Stream].Values)
			want := riverRun{Drifts: c.Drifts, Warnings: c.Warnings}.expand()
			if !slices.Equal(got.Drifts, want.Drifts) {
				t.Errorf("drifts\n got %v\nwant %v", got.Drifts, want.Drifts)
			}
			if ww := riverWarnings(want); !slices.Equal(got.Warnings, ww) {
				t.Errorf("warnings: got %d, want %d\n got %v\nwant %v", len(got.Warnings), len(ww), head(got.Warnings), head(ww))
			}
		})
	}
}

// TestKSWINLikeRiver: KSWIN draws at random, River with Python's Mersenne Twister and
// driftd with PCG, so the detections are compared over 20 seeds each: the share of
// seeds that detect the change within 100 values, and the false alarms per stream.
func TestKSWINLikeRiver(t *testing.T) {
	ref := loadChangeReference(t)
	const seeds, maxDelay = 20, 100
	type summary struct {
		detected    int     // seeds with a detection in [drift, drift+maxDelay)
		falseAlarms float64 // mean detections before the drift (or anywhere if none)
		meanDelay   float64
	}
	summarize := func(runs [][]int, driftAt *int) summary {
		var s summary
		delays := 0
		for _, drifts := range runs {
			for _, i := range drifts {
				if driftAt == nil || i < *driftAt {
					s.falseAlarms++
				}
			}
			if driftAt != nil {
				for _, i := range drifts {
					if i >= *driftAt {
						if i < *driftAt+maxDelay {
							s.detected++
							s.meanDelay += float64(i - *driftAt)
							delays++
						}
						break
					}
				}
			}
		}
		s.falseAlarms /= float64(len(runs))
		if delays > 0 {
			s.meanDelay /= float64(delays)
		}
		return s
	}
	for name, st := range ref.Streams {
		t.Run(name, func(t *testing.T) {
			var ours [][]int
			for seed := 1; seed <= seeds; seed++ {
				p := DefaultKSWINParams()
				p.Seed = uint64(seed)
				d, err := NewKSWIN(p)
				if err != nil {
					t.Fatal(err)
				}
				ours = append(ours, runChange(d, st.Values).Drifts)
			}
			got, want := summarize(ours, st.DriftAt), summarize(ref.KSWINSeeds[name], st.DriftAt)
			t.Logf("driftd %+v, River %+v", got, want)
			// Binomial slack on 20 seeds: a share differing by more than 6 of 20 would
			// be a different detector, not a different draw.
			if diff := got.detected - want.detected; diff > 6 || diff < -6 {
				t.Errorf("detected within %d on %d seeds, River on %d", maxDelay, got.detected, want.detected)
			}
			if got.falseAlarms > 1.5*want.falseAlarms+1 || got.falseAlarms < want.falseAlarms/1.5-1 {
				t.Errorf("false alarms per stream %.2f, River %.2f", got.falseAlarms, want.falseAlarms)
			}
		})
	}
}

// TestKSPValueMatchesScipy: the exact equal-size two-sample KS p-value against
// scipy.stats.ks_2samp(method="exact") at every D = h/n for n = 5, 30 and 100. (For
// h = 1 scipy's sum exceeds 1 by rounding and it falls back to the asymptotic p-value,
// also 1; ours is clamped to 1.)
func TestKSPValueMatchesScipy(t *testing.T) {
	ref := loadChangeReference(t)
	if len(ref.KSExact) == 0 {
		t.Fatal("no ks_exact reference values")
	}
	for _, c := range ref.KSExact {
		a := make([]float64, c.N)
		b := make([]float64, c.N)
		for i := c.N - c.H; i < c.N; i++ {
			b[i] = 1
		}
		h := ksEqualSizeCount(a, b)
		if h != c.H || float64(h)/float64(c.N) != c.D {
			t.Errorf("n=%d: statistic h=%d, want %d (D=%v)", c.N, h, c.H, c.D)
		}
		got := ksEqualSizePValue(c.N, h)
		if math.Abs(got-c.P) > 1e-12*math.Max(c.P, 1e-300) {
			t.Errorf("n=%d h=%d: p=%v, scipy %v", c.N, c.H, got, c.P)
		}
	}
}

func TestParseChangeKind(t *testing.T) {
	cases := []struct {
		in   string
		want ChangeKind
		ok   bool
	}{
		{"adwin", ChangeADWIN, true},
		{"ADWIN", ChangeADWIN, true},
		{"ddm", ChangeDDM, true},
		{"EDDM", ChangeEDDM, true},
		{"HDDM_A", ChangeHDDMA, true},
		{"hddm-w", ChangeHDDMW, true},
		{"PageHinkley", ChangePageHinkley, true},
		{"page-hinkley", ChangePageHinkley, true},
		{" kswin ", ChangeKSWIN, true},
		{"hddm", 0, false},
		{"", 0, false},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			got, err := ParseChangeKind(c.in)
			if (err == nil) != c.ok || got != c.want {
				t.Fatalf("ParseChangeKind(%q) = %v, %v", c.in, got, err)
			}
			if c.ok {
				again, err := ParseChangeKind(got.String())
				if err != nil || again != got {
					t.Fatalf("round trip of %v: %v, %v", got, again, err)
				}
			}
		})
	}
	if s := ChangeKind(99).String(); s != "ChangeKind(99)" {
		t.Fatalf("invalid kind prints %q", s)
	}
}

func TestChangeParamsRejected(t *testing.T) {
	cases := []struct {
		name string
		kind ChangeKind
		edit func(p *ChangeParams)
	}{
		{"adwin delta 0", ChangeADWIN, func(p *ChangeParams) { p.ADWIN.Delta = 0 }},
		{"adwin clock 0", ChangeADWIN, func(p *ChangeParams) { p.ADWIN.Clock = 0 }},
		{"adwin buckets 0", ChangeADWIN, func(p *ChangeParams) { p.ADWIN.MaxBuckets = 0 }},
		{"ddm drift below warning", ChangeDDM, func(p *ChangeParams) { p.DDM.DriftThreshold = 1 }},
		{"eddm beta above alpha", ChangeEDDM, func(p *ChangeParams) { p.EDDM.Beta = 0.99 }},
		{"hddm-a confidence 1", ChangeHDDMA, func(p *ChangeParams) { p.HDDMA.DriftConfidence = 1 }},
		{"hddm-w lambda 0", ChangeHDDMW, func(p *ChangeParams) { p.HDDMW.Lambda = 0 }},
		{"page-hinkley threshold 0", ChangePageHinkley, func(p *ChangeParams) { p.PageHinkley.Threshold = 0 }},
		{"page-hinkley mode", ChangePageHinkley, func(p *ChangeParams) { p.PageHinkley.Mode = 7 }},
		{"kswin window too small", ChangeKSWIN, func(p *ChangeParams) { p.KSWIN.WindowSize = 50 }},
		{"kswin alpha", ChangeKSWIN, func(p *ChangeParams) { p.KSWIN.Alpha = 2 }},
		{"unknown kind", ChangeKind(0), func(p *ChangeParams) {}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := DefaultChangeParams()
			c.edit(&p)
			if d, err := NewChangeDetector(c.kind, p); err == nil {
				t.Fatalf("accepted: %T", d)
			}
		})
	}
}

// TestChangeStateRestart: splitting a stream anywhere, marshalling the detector and
// continuing with the decoded copy gives the uninterrupted run's detections exactly.
func TestChangeStateRestart(t *testing.T) {
	ref := loadChangeReference(t)
	for _, kind := range ChangeKinds() {
		for _, name := range []string{"bern_abrupt", "gauss_shift"} {
			st := ref.Streams[name]
			if !st.Binary && (kind == ChangeDDM || kind == ChangeEDDM || kind == ChangeHDDMA || kind == ChangeHDDMW) {
				continue
			}
			want := runChange(newDefaultChange(t, kind), st.Values)
			if len(want.Drifts) == 0 {
				t.Fatalf("%s on %s: no drift, the test would prove little", kind, name)
			}
			splits := []int{0, 1, 29, 31, 99, 100, 101, 500, want.Drifts[0], want.Drifts[0] + 1, 1500, len(st.Values) - 1}
			for _, split := range splits {
				t.Run(fmt.Sprintf("%s/%s/%d", kind, name, split), func(t *testing.T) {
					d := newDefaultChange(t, kind)
					first := runChange(d, st.Values[:split])
					b, err := d.MarshalBinary()
					if err != nil {
						t.Fatal(err)
					}
					restored, err := DecodeChangeDetector(b)
					if err != nil {
						t.Fatal(err)
					}
					b2, err := restored.MarshalBinary()
					if err != nil || string(b2) != string(b) {
						t.Fatalf("re-marshal differs (%v)", err)
					}
					second := runChange(restored, st.Values[split:])
					got := first
					for _, i := range second.Drifts {
						got.Drifts = append(got.Drifts, i+split)
					}
					for _, i := range second.Warnings {
						got.Warnings = append(got.Warnings, i+split)
					}
					if !slices.Equal(got.Drifts, want.Drifts) || !slices.Equal(got.Warnings, want.Warnings) {
						t.Fatalf("drifts %v want %v; %d warnings want %d", got.Drifts, want.Drifts, len(got.Warnings), len(want.Warnings))
					}
				})
			}
		}
	}
}

func TestChangeStateDecodeErrors(t *testing.T) {
	adwin := newDefaultChange(t, ChangeADWIN)
	for i := 0; i < 300; i++ {
		adwin.Update(float64(i % 2))
	}
	good, _ := adwin.MarshalBinary()
	cases := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"one byte", []byte{1}},
		{"bad version", append([]byte{9}, good[1:]...)},
		{"unknown kind", append([]byte{1, 42}, good[2:]...)},
		{"truncated", good[:len(good)-3]},
		{"trailing", append(slices.Clone(good), 0)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := DecodeChangeDetector(c.b); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	var ddm DDM
	if err := ddm.UnmarshalBinary(good); err == nil {
		t.Fatal("a DDM decoded an ADWIN state")
	}
}

// FuzzChangeStateDecode: any bytes decode to an error or to a detector that keeps
// working (no panic) and re-encodes to the same bytes.
func FuzzChangeStateDecode(f *testing.F) {
	for _, kind := range ChangeKinds() {
		d, _ := NewChangeDetector(kind, DefaultChangeParams())
		for i := 0; i < 250; i++ {
			d.Update(float64(i%3) / 2)
		}
		b, _ := d.MarshalBinary()
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := DecodeChangeDetector(b)
		if err != nil {
			return
		}
		again, err := d.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if string(again) != string(b) {
			t.Fatalf("decoded state re-encodes differently")
		}
		for i := 0; i < 70; i++ {
			d.Update(float64(i % 2))
		}
	})
}
