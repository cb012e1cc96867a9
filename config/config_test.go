package config

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/driftd/driftd/detectors"
)

func write(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "driftd.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaultsAndExampleAreValid(t *testing.T) {
	if _, err := Load("", nil); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	cfg, err := Load("../driftd.example.yaml", nil)
	if err != nil {
		t.Fatalf("driftd.example.yaml: %v", err)
	}
	if cfg.WindowSpec("fraud-scorer").Size != time.Minute {
		t.Errorf("example model window = %v", cfg.WindowSpec("fraud-scorer"))
	}
	if _, err := Load(write(t, ""), nil); err != nil {
		t.Fatalf("empty file: %v", err)
	}
}

func TestBadConfigNamesTheField(t *testing.T) {
	for _, c := range []struct {
		yaml, env, want string
	}{
		{"kafka:\n  brokers: []\n", "", "kafka.brokers"},
		{"kafka:\n  brokers: [localhost]\n", "", "kafka.brokers"},
		{"kafka:\n  formats:\n    predictions: xml\n", "", "kafka.formats.predictions"},
		{"kafka:\n  alert_format: avro\n", "", "kafka.schema_registry.bundled_ids.alert"},
		{"clickhouse:\n  protocol: grpc\n", "", "clickhouse.protocol"},
		{"clickhouse:\n  database: \"drop table\"\n", "", "clickhouse.database"},
		{"clickhouse:\n  cluster: \"prod'; DROP\"\n", "", "clickhouse.cluster"},
		{"clickhouse:\n  cluster: prod\n  embedded:\n    enabled: true\n", "", "clickhouse.cluster"},
		{"clickhouse:\n  cluster: prod\n  replica_path: /clickhouse/tables/{database}\n", "", "clickhouse.replica_path"},
		{"clickhouse:\n  cluster: prod\n  replica_path: clickhouse/{shard}\n", "", "clickhouse.replica_path"},
		{"windows:\n  size: 5 minutes\n", "", "duration"},
		{"windows:\n  size: 10ms\n", "", "windows.size"},
		{"windows:\n  workers: -2\n", "", "windows.workers"},
		{"detection:\n  psi_warning: 0.3\n  psi_critical: 0.2\n", "", "detection.psi_critical"},
		{"detection:\n  p_value: 2\n", "", "detection.p_value"},
		{"models:\n  m:\n    features:\n      amount:\n        psi_warning: -1\n", "", "models.m.features.amount.psi_warning"},
		{"kafak:\n  brokers: [a:1]\n", "", "field kafak not found"},
		{"", "DRIFTD_CLICKHOUSE_RETENTION_DAYS=soon", "DRIFTD_CLICKHOUSE_RETENTION_DAYS"},
		{"", "DRIFTD_LOG_LEVEL=chatty", "log_level"},
		{"detection:\n  method: vibes\n", "", "detection.method"},
		{"models:\n  m:\n    features:\n      x:\n        distance: cosine\n", "", "models.m.features.x.distance"},
		{"detection:\n  correction: holm\n", "", "detection.correction"},
		{"detection:\n  test: t\n", "", "detection.test"},
		{"kafka:\n  sasl:\n    mechanism: GSSAPI\n", "", "kafka.sasl.mechanism"},
		{"kafka:\n  sasl:\n    mechanism: PLAIN\n", "", "kafka.sasl.username"},
		{"detection:\n  signal_p_value: 0\n", "", "detection.signal_p_value"},
		{"detection:\n  quality_min_increase: 5\n", "", "detection.quality_min_increase"},
		{"detection:\n  quality_min_ratio: 0.5\n", "", "detection.quality_min_ratio"},
		{"detection:\n  latency_min_ratio: 0.8\n", "", "detection.latency_min_ratio"},
		{"detection:\n  error_min_ratio: 0\n", "", "detection.error_min_ratio"},
		{"detection:\n  volume_drop: 1\n", "", "detection.volume_drop"},
		{"detection:\n  volume_jump: 1\n", "", "detection.volume_jump"},
		{"models:\n  m:\n    thresholds:\n      input_size_min_change: -1\n", "", "models.m.thresholds.input_size_min_change"},
		{"models:\n  m:\n    features:\n      age:\n        quality_min_increase: -0.1\n", "", "models.m.features.age.quality_min_increase"},
		{"", "DRIFTD_DETECTION_ERROR_MIN_INCREASE=2", "detection.error_min_increase"},
		{"limits:\n  max_outage: -1m\n", "", "limits.max_outage"},
		{"kafka:\n  catch_up_flush_interval: -1s\n", "", "kafka.catch_up_flush_interval"},
		{"kafka:\n  catch_up_flush_interval: 1h\n", "", "kafka.catch_up_flush_interval"},
		{"http:\n  allowed_hosts: [\"driftd.internal:9464\"]\n", "", "http.allowed_hosts"},
		{"clickhouse:\n  embedded:\n    allowed_hosts: [\"http://ch.internal\"]\n", "", "clickhouse.embedded.allowed_hosts"},
	} {
		env := map[string]string{}
		if c.env != "" {
			k, v, _ := strings.Cut(c.env, "=")
			env[k] = v
		}
		_, err := Load(write(t, c.yaml), env)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q %q: err = %v, want it to name %q", c.yaml, c.env, err, c.want)
		}
	}
}

func TestEnvironmentOverridesAndPerModelSettings(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(secret, []byte("s3cret\n"), 0o600)
	cfg, err := Load(write(t, `
windows:
  size: 5m
models:
  fraud-scorer:
    window: 1m
    lateness: 0s
    thresholds:
      psi_warning: 0.2
      psi_critical: 0.4
    features:
      amount:
        psi_warning: 0.3
    labels:
      settle: 72h
      adwin_delta: 0.0001
      outcome_min_ratio: 2
`), map[string]string{
		"DRIFTD_KAFKA_BROKERS":            "k1:9092, k2:9092",
		"DRIFTD_CLICKHOUSE_PASSWORD_FILE": secret,
		"DRIFTD_WINDOWS_LATENESS":         "45s",
		"DRIFTD_DETECTION_LATENCY_P99_MS": "250",
		"DRIFTD_CLICKHOUSE_TLS":           "true",
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(cfg.Kafka.Brokers, "|") != "k1:9092|k2:9092" || cfg.ClickHouse.Password != "s3cret" || !cfg.ClickHouse.TLS {
		t.Errorf("env overrides not applied: %+v %+v", cfg.Kafka.Brokers, cfg.ClickHouse)
	}
	if s := cfg.WindowSpec("fraud-scorer"); s.Size != time.Minute || s.Lateness != 0 {
		t.Errorf("fraud-scorer spec %+v", s)
	}
	if s := cfg.WindowSpec("other"); s.Size != 5*time.Minute || s.Lateness != 45*time.Second {
		t.Errorf("default spec %+v", s)
	}
	if th := cfg.Thresholds("fraud-scorer", "amount"); th.PSIWarning != 0.3 || th.PSICritical != 0.4 || th.LatencyP99Ms != 250 {
		t.Errorf("feature thresholds %+v", th)
	}
	if th := cfg.Thresholds("fraud-scorer", "country"); th.PSIWarning != 0.2 {
		t.Errorf("model thresholds %+v", th)
	}
	if th := cfg.Thresholds("other", ""); th.PSIWarning != 0.1 || th.ErrorRate != 0.05 {
		t.Errorf("default thresholds %+v", th)
	}
	if l := cfg.LabelsFor("fraud-scorer"); l.Settle != Duration(72*time.Hour) || l.ChangeParams().ADWIN.Delta != 0.0001 ||
		l.PerformanceThresholds().OutcomeMinRatio != 2 || l.PerformanceThresholds().ErrorMinIncrease != 0.05 || l.Horizon != Duration(7*24*time.Hour) {
		t.Errorf("fraud-scorer labels %+v", l)
	}
	if l := cfg.LabelsFor("other"); l.Settle != Duration(time.Hour) || l.ChangeParams().ADWIN.Delta != 0.002 || l.PerformanceThresholds().OutcomeMinRatio != 1.25 {
		t.Errorf("default labels %+v", l)
	}
}

// The signals judged against the reference default to detectors.DefaultSignalThresholds
// and are overridden by the environment, per model and per feature.
func TestSignalThresholds(t *testing.T) {
	if got := func() detectors.SignalThresholds { c := Default(); return c.Thresholds("m", "").Signals }(); got != detectors.DefaultSignalThresholds {
		t.Fatalf("default signals %+v, want %+v", got, detectors.DefaultSignalThresholds)
	}
	cfg, err := Load(write(t, `
detection:
  quality_min_increase: 0.1
models:
  checkout:
    thresholds:
      latency_min_increase_ms: 50
      volume_jump: 4
    features:
      age:
        quality_min_increase: 0
`), map[string]string{"DRIFTD_DETECTION_SIGNAL_P_VALUE": "1e-6"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		model, feature string
		want           func(s *detectors.SignalThresholds)
	}{
		{"other", "", func(s *detectors.SignalThresholds) {}},
		{"checkout", "", func(s *detectors.SignalThresholds) { s.LatencyMinIncreaseMs, s.VolumeJump = 50, 4 }},
		{"checkout", "amount", func(s *detectors.SignalThresholds) { s.LatencyMinIncreaseMs, s.VolumeJump = 50, 4 }},
		{"checkout", "age", func(s *detectors.SignalThresholds) {
			s.LatencyMinIncreaseMs, s.VolumeJump, s.QualityMinIncrease = 50, 4, 0
		}},
	} {
		want := detectors.DefaultSignalThresholds
		want.PValue, want.QualityMinIncrease = 1e-6, 0.1
		c.want(&want)
		if got := cfg.Thresholds(c.model, c.feature).Signals; got != want {
			t.Errorf("%s/%s: %+v, want %+v", c.model, c.feature, got, want)
		}
	}
}

// Passwords never reach logs or printed configs: the whole config formatted with %v, %+v
// or %#v, logged with slog, or marshalled shows [redacted].
func TestSecretsAreRedacted(t *testing.T) {
	cfg, err := Load(write(t, "clickhouse:\n  password: ch-pa55\nkafka:\n  sasl:\n    mechanism: PLAIN\n    username: u\n    password: kafka-pa55\nhttp:\n  password: http-pa55\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ClickHouse.Password.Reveal() != "ch-pa55" || cfg.Kafka.SASL.Password.Reveal() != "kafka-pa55" || cfg.HTTP.Password.Reveal() != "http-pa55" {
		t.Fatalf("passwords not loaded: %q %q", cfg.ClickHouse.Password.Reveal(), cfg.Kafka.SASL.Password.Reveal())
	}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("config", "cfg", cfg, "ch", cfg.ClickHouse, "sasl", cfg.Kafka.SASL)
	slog.New(slog.NewTextHandler(&logged, nil)).Info("config", "cfg", cfg, "password", cfg.ClickHouse.Password)
	out := fmt.Sprintf("%v %+v %#v %s", cfg, cfg, cfg, cfg.Kafka.SASL.Password) + logged.String()
	for _, pw := range []string{"ch-pa55", "kafka-pa55", "http-pa55"} {
		if strings.Contains(out, pw) {
			t.Errorf("password %q printed: %s", pw, out)
		}
	}
	if !strings.Contains(out, "[redacted]") {
		t.Errorf("no redaction marker in %s", out)
	}
}

// The embedded endpoint listens beyond this host only with a password: without one, a
// start on such an address fails and says what to do.
func TestEmbeddedEndpointNeedsAPasswordBeyondLoopback(t *testing.T) {
	for _, c := range []struct {
		listen, password string
		ok               bool
	}{
		{"127.0.0.1:8123", "", true},
		{"[::1]:8123", "", true},
		{"localhost:8123", "", true},
		{"0.0.0.0:8123", "", false},
		{":8123", "", false},
		{"[::]:8123", "", false},
		{"192.0.2.2:8123", "", false},
		{"driftd.internal:8123", "", false},
		{"0.0.0.0:8123", "s3cret", true},
		{"192.0.2.2:8123", "s3cret", true},
	} {
		env := map[string]string{"DRIFTD_CLICKHOUSE_EMBEDDED_ENABLED": "true", "DRIFTD_CLICKHOUSE_EMBEDDED_LISTEN": c.listen}
		if c.password != "" {
			env["DRIFTD_CLICKHOUSE_PASSWORD"] = c.password
		}
		_, err := Load("", env)
		if c.ok != (err == nil) || err != nil && !strings.Contains(err.Error(), "clickhouse.embedded.listen") {
			t.Errorf("listen %s, password %q: err = %v", c.listen, c.password, err)
		}
	}
}

func TestClusterSettings(t *testing.T) {
	for _, c := range []struct {
		name, yaml, env   string
		cluster, replicas string
	}{
		{"one server by default", "", "", "", "/clickhouse/tables/{shard}/{database}"},
		{"a cluster, default replica path", "clickhouse:\n  cluster: prod-eu.1\n", "", "prod-eu.1", "/clickhouse/tables/{shard}/{database}"},
		{"a cluster and its own path", "clickhouse:\n  cluster: prod\n  replica_path: /ch/{layer}-{shard}/driftd\n", "", "prod", "/ch/{layer}-{shard}/driftd"},
		{"from the environment", "", "DRIFTD_CLICKHOUSE_CLUSTER=prod", "prod", "/clickhouse/tables/{shard}/{database}"},
		// Without a cluster the path is not used, and not checked.
		{"a path without a cluster", "clickhouse:\n  replica_path: nonsense\n", "", "", "nonsense"},
	} {
		t.Run(c.name, func(t *testing.T) {
			env := map[string]string{}
			if k, v, ok := strings.Cut(c.env, "="); ok {
				env[k] = v
			}
			cfg, err := Load(write(t, c.yaml), env)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.ClickHouse.Cluster != c.cluster || cfg.ClickHouse.ReplicaPath != c.replicas {
				t.Errorf("cluster %q, replica path %q; want %q, %q", cfg.ClickHouse.Cluster, cfg.ClickHouse.ReplicaPath, c.cluster, c.replicas)
			}
		})
	}
}
