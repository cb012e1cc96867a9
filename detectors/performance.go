package detectors

import (
	"encoding/binary"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/driftd/driftd/processors"
	"github.com/driftd/driftd/schemas"
)

// Tasks a window's labelled predictions are scored as (PerfCounts.Task).
const (
	TaskClassification = "classification"
	TaskRegression     = "regression"
)

// ClassPair is one cell of a confusion matrix.
type ClassPair struct{ True, Pred string }

// PerfCounts are one window's predictions joined to their labels, aggregated so that
// windows add up (a reference is the sum of its windows). A pair is classification when
// the label is a class (a string or a boolean, or 0/1 beside a probability or a class
// prediction) and regression when label and prediction are other numbers.
type PerfCounts struct {
	// Predictions counts the window's predictions that can be labelled (they carry a
	// request_id); Labelled those with a label (as of the time judged).
	Predictions, Labelled uint64
	// Confusion counts the classification pairs per (true, predicted) class.
	Confusion map[ClassPair]uint64
	// Scored pairs had a probability for their true class; LogLossSum adds −ln p over
	// them (p clipped to [1e-15, 1]). AUC is the binary ROC AUC of the window's scored
	// pairs (NaN when not binary or not scored); it does not add up over windows.
	Scored     uint64
	LogLossSum float64
	AUC        float64
	// Regression pairs: count, sums of error (prediction − label), |error|, error², and
	// |error| / |label| over the APECount pairs whose label is not 0.
	Regression                        uint64
	ErrorSum, AbsErrorSum, SquaredSum float64
	APESum                            float64
	APECount                          uint64
	// Outcomes counts, per user outcome (LabelEvent.Outcome: "redo_search", "clicked",
	// …), the predictions it was reported for; a prediction counts once per outcome.
	// Names beyond MaxOutcomes fold into processors.OtherCategory (and the outcomes of a
	// window or reference that folded are not judged).
	Outcomes map[string]uint64
}

// MaxOutcomes bounds the outcome names a window counts: a producer that sends ids as
// outcomes must not grow a window's row (or memory) without bound.
const MaxOutcomes = 50

// Add adds o's counts to c (AUC becomes NaN: it does not add up).
func (c *PerfCounts) Add(o PerfCounts) {
	c.Predictions += o.Predictions
	c.Labelled += o.Labelled
	if len(o.Confusion) > 0 && c.Confusion == nil {
		c.Confusion = map[ClassPair]uint64{}
	}
	for k, n := range o.Confusion {
		c.Confusion[k] += n
	}
	c.Scored += o.Scored
	c.LogLossSum += o.LogLossSum
	c.AUC = math.NaN()
	c.Regression += o.Regression
	c.ErrorSum += o.ErrorSum
	c.AbsErrorSum += o.AbsErrorSum
	c.SquaredSum += o.SquaredSum
	c.APESum += o.APESum
	c.APECount += o.APECount
	if len(o.Outcomes) > 0 && c.Outcomes == nil {
		c.Outcomes = map[string]uint64{}
	}
	for k, n := range o.Outcomes {
		c.Outcomes[k] += n
	}
}

// Classified is the number of classification pairs.
func (c PerfCounts) Classified() uint64 {
	var n uint64
	for _, k := range c.Confusion {
		n += k
	}
	return n
}

// Task is what most of the window's pairs are ("" when none is labelled).
func (c PerfCounts) Task() string {
	cl := c.Classified()
	switch {
	case cl == 0 && c.Regression == 0:
		return ""
	case cl >= c.Regression:
		return TaskClassification
	}
	return TaskRegression
}

// Coverage is the share of the window's predictions that are labelled.
func (c PerfCounts) Coverage() float64 {
	if c.Predictions == 0 {
		return 0
	}
	return math.Min(1, float64(c.Labelled)/float64(c.Predictions))
}

// PerfMetrics are the metrics of one window (NaN where they do not apply).
type PerfMetrics struct {
	Correct                              uint64
	Accuracy                             float64
	MacroPrecision, MacroRecall, MacroF1 float64
	ClassF1                              map[string]float64
	LogLoss, AUC                         float64
	MAE, RMSE, MeanError, MAPE           float64
}

// Metrics computes the metrics of the counts. Per class, as scikit-learn does with
// zero_division=0: precision is 0 for a class never predicted, recall 0 for a class
// never true; the macro averages are over the classes seen as true or predicted.
func (c PerfCounts) Metrics() PerfMetrics {
	nan := math.NaN()
	m := PerfMetrics{Accuracy: nan, MacroPrecision: nan, MacroRecall: nan, MacroF1: nan, LogLoss: nan, AUC: c.AUC,
		MAE: nan, RMSE: nan, MeanError: nan, MAPE: nan}
	if n := c.Classified(); n > 0 {
		tp, truth, pred := map[string]uint64{}, map[string]uint64{}, map[string]uint64{}
		for k, v := range c.Confusion {
			truth[k.True] += v
			pred[k.Pred] += v
			if k.True == k.Pred {
				tp[k.True] += v
				m.Correct += v
			}
		}
		m.Accuracy = float64(m.Correct) / float64(n)
		classes := map[string]bool{}
		for k := range truth {
			classes[k] = true
		}
		for k := range pred {
			classes[k] = true
		}
		names := make([]string, 0, len(classes))
		for k := range classes {
			names = append(names, k)
		}
		sort.Strings(names) // a fixed order of addition: the same sums on every run
		m.ClassF1 = make(map[string]float64, len(names))
		var sp, sr, sf float64
		for _, k := range names {
			p, r := ratio(tp[k], pred[k]), ratio(tp[k], truth[k])
			f := 0.0
			if p+r > 0 {
				f = 2 * p * r / (p + r)
			}
			m.ClassF1[k] = f
			sp, sr, sf = sp+p, sr+r, sf+f
		}
		k := float64(len(names))
		m.MacroPrecision, m.MacroRecall, m.MacroF1 = sp/k, sr/k, sf/k
	}
	if c.Scored > 0 {
		m.LogLoss = c.LogLossSum / float64(c.Scored)
	}
	if c.Regression > 0 {
		n := float64(c.Regression)
		m.MAE, m.RMSE, m.MeanError = c.AbsErrorSum/n, math.Sqrt(c.SquaredSum/n), c.ErrorSum/n
		if c.APECount > 0 {
			m.MAPE = c.APESum / float64(c.APECount)
		}
	}
	return m
}

func ratio(a, b uint64) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// PerformanceThresholds decide a window's performance against its series' reference
// period (docs/concept-drift.md). Like every signal, a breach needs evidence (an exact
// test at PValue) and an effect that matters.
type PerformanceThresholds struct {
	PValue float64
	// ErrorMinIncrease: a classification window's error rate (1 − accuracy) must be at
	// least this much above the reference's (0 disables classification judging).
	ErrorMinIncrease float64
	// MAEMinRatio: a regression window's MAE must be at least this many times the
	// reference's (0 disables regression judging).
	MAEMinRatio float64
	// MinCoverageRatio: a window whose label coverage is below this share of the
	// reference's is not judged (too few labels yet, not a worse model).
	MinCoverageRatio float64
	// ReferenceMinLabelled is how many labelled predictions a reference needs besides its
	// windows.
	ReferenceMinLabelled uint64
	// ConceptMinIncrease: a change the detector finds on the loss stream raises a
	// concept_drift breach only when the loss after it is at least this much above the
	// loss before (0/1 loss: points of error rate; absolute error: this share of the
	// loss before).
	ConceptMinIncrease float64
	// OutcomeMinChange and OutcomeMinRatio: a user outcome's rate (per prediction) must
	// move at least this many points and by at least this factor from the reference's,
	// up or down (an outcome may be good or bad: driftd does not know which), for an
	// output_quality breach (OutcomeMinChange 0 disables outcome judging).
	OutcomeMinChange, OutcomeMinRatio float64
}

// DefaultPerformanceThresholds are the defaults documented in docs/concept-drift.md.
var DefaultPerformanceThresholds = PerformanceThresholds{PValue: 1e-5, ErrorMinIncrease: 0.05, MAEMinRatio: 1.25,
	MinCoverageRatio: 0.5, ReferenceMinLabelled: 200, ConceptMinIncrease: 0.05, OutcomeMinChange: 0.02, OutcomeMinRatio: 1.25}

// PerfWindow names the window a PerfCounts is over.
type PerfWindow struct {
	Series     processors.SeriesKey
	Start, End time.Time
}

func (w PerfWindow) condition(kind, metric string, value, threshold float64) Condition {
	return Condition{Kind: kind, Model: w.Series.Model, Version: w.Series.Version, Deployment: w.Series.Deployment,
		Metric: metric, Value: value, Threshold: threshold, WindowStart: w.Start, WindowEnd: w.End}
}

func (w PerfWindow) subject() string {
	s := w.Series.Model + " " + w.Series.Version
	if w.Series.Deployment != schemas.DeploymentPrimary {
		s += " (" + w.Series.Deployment + ")"
	}
	return s
}

func (w PerfWindow) span() string {
	return w.Start.UTC().Format("15:04") + "–" + w.End.UTC().Format("15:04 UTC")
}

// PerformanceCondition judges a settled window against its series' reference. ok is
// false when there is nothing to judge: no reference, a task the reference does not
// share, or too few labels (coverage below MinCoverageRatio of the reference's), so that
// a coverage drop is never read as a performance change.
func PerformanceCondition(w PerfWindow, c, ref PerfCounts, th PerformanceThresholds) (Condition, bool) {
	task := c.Task()
	if task == "" || task != ref.Task() || c.Coverage() < th.MinCoverageRatio*ref.Coverage() {
		return Condition{}, false
	}
	subject := w.subject()
	switch task {
	case TaskClassification:
		if th.ErrorMinIncrease <= 0 {
			return Condition{}, false
		}
		n, nRef := c.Classified(), ref.Classified()
		wrong, wrongRef := n-c.Metrics().Correct, nRef-ref.Metrics().Correct
		r := newRateTest(wrong, n, wrongRef, nRef, th.ErrorMinIncrease, 1)
		cond := w.condition(schemas.KindPerformance, "error_rate_vs_reference", r.rate, r.threshold)
		cond.FiringSummary = fmt.Sprintf("%s was wrong on %s of %d labelled predictions (reference %s, threshold %s; %s of the window labelled) over %s",
			subject, pct(r.rate), n, pct(r.refRate), pct(r.threshold), pct(c.Coverage()), w.span())
		cond.ResolvedSummary = fmt.Sprintf("%s was wrong on %s of %d labelled predictions, back near its reference %s, over %s",
			subject, pct(r.rate), n, pct(r.refRate), w.span())
		cond.Details = r.details("wrong")
		cond.Details["events"], cond.Details["reference_events"] = fmt.Sprint(n), fmt.Sprint(nRef)
		cond.Details["coverage"], cond.Details["reference_coverage"] = g6(c.Coverage()), g6(ref.Coverage())
		return settle([]judged{{cond, r.p, r.effect, r.critical}}, th.PValue)[0], true
	default:
		if th.MAEMinRatio <= 0 || c.Regression < 2 || ref.Regression < 2 {
			return Condition{}, false
		}
		mean, sd := absErrorMoments(c)
		meanRef, sdRef := absErrorMoments(ref)
		// A few absolute errors can agree closely by chance, and their own spread would
		// make any rise look certain (seen: 5 a window, one stationary window in 2,000
		// at p < 1e-5): the window's spread is taken as at least the reference's.
		_, _, p := WelchT(mean, math.Max(sd, sdRef), float64(c.Regression), meanRef, sdRef, float64(ref.Regression))
		if mean <= meanRef {
			p = 1
		}
		threshold := th.MAEMinRatio * meanRef
		cond := w.condition(schemas.KindPerformance, "mae_vs_reference", mean, threshold)
		cond.FiringSummary = fmt.Sprintf("%s had a mean absolute error of %s over %d labelled predictions (reference %s, threshold %s; %s of the window labelled) over %s",
			subject, g6(mean), c.Regression, g6(meanRef), g6(threshold), pct(c.Coverage()), w.span())
		cond.ResolvedSummary = fmt.Sprintf("%s had a mean absolute error of %s, back near its reference %s, over %s", subject, g6(mean), g6(meanRef), w.span())
		cond.Details = map[string]string{"mae": g6(mean), "reference_mae": g6(meanRef), "events": fmt.Sprint(c.Regression),
			"reference_events": fmt.Sprint(ref.Regression), "test": "welch_t_greater", "p_value": g6(p),
			"coverage": g6(c.Coverage()), "reference_coverage": g6(ref.Coverage())}
		effect := mean >= threshold
		critical := mean >= (1+criticalFactor*(th.MAEMinRatio-1))*meanRef
		return settle([]judged{{cond, p, effect, critical}}, th.PValue)[0], true
	}
}

// OutcomeConditions judges each user outcome's rate per prediction in a settled window
// against its series' reference: one family of tests per window (Bonferroni over the
// outcomes and both directions). A rate breaches when it moved at least OutcomeMinChange
// points and by OutcomeMinRatio from the reference's, and Fisher's exact test says so
// at PValue. The reference's outcomes are judged (one gone from the window at a rate of
// 0); one the reference never saw is not.
func OutcomeConditions(w PerfWindow, c, ref PerfCounts, th PerformanceThresholds) []Condition {
	if th.OutcomeMinChange <= 0 || c.Predictions == 0 || ref.Predictions == 0 {
		return nil
	}
	// A window keeps the first MaxOutcomes names it meets: with more names than that,
	// windows keep different ones and their counts do not compare (review: 60 names at
	// 10% each, 670 breaches in 20 stationary windows). Ids sent as outcomes are not
	// judged.
	if _, folded := c.Outcomes[processors.OtherCategory]; folded {
		return nil
	}
	if _, folded := ref.Outcomes[processors.OtherCategory]; folded {
		return nil
	}
	// The reference's outcomes: one first reported after it has no rate to be judged
	// against (a rate of 0 would breach on every window for good, review: a product that
	// adds an outcome).
	names := make([]string, 0, len(ref.Outcomes))
	for k, n := range ref.Outcomes {
		if n > 0 {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	family := make([]judged, 0, len(names))
	for _, name := range names {
		x, xRef := min(c.Outcomes[name], c.Predictions), min(ref.Outcomes[name], ref.Predictions)
		n, nRef := c.Predictions, ref.Predictions
		rate, refRate := float64(x)/float64(n), float64(xRef)/float64(nRef)
		up := rate >= refRate
		var p, threshold float64
		var effect, critical bool
		if up {
			threshold = math.Max(refRate+th.OutcomeMinChange, th.OutcomeMinRatio*refRate)
			p = FisherGreater(x, n, xRef, nRef)
			effect = rate >= threshold
			critical = rate-refRate >= criticalFactor*th.OutcomeMinChange && rate >= (1+criticalFactor*(th.OutcomeMinRatio-1))*refRate
		} else {
			threshold = math.Min(refRate-th.OutcomeMinChange, refRate/th.OutcomeMinRatio)
			p = FisherGreater(n-x, n, nRef-xRef, nRef)
			effect = rate <= threshold
			critical = refRate-rate >= criticalFactor*th.OutcomeMinChange && rate*(1+criticalFactor*(th.OutcomeMinRatio-1)) <= refRate
		}
		direction := "rose"
		if !up {
			direction = "fell"
		}
		cond := w.condition(schemas.KindOutputQuality, "outcome_rate_vs_reference", rate, threshold)
		cond.Feature = name
		cond.FiringSummary = fmt.Sprintf("%s: the outcome %q %s to %s of %d predictions (reference %s, threshold %s) over %s",
			w.subject(), name, direction, pct(rate), n, pct(refRate), pct(threshold), w.span())
		cond.ResolvedSummary = fmt.Sprintf("%s: the outcome %q is back to %s of %d predictions, near its reference %s, over %s",
			w.subject(), name, pct(rate), n, pct(refRate), w.span())
		cond.Details = map[string]string{"outcome": name, "predictions": fmt.Sprint(n), "with_outcome": fmt.Sprint(x),
			"reference_predictions": fmt.Sprint(nRef), "reference_with_outcome": fmt.Sprint(xRef), "rate": g6(rate),
			"reference_rate": g6(refRate), "direction": direction, "test": "fisher_exact_one_sided", "p_value": g6(p)}
		family = append(family, judged{cond, p, effect, critical})
	}
	// Both directions of each outcome are tested: the family is twice the outcomes.
	level := th.PValue / 2
	return settle(family, level)
}

// absErrorMoments are the mean and standard deviation of the regression pairs' absolute
// errors (|e|² = e², so the squared sum serves both).
func absErrorMoments(c PerfCounts) (mean, sd float64) {
	n := float64(c.Regression)
	mean = c.AbsErrorSum / n
	v := (c.SquaredSum - n*mean*mean) / (n - 1)
	return mean, math.Sqrt(math.Max(v, 0))
}

// ConceptState follows one series' loss stream through its change detector: the loss
// level before the latest change that raised it (Baseline, when HasBaseline), so that
// the windows after a change stay breached while the loss stays up.
//
// ADWIN says that level (the mean of the part of its window it cut away), and its cut is
// the evidence. The other detectors say only that something changed, and with River's
// defaults they say so often on a stationary stream (DDM, at 200 labels a window: 12
// times in 1,000 windows); their level is the mean loss of the segment since the change
// before (Since: its moments), kept as Base, and a window breaches only
// when it is also above Base by a test at PValue (Fisher's exact test on 0/1 losses,
// Welch's t-test on absolute errors) besides the effect floor.
type ConceptState struct {
	Detector    ChangeDetector
	Baseline    float64
	HasBaseline bool
	Since, Base processors.Moments
	// Changes counts the changes found in the window last observed.
	Changes int
}

// minSegment is the fewest losses a segment needs to be a level before a change.
const minSegment = 30

// Observe feeds one window's losses (in event-time order) to the detector and reports the
// window's concept_drift condition: breached while the window's mean loss stays at least
// ConceptMinIncrease above the level before the last change that raised it (for an
// absolute-error loss, that share of the level). ok is false for a window without losses.
func (s *ConceptState) Observe(w PerfWindow, losses []float64, zeroOne bool, th PerformanceThresholds) (Condition, bool) {
	s.Changes = 0
	if len(losses) == 0 || s.Detector == nil {
		return Condition{}, false
	}
	var win processors.Moments
	for _, x := range losses {
		if !finite(x) {
			continue
		}
		win.Add(x)
		a, isADWIN := s.Detector.(*ADWIN)
		var w0, t0 float64
		if isADWIN {
			w0, t0 = float64(a.Width()), a.Estimation()*float64(a.Width())
		}
		s.Since.Add(x)
		if s.Detector.Update(x) != ChangeDrift {
			continue
		}
		s.Changes++
		segment := s.Since
		s.Since = processors.Moments{}
		if !isADWIN {
			// The level before the change: the segment since the last one (with the few
			// losses that told the detector of this one). A change down sets a baseline
			// too: the window is then below it, and the change ends there.
			if !s.HasBaseline && segment.N >= minSegment {
				s.Baseline, s.HasBaseline, s.Base = segment.Mean, true, segment
			}
			continue
		}
		// ADWIN dropped the older part of its window: the level before the change is
		// that part's mean, the level after it what remains.
		w1, t1 := float64(a.Width()), a.Estimation()*float64(a.Width())
		if dropped := w0 + 1 - w1; dropped > 0 {
			before, after := (t0+x-t1)/dropped, t1/w1
			if after > before {
				if !s.HasBaseline {
					s.Baseline, s.HasBaseline, s.Base = before, true, processors.Moments{}
				}
			} else if s.HasBaseline && after <= s.Baseline+s.floor(s.Baseline, zeroOne, th) {
				s.HasBaseline = false // back to where it was
			}
		}
	}
	if win.N == 0 {
		return Condition{}, false
	}
	mean := win.Mean
	// Not in the window the change was found in: the window is then part before, part
	// after, and a detector other than ADWIN does not find the same change again.
	recovered := s.HasBaseline && s.Changes == 0 && mean < s.Baseline+s.floor(s.Baseline, zeroOne, th)
	metric := "loss_vs_before_change"
	threshold := math.Inf(1)
	if s.HasBaseline {
		threshold = s.Baseline + s.floor(s.Baseline, zeroOne, th)
	}
	cond := w.condition(schemas.KindConceptDrift, metric, mean, threshold)
	cond.Breached = s.HasBaseline && mean >= threshold
	p := math.NaN()
	if cond.Breached && s.Base.N > 0 {
		if zeroOne {
			p = FisherGreater(uint64(math.Round(win.Mean*win.N)), uint64(win.N), uint64(math.Round(s.Base.Mean*s.Base.N)), uint64(s.Base.N))
		} else if _, _, p2 := WelchT(mean, win.Std(), win.N, s.Base.Mean, s.Base.Std(), s.Base.N); !math.IsNaN(p2) {
			p = p2 / 2 // one-sided: the window's mean is above the level
		} else {
			p = 1
		}
		cond.Breached = p < th.PValue
	}
	cond.Severity = schemas.SeverityWarning
	lossName := "error rate"
	if !zeroOne {
		lossName = "mean absolute error"
	}
	cond.FiringSummary = fmt.Sprintf("%s changed its mapping from inputs to labels: its %s rose from %s to %s after a change the detector found in the labelled stream, over %s",
		w.subject(), lossName, g6(s.Baseline), g6(mean), w.span())
	cond.ResolvedSummary = fmt.Sprintf("%s's %s is back to %s, near its level %s before the change, over %s", w.subject(), lossName, g6(mean), g6(s.Baseline), w.span())
	cond.Details = map[string]string{"detector": s.Detector.Kind().String(), "losses": fmt.Sprint(len(losses)), "changes": fmt.Sprint(s.Changes),
		"mean_loss": g6(mean), "loss_before_change": g6(s.Baseline)}
	if !math.IsNaN(p) {
		cond.Details["p_value"], cond.Details["losses_before_change"] = g6(p), fmt.Sprint(s.Base.N)
	}
	if recovered {
		// Back below the threshold: the change is over. ADWIN may not cut again on the
		// recovery (it drops the older part, the bad regime, only as its width allows),
		// and a baseline kept would let any noisy window after it breach.
		s.HasBaseline = false
	}
	return cond, true
}

func (s *ConceptState) floor(level float64, zeroOne bool, th PerformanceThresholds) float64 {
	if zeroOne {
		return th.ConceptMinIncrease
	}
	return th.ConceptMinIncrease * level
}

// MarshalBinary encodes the state: a version byte (2), the baseline (a flag and a
// float64), the moments (count, mean, M2) of the losses since the last change and of the
// segment before it, and the detector's own encoding. A state without a detector (no loss seen yet) encodes as nothing.
func (s *ConceptState) MarshalBinary() ([]byte, error) {
	if s.Detector == nil {
		return nil, nil
	}
	d, err := s.Detector.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("encode concept state: %w", err)
	}
	out := make([]byte, 58, 58+len(d))
	out[0] = 2
	if s.HasBaseline {
		out[1] = 1
	}
	for i, v := range []float64{s.Baseline, s.Since.N, s.Since.Mean, s.Since.M2, s.Base.N, s.Base.Mean, s.Base.M2} {
		binary.LittleEndian.PutUint64(out[2+8*i:], math.Float64bits(v))
	}
	return append(out, d...), nil
}

// UnmarshalBinary restores a state MarshalBinary wrote (version 1, before the losses
// since the last change were kept, restores them as none).
func (s *ConceptState) UnmarshalBinary(b []byte) error {
	header := map[byte]int{1: 10, 2: 58}
	n, ok := header[b0(b)]
	if !ok || len(b) < n || b[1] > 1 {
		return fmt.Errorf("decode concept state: bad header")
	}
	v := make([]float64, (n-2)/8)
	for i := range v {
		v[i] = math.Float64frombits(binary.LittleEndian.Uint64(b[2+8*i:]))
		if !finite(v[i]) {
			return fmt.Errorf("decode concept state: not finite")
		}
	}
	d, err := DecodeChangeDetector(b[n:])
	if err != nil {
		return fmt.Errorf("decode concept state: %w", err)
	}
	*s = ConceptState{Detector: d, Baseline: v[0], HasBaseline: b[1] == 1}
	if len(v) == 7 {
		s.Since, s.Base = processors.Moments{N: v[1], Mean: v[2], M2: v[3]}, processors.Moments{N: v[4], Mean: v[5], M2: v[6]}
		if s.Since.N < 0 || s.Base.N < 0 {
			return fmt.Errorf("decode concept state: negative count")
		}
	}
	return nil
}

// b0 is b's first byte (0 when empty).
func b0(b []byte) byte {
	if len(b) == 0 {
		return 0
	}
	return b[0]
}

// PerfPair is one prediction with its label (Label.Kind Missing: not labelled, as of the
// time judged).
type PerfPair struct {
	// EventTime is the prediction's: the loss stream is in its order (Scorer).
	EventTime  time.Time
	Prediction schemas.Value
	Scores     map[string]float64
	Label      schemas.Value
	// Outcomes are the user outcomes reported for the prediction (each name once).
	Outcomes []string
}

// logLossClip keeps −ln p finite for a probability of 0 (scikit-learn clips too).
const logLossClip = 1e-15

// ScorePairs aggregates one window's pairs (in event-time order) with a Scorer.
func ScorePairs(pairs []PerfPair) (PerfCounts, []float64, bool) {
	var s Scorer
	for _, p := range pairs {
		s.Add(p)
	}
	return s.Result()
}

// Scorer aggregates one window's pairs as they stream in, in any order, and keeps,
// besides the counts, the per-prediction loss stream of the window's task in event-time
// order (ties in the order the pairs came): 0/1 (wrong) for classification, the absolute
// error for regression. It holds 24 bytes per labelled pair (16 more for a probability,
// for the ROC AUC), not the pairs: a window of millions of predictions is scored as it is
// read.
//
// How a pair is read:
//   - a label that is a string or a boolean is a class; so is a label of 0 or 1 beside a
//     prediction that is not a number, or a number in [0, 1] (a probability of class 1,
//     predicted as class 1 from 0.5 up, and its score);
//   - a binary label and a binary prediction (a boolean, 0 or 1, "0", "1", "true" or
//     "false") are the same class whatever their kinds: an Avro label of 1 beside a
//     boolean prediction true is right, and so is the label "1" beside a probability of
//     0.8, with the classes named as the prediction names them;
//   - a numeric label beside a numeric prediction otherwise is regression;
//   - a class prediction's score for the true class is Scores[class].
//
// A numeric label other than 0 or 1 beside a class prediction is counted labelled and
// scored as neither. The zero Scorer is ready to use.
type Scorer struct {
	c         PerfCounts
	started   bool
	scores    []float64 // binary pairs' probability of class 1
	positive  []bool
	notBinary bool
	cls, reg  []timedLoss
}

// timedLoss is one loss with its prediction's time (unix ms) and arrival.
type timedLoss struct {
	at    int64
	seq   uint64
	value float64
}

// Add scores one pair.
func (s *Scorer) Add(p PerfPair) {
	if !s.started {
		s.c.AUC, s.started = math.NaN(), true
	}
	c := &s.c
	c.Predictions++
	folded := false
	for _, o := range p.Outcomes {
		if c.Outcomes == nil {
			c.Outcomes = map[string]uint64{}
		}
		if _, ok := c.Outcomes[o]; !ok && len(c.Outcomes) >= MaxOutcomes {
			if folded {
				continue // once per prediction
			}
			o, folded = processors.OtherCategory, true
		}
		c.Outcomes[o]++
	}
	if p.Label.Kind == schemas.Missing {
		return
	}
	c.Labelled++
	l, pr := p.Label, p.Prediction
	lOne, lWords, binaryLabel := binaryClass(l)
	probability := pr.Kind == schemas.Number && pr.Num >= 0 && pr.Num <= 1
	if l.Kind == schemas.Number && !(binaryLabel && (pr.Kind != schemas.Number || probability)) {
		if pr.Kind != schemas.Number {
			return // a number beside a class: nothing to compare
		}
		e := pr.Num - l.Num
		c.Regression++
		c.ErrorSum += e
		c.AbsErrorSum += math.Abs(e)
		c.SquaredSum += e * e
		if l.Num != 0 {
			c.APESum += math.Abs(e) / math.Abs(l.Num)
			c.APECount++
		}
		s.reg = append(s.reg, timedLoss{p.EventTime.UnixMilli(), c.Labelled, math.Abs(e)})
		return
	}
	truth := l.Category()
	var pred string
	score, hasScore := 0.0, false
	_, pWords, binaryPred := binaryClass(pr)
	switch {
	case binaryLabel && probability:
		truth, pred = className(lOne, lWords), className(pr.Num >= 0.5, lWords)
		score, hasScore = pr.Num, true
		if !lOne {
			score = 1 - pr.Num
		}
		s.scores = append(s.scores, pr.Num)
		s.positive = append(s.positive, lOne)
	case binaryLabel && binaryPred:
		s.notBinary = true
		truth, pred = className(lOne, pWords), pr.Category()
		score, hasScore = p.Scores[truth]
	default:
		s.notBinary = true
		pred = pr.Category()
		score, hasScore = p.Scores[truth]
	}
	if c.Confusion == nil {
		c.Confusion = map[ClassPair]uint64{}
	}
	c.Confusion[ClassPair{truth, pred}]++
	if hasScore && finite(score) {
		c.Scored++
		c.LogLossSum -= math.Log(math.Min(math.Max(score, logLossClip), 1-logLossClip))
	}
	loss := 0.0
	if truth != pred {
		loss = 1
	}
	s.cls = append(s.cls, timedLoss{p.EventTime.UnixMilli(), c.Labelled, loss})
}

// Result returns the counts and the loss stream of the window's task (zeroOne: 0/1
// losses of classification).
func (s *Scorer) Result() (PerfCounts, []float64, bool) {
	if !s.started {
		return PerfCounts{AUC: math.NaN()}, nil, true
	}
	c := s.c
	if !s.notBinary && len(s.scores) > 0 {
		c.AUC = rocAUC(s.scores, s.positive)
	}
	if c.Task() == TaskRegression {
		return c, inTimeOrder(s.reg), false
	}
	return c, inTimeOrder(s.cls), true
}

// inTimeOrder is the losses' values in event-time order, ties in arrival order.
func inTimeOrder(ls []timedLoss) []float64 {
	sort.Slice(ls, func(i, j int) bool {
		if ls[i].at != ls[j].at {
			return ls[i].at < ls[j].at
		}
		return ls[i].seq < ls[j].seq
	})
	out := make([]float64, len(ls))
	for i, l := range ls {
		out[i] = l.value
	}
	return out
}

// binaryClass reads v as a binary class: a boolean, the number 0 or 1, or the string
// "0", "1", "true" or "false". words: it names its classes "true" and "false".
func binaryClass(v schemas.Value) (one, words, ok bool) {
	switch v.Kind {
	case schemas.Bool:
		return v.Num != 0, true, true
	case schemas.Number:
		return v.Num == 1, false, v.Num == 0 || v.Num == 1
	case schemas.String:
		switch v.Str {
		case "1":
			return true, false, true
		case "0":
			return false, false, true
		case "true":
			return true, true, true
		case "false":
			return false, true, true
		}
	}
	return false, false, false
}

func className(one, words bool) string {
	switch {
	case words && one:
		return "true"
	case words:
		return "false"
	case one:
		return "1"
	}
	return "0"
}

// rocAUC is the area under the ROC curve: the Mann–Whitney statistic with tied scores
// ranked at their mean rank. NaN when one class is absent.
func rocAUC(scores []float64, positive []bool) float64 {
	idx := make([]int, len(scores))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return scores[idx[a]] < scores[idx[b]] })
	var rankSum float64
	var nPos, nNeg float64
	for i := 0; i < len(idx); {
		j := i
		for j < len(idx) && scores[idx[j]] == scores[idx[i]] {
			j++
		}
		rank := float64(i+j+1) / 2 // ranks i+1 … j, averaged
		for k := i; k < j; k++ {
			if positive[idx[k]] {
				rankSum += rank
				nPos++
			} else {
				nNeg++
			}
		}
		i = j
	}
	if nPos == 0 || nNeg == 0 {
		return math.NaN()
	}
	return (rankSum - nPos*(nPos+1)/2) / (nPos * nNeg)
}
