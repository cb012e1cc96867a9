package detectors

import (
	"encoding"
	"strings"
	"testing"
	"time"
)

// option is what every option type offers: its text both ways.
type option interface {
	encoding.TextMarshaler
	String() string
}

// Every accepted word parses to the constant whose text is that word (the text alerts and
// ClickHouse rows carry, so it must not change), and anything else fails naming the
// option and every accepted value.
func TestOptionsParseAndString(t *testing.T) {
	parsers := map[string]func(string) (option, error){
		"method":           wrap(ParseMethod),
		"distance":         wrap(ParseDistance),
		"threshold_from":   wrap(ParseThresholdFrom),
		"test":             wrap(ParseNumericTest),
		"categorical_test": wrap(ParseCategoricalTest),
		"correction":       wrap(ParseCorrection),
		"reference":        wrap(ParseReferenceSource),
	}
	for _, tc := range []struct {
		option, in string
		want       option
	}{
		{"method", "auto", MethodAuto}, {"method", "test", MethodTest}, {"method", "distance", MethodDistance},
		{"distance", "psi", DistancePSI}, {"distance", "", DistancePSI}, {"distance", "js", DistanceJS},
		{"distance", "hellinger", DistanceHellinger}, {"distance", "kl", DistanceKL},
		{"distance", "wasserstein", DistanceWasserstein}, {"distance", "tvd", DistanceTVD}, {"distance", "linf", DistanceLInf},
		{"threshold_from", "fixed", ThresholdFixed}, {"threshold_from", "reference", ThresholdReference},
		{"test", "ks", TestKS}, {"test", "ad", TestAD}, {"test", "cvm", TestCvM},
		{"categorical_test", "chi2", TestChi2}, {"categorical_test", "g", TestG}, {"categorical_test", "z", TestZ},
		{"correction", "bonferroni", CorrectionBonferroni}, {"correction", "bh", CorrectionBH},
		{"reference", "first_windows", SourceFirstWindows}, {"reference", "previous_window", SourcePreviousWindow},
		{"reference", "same_window_yesterday", SourceDayAgo}, {"reference", "same_window_last_week", SourceWeekAgo},
	} {
		got, err := parsers[tc.option](tc.in)
		if err != nil || got != tc.want {
			t.Errorf("%s %q: got %v, %v; want %v", tc.option, tc.in, got, err, tc.want)
			continue
		}
		text, err := got.MarshalText()
		if err != nil || string(text) != got.String() {
			t.Errorf("%s %q: MarshalText %q, %v; String %q", tc.option, tc.in, text, err, got.String())
		}
		if tc.in != "" && got.String() != tc.in {
			t.Errorf("%s %q: String %q", tc.option, tc.in, got.String())
		}
	}
	for _, tc := range []struct{ option, in, accepted string }{
		{"method", "tests", "auto, test, distance"},
		{"method", "", "auto, test, distance"},
		{"distance", "PSI", "psi, js, hellinger, kl, wasserstein, tvd, linf"},
		{"threshold_from", "learned", "fixed, reference"},
		{"test", "chi2", "ks, ad, cvm"},
		{"categorical_test", "fisher", "chi2, g, z"},
		{"correction", "holm", "bonferroni, bh"},
		// A baseline file is a profile's source, not something to configure.
		{"reference", "file", "first_windows, previous_window, same_window_yesterday, same_window_last_week"},
	} {
		_, err := parsers[tc.option](tc.in)
		want := tc.option + ` "` + tc.in + `" is not one of ` + tc.accepted
		if err == nil || err.Error() != want {
			t.Errorf("%s %q: error %v, want %q", tc.option, tc.in, err, want)
		}
	}
}

func wrap[T option](parse func(string) (T, error)) func(string) (option, error) {
	return func(s string) (option, error) { return parse(s) }
}

// UnmarshalText parses, and leaves the value alone when the text is bad.
func TestOptionsUnmarshalText(t *testing.T) {
	m := MethodAuto
	if err := m.UnmarshalText([]byte("distance")); err != nil || m != MethodDistance {
		t.Fatalf("method = %v, %v", m, err)
	}
	if err := m.UnmarshalText([]byte("nope")); err == nil || !strings.Contains(err.Error(), "auto, test, distance") || m != MethodDistance {
		t.Fatalf("bad method: %v, left %v", err, m)
	}
	var ref ReferenceSource
	if err := ref.UnmarshalText([]byte("same_window_yesterday")); err != nil || ref != SourceDayAgo {
		t.Fatalf("reference = %v, %v", ref, err)
	}
}

func TestRollingLag(t *testing.T) {
	for _, tc := range []struct {
		source  ReferenceSource
		lag     time.Duration
		rolling bool
	}{
		{SourcePreviousWindow, 5 * time.Minute, true},
		{SourceDayAgo, 24 * time.Hour, true},
		{SourceWeekAgo, 7 * 24 * time.Hour, true},
		{SourceFirstWindows, 0, false},
		{SourceFile, 0, false},
	} {
		if lag, ok := RollingLag(tc.source, 5*time.Minute); lag != tc.lag || ok != tc.rolling {
			t.Errorf("%s: %v, %v; want %v, %v", tc.source, lag, ok, tc.lag, tc.rolling)
		}
	}
}
