package config

import (
	"log/slog"
	"reflect"
	"strings"
	"testing"

	"github.com/driftd/driftd/consumers"
	"github.com/driftd/driftd/detectors"
	"github.com/driftd/driftd/schemas"
	"github.com/driftd/driftd/storage"
)

// The options parse at load, from YAML and from the environment, into their types.
func TestOptionsParseAtLoad(t *testing.T) {
	for _, tc := range []struct {
		yaml, env string
		got       func(c *Config) any
		want      any
	}{
		{"detection:\n  method: distance\n", "", func(c *Config) any { return c.Detection.Method }, detectors.MethodDistance},
		{"", "DRIFTD_DETECTION_METHOD=test", func(c *Config) any { return c.Detection.Method }, detectors.MethodTest},
		{"detection:\n  distance: hellinger\n", "", func(c *Config) any { return c.Detection.Distance }, detectors.DistanceHellinger},
		{"", "DRIFTD_DETECTION_THRESHOLD_FROM=reference", func(c *Config) any { return c.Detection.ThresholdFrom }, detectors.ThresholdReference},
		{"detection:\n  test: cvm\n", "", func(c *Config) any { return c.Detection.Test }, detectors.TestCvM},
		{"detection:\n  categorical_test: g\n", "", func(c *Config) any { return c.Detection.CategoricalTest }, detectors.TestG},
		{"", "DRIFTD_DETECTION_CORRECTION=bh", func(c *Config) any { return c.Detection.Correction }, detectors.CorrectionBH},
		{"detection:\n  reference: same_window_last_week\n", "", func(c *Config) any { return c.ReferenceSource("m") }, detectors.SourceWeekAgo},
		{"models:\n  m:\n    reference: previous_window\n", "", func(c *Config) any { return c.ReferenceSource("m") }, detectors.SourcePreviousWindow},
		{"models:\n  m:\n    thresholds:\n      method: test\n    features:\n      x:\n        distance: kl\n", "",
			func(c *Config) any {
				th := c.Thresholds("m", "x")
				return [2]string{th.Method.String(), th.Distance.String()}
			}, [2]string{"test", "kl"}},
		{"kafka:\n  formats:\n    labels: avro\n", "", func(c *Config) any { return c.Kafka.Formats.Labels }, schemas.FormatAvro},
		{"", "DRIFTD_KAFKA_FORMATS_PREDICTIONS=json", func(c *Config) any { return c.Kafka.Formats.Predictions }, schemas.FormatJSON},
		{"kafka:\n  group_mode: spread\n", "", func(c *Config) any { return c.Kafka.GroupMode }, consumers.GroupSpread},
		{"", "DRIFTD_LOG_LEVEL=warn", func(c *Config) any { return c.LogLevel.Level() }, slog.LevelWarn},
		{"log_level: debug\n", "", func(c *Config) any { return c.LogLevel.Level() }, slog.LevelDebug},
		{"clickhouse:\n  protocol: http\n", "", func(c *Config) any { return c.ClickHouse.Protocol }, storage.ProtocolHTTP},
		{"", "DRIFTD_CLICKHOUSE_PROTOCOL=native", func(c *Config) any { return c.ClickHouse.Protocol }, storage.ProtocolNative},
		{"kafka:\n  sasl:\n    mechanism: scram-sha-512\n    username: u\n", "", func(c *Config) any { return c.Kafka.SASL.Mechanism }, consumers.SASLScram512},
		{"kafka:\n  sasl:\n    username: u\n", "DRIFTD_KAFKA_SASL_MECHANISM=PLAIN", func(c *Config) any { return c.Kafka.SASL.Mechanism }, consumers.SASLPlain},
	} {
		cfg, err := Load(write(t, tc.yaml), envOf(tc.env))
		if err != nil {
			t.Errorf("%q %q: %v", tc.yaml, tc.env, err)
			continue
		}
		if got := tc.got(&cfg); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q %q: got %v, want %v", tc.yaml, tc.env, got, tc.want)
		}
	}
}

// A bad option fails at load naming the field (and the variable, or the line) and every
// accepted value.
func TestBadOptionNamesFieldAndValues(t *testing.T) {
	for _, tc := range []struct {
		yaml, env string
		want      []string
	}{
		{"detection:\n  method: vibes\n", "", []string{"detection.method (line 2)", `"vibes"`, "auto, test, distance"}},
		{"", "DRIFTD_DETECTION_METHOD=vibes", []string{"detection.method (DRIFTD_DETECTION_METHOD)", "auto, test, distance"}},
		{"detection:\n  distance: cosine\n", "", []string{"detection.distance", "psi, js, hellinger, kl, wasserstein, tvd, linf"}},
		{"detection:\n  threshold_from: learned\n", "", []string{"detection.threshold_from", "fixed, reference"}},
		{"", "DRIFTD_DETECTION_TEST=t", []string{"detection.test (DRIFTD_DETECTION_TEST)", "ks, ad, cvm"}},
		{"detection:\n  categorical_test: fisher\n", "", []string{"detection.categorical_test", "chi2, g, z"}},
		{"detection:\n  correction: holm\n", "", []string{"detection.correction", "bonferroni, bh"}},
		{"detection:\n  reference: file\n", "", []string{"detection.reference", "first_windows, previous_window, same_window_yesterday, same_window_last_week"}},
		{"models:\n  fraud:\n    reference: last_month\n", "", []string{"models.fraud.reference (line 3)", "first_windows, previous_window"}},
		{"models:\n  m:\n    features:\n      x:\n        test: t\n", "", []string{"models.m.features.x.test (line 5)", "ks, ad, cvm"}},
		{"kafka:\n  formats:\n    pipeline: xml\n", "", []string{"kafka.formats.pipeline", "json, avro, auto"}},
		{"kafka:\n  alert_format: auto\n", "", []string{"kafka.alert_format", "json or avro"}},
		{"kafka:\n  topics:\n    predictions: p\n    pipeline: p\n", "", []string{"kafka.topics.pipeline", `"p" is kafka.topics.predictions too`}},
		{"kafka:\n  topics:\n    labels: dlq\n    dlq: dlq\n", "", []string{"kafka.topics.dlq", `"dlq" is kafka.topics.labels too`}},
		{"kafka:\n  alert_format: protobuf\n", "", []string{"kafka.alert_format", "json, avro"}},
		{"", "DRIFTD_KAFKA_GROUP_MODE=range", []string{"kafka.group_mode (DRIFTD_KAFKA_GROUP_MODE)", "active_standby, spread"}},
		{"log_level: chatty\n", "", []string{"log_level (line 1)", "debug, info, warn, error"}},
		{"labels:\n  detector: cusum\n", "", []string{"labels.detector", "unknown change detector"}},
		{"labels:\n  settle: -1m\n", "", []string{"labels.settle", "must not be negative"}},
		{"labels:\n  outcome_min_change: 1.5\n", "", []string{"labels.outcome_min_change", "[0, 1)"}},
		{"labels:\n  outcome_min_ratio: 0.5\n", "", []string{"labels.outcome_min_ratio", "at least 1"}},
		{"models:\n  churn:\n    labels:\n      settle: -2h\n", "", []string{"models.churn.labels.settle", "must not be negative"}},
		{"models:\n  churn:\n    labels:\n      adwin_delta: 2\n", "", []string{"models.churn.labels.adwin_delta", "between 0 and 1"}},
		{"models:\n  churn:\n    labels:\n      settle: 200h\n", "", []string{"models.churn.labels.settle", "shorter than the horizon"}},
		{"windows:\n  size: 5 minutes\n", "", []string{"windows.size (line 2)", "not a duration"}},
		{"clickhouse:\n  protocol: grpc\n", "", []string{"clickhouse.protocol (line 2)", `"grpc"`, "native, http"}},
		{"", "DRIFTD_CLICKHOUSE_PROTOCOL=tcp", []string{"clickhouse.protocol (DRIFTD_CLICKHOUSE_PROTOCOL)", "native, http"}},
		{"kafka:\n  sasl:\n    mechanism: GSSAPI\n", "", []string{"kafka.sasl.mechanism (line 3)", `"GSSAPI"`, "PLAIN, SCRAM-SHA-256, SCRAM-SHA-512"}},
		{"kafka:\n  sasl:\n    mechanism: plain\n", "", []string{"kafka.sasl.username", "needed for SASL PLAIN"}},
	} {
		_, err := Load(write(t, tc.yaml), envOf(tc.env))
		for _, w := range tc.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%q %q: err = %v, want it to say %q", tc.yaml, tc.env, err, w)
			}
		}
	}
}

// An unknown field or a type mismatch keeps yaml.v3's own error and line.
func TestOtherYAMLErrorsKeepTheirPlace(t *testing.T) {
	_, err := Load(write(t, "detection:\n  p_value: [1]\n"), nil)
	if err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("err = %v", err)
	}
}

func envOf(kv string) map[string]string {
	env := map[string]string{}
	if k, v, ok := strings.Cut(kv, "="); ok {
		env[k] = v
	}
	return env
}
