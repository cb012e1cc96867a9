package detectors

import (
	"time"

	"github.com/driftd/driftd/internal/enum"
)

// The options of Thresholds and of a model's reference are closed sets of words. Each is a
// string type, so that its text is what the configuration says and what alert details and
// ClickHouse rows carry, with Parse rejecting anything else (naming the accepted values)
// and Marshal/UnmarshalText letting YAML and environment overrides parse it directly.

// Method decides drift per feature (Thresholds.Method).
type Method string

// Drift methods.
const (
	MethodAuto     Method = "auto"
	MethodTest     Method = "test"
	MethodDistance Method = "distance"
)

// ParseMethod parses auto, test or distance.
func ParseMethod(s string) (Method, error) {
	return enum.Parse("method", s, MethodAuto, MethodTest, MethodDistance)
}

func (m Method) String() string                { return string(m) }
func (m Method) MarshalText() ([]byte, error)  { return []byte(m), nil }
func (m *Method) UnmarshalText(b []byte) error { return unmarshal(m, b, ParseMethod) }

// Distance names the distance a feature is judged by (Thresholds.Distance); "" is PSI.
type Distance string

// Distances.
const (
	DistancePSI         Distance = "psi"
	DistanceJS          Distance = "js"
	DistanceHellinger   Distance = "hellinger"
	DistanceKL          Distance = "kl"
	DistanceWasserstein Distance = "wasserstein"
	DistanceTVD         Distance = "tvd"
	DistanceLInf        Distance = "linf"
)

// Distances lists the distances a feature can be judged by.
func Distances() []Distance {
	return []Distance{DistancePSI, DistanceJS, DistanceHellinger, DistanceKL, DistanceWasserstein, DistanceTVD, DistanceLInf}
}

// ParseDistance parses one of Distances; "" is the default, psi.
func ParseDistance(s string) (Distance, error) {
	if s == "" {
		return DistancePSI, nil
	}
	return enum.Parse("distance", s, Distances()...)
}

func (d Distance) String() string                { return string(d) }
func (d Distance) MarshalText() ([]byte, error)  { return []byte(d), nil }
func (d *Distance) UnmarshalText(b []byte) error { return unmarshal(d, b, ParseDistance) }

// ThresholdFrom says where a distance's threshold comes from (Thresholds.ThresholdFrom).
type ThresholdFrom string

// Threshold sources: the configured thresholds, or learned from the reference.
const (
	ThresholdFixed     ThresholdFrom = "fixed"
	ThresholdReference ThresholdFrom = "reference"
)

// ParseThresholdFrom parses fixed or reference.
func ParseThresholdFrom(s string) (ThresholdFrom, error) {
	return enum.Parse("threshold_from", s, ThresholdFixed, ThresholdReference)
}

func (t ThresholdFrom) String() string                { return string(t) }
func (t ThresholdFrom) MarshalText() ([]byte, error)  { return []byte(t), nil }
func (t *ThresholdFrom) UnmarshalText(b []byte) error { return unmarshal(t, b, ParseThresholdFrom) }

// NumericTest is the hypothesis test of numeric features (Thresholds.Test).
type NumericTest string

// Numeric tests: Kolmogorov–Smirnov, Anderson–Darling, Cramér–von Mises.
const (
	TestKS  NumericTest = "ks"
	TestAD  NumericTest = "ad"
	TestCvM NumericTest = "cvm"
)

// ParseNumericTest parses ks, ad or cvm.
func ParseNumericTest(s string) (NumericTest, error) {
	return enum.Parse("test", s, TestKS, TestAD, TestCvM)
}

func (t NumericTest) String() string                { return string(t) }
func (t NumericTest) MarshalText() ([]byte, error)  { return []byte(t), nil }
func (t *NumericTest) UnmarshalText(b []byte) error { return unmarshal(t, b, ParseNumericTest) }

// CategoricalTest is the hypothesis test of categorical features
// (Thresholds.CategoricalTest). A sparse two-category table uses Fisher's exact test
// whatever it says, so "fisher" is a test a score reports but not an option.
type CategoricalTest string

// Categorical tests: Pearson's χ², the G-test, the two-proportion z-test.
const (
	TestChi2 CategoricalTest = "chi2"
	TestG    CategoricalTest = "g"
	TestZ    CategoricalTest = "z"
)

// ParseCategoricalTest parses chi2, g or z.
func ParseCategoricalTest(s string) (CategoricalTest, error) {
	return enum.Parse("categorical_test", s, TestChi2, TestG, TestZ)
}

func (t CategoricalTest) String() string               { return string(t) }
func (t CategoricalTest) MarshalText() ([]byte, error) { return []byte(t), nil }
func (t *CategoricalTest) UnmarshalText(b []byte) error {
	return unmarshal(t, b, ParseCategoricalTest)
}

// Correction is how a window's p-values are corrected for its many features
// (Thresholds.Correction).
type Correction string

// Corrections: family-wise (Bonferroni) or false-discovery rate (Benjamini–Hochberg).
const (
	CorrectionBonferroni Correction = "bonferroni"
	CorrectionBH         Correction = "bh"
)

// ParseCorrection parses bonferroni or bh.
func ParseCorrection(s string) (Correction, error) {
	return enum.Parse("correction", s, CorrectionBonferroni, CorrectionBH)
}

func (c Correction) String() string                { return string(c) }
func (c Correction) MarshalText() ([]byte, error)  { return []byte(c), nil }
func (c *Correction) UnmarshalText(b []byte) error { return unmarshal(c, b, ParseCorrection) }

// ReferenceSource is what a model version's windows are compared with: its first windows
// (or a baseline file) or a rolling window of the same series. The text is also a stored
// Profile's Source.
type ReferenceSource string

// Reference sources. SourceFile (a profile stored by driftd baseline) is a profile's
// source but not an option: such a profile stands in for the first windows.
const (
	SourceFirstWindows ReferenceSource = "first_windows"
	SourceFile         ReferenceSource = "file"
	// Rolling references: for data that changes fast (B2B, daily seasonality) a window is
	// compared with a recent window of the same series instead of a fixed profile.
	SourcePreviousWindow ReferenceSource = "previous_window"
	SourceDayAgo         ReferenceSource = "same_window_yesterday"
	SourceWeekAgo        ReferenceSource = "same_window_last_week"
)

// ParseReferenceSource parses a configured reference: first_windows, previous_window,
// same_window_yesterday or same_window_last_week.
func ParseReferenceSource(s string) (ReferenceSource, error) {
	return enum.Parse("reference", s, SourceFirstWindows, SourcePreviousWindow, SourceDayAgo, SourceWeekAgo)
}

func (r ReferenceSource) String() string                { return string(r) }
func (r ReferenceSource) MarshalText() ([]byte, error)  { return []byte(r), nil }
func (r *ReferenceSource) UnmarshalText(b []byte) error { return unmarshal(r, b, ParseReferenceSource) }

// RollingLag is how far back a rolling reference lies, for a window size; ok is false
// for sources that are not rolling.
func RollingLag(source ReferenceSource, size time.Duration) (time.Duration, bool) {
	switch source {
	case SourcePreviousWindow:
		return size, true
	case SourceDayAgo:
		return 24 * time.Hour, true
	case SourceWeekAgo:
		return 7 * 24 * time.Hour, true
	}
	return 0, false
}

// unmarshal is every option's UnmarshalText: a bad value leaves *v as it was.
func unmarshal[T ~string](v *T, b []byte, parse func(string) (T, error)) error {
	x, err := parse(string(b))
	if err != nil {
		return err
	}
	*v = x
	return nil
}
