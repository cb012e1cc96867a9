package sql

import (
	"fmt"
	"regexp"
	"strings"
)

// Layout says what the migrations create: the tables of one ClickHouse server, or, when
// Cluster is set, the cluster layout of docs/clickhouse-cluster.md. In the cluster layout
// every DDL statement runs ON CLUSTER; each table becomes a local Replicated*MergeTree
// table named <table>_local on every host, plus a Distributed table under the table's own
// name, so that driftd's inserts and queries (and the users' queries in queries/) are the
// same text on one server and on a cluster.
type Layout struct {
	Database string
	TTLDays  int
	// Cluster is the cluster's name in the servers' remote_servers configuration; "" for
	// one server.
	Cluster string
	// ReplicaPath is the Keeper path under which each local table's replicas meet; the
	// local table's name is appended. It must contain the {shard} macro: without it the
	// shards would share one replica set, every shard would hold every row and reads
	// through the Distributed tables would count each row once per shard.
	ReplicaPath string
}

// DefaultReplicaPath is ClickHouse's documented convention; {shard} comes from each
// host's macros, {database} is expanded by the engine.
const DefaultReplicaPath = "/clickhouse/tables/{shard}/{database}"

// LocalSuffix names the local (replicated) table behind each Distributed table.
const LocalSuffix = "_local"

var (
	clusterName = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*$`)
	replicaPath = regexp.MustCompile(`^(/[A-Za-z0-9_.{}-]+)+$`)
)

// CheckCluster reports why name cannot be a cluster name ("" is one server): it is
// written into DDL as a string literal, so it is held to the characters a cluster name in
// remote_servers (an XML element name) has.
func CheckCluster(name string) error {
	if name != "" && !clusterName.MatchString(name) {
		return fmt.Errorf("cluster name %q: use letters, digits, '_', '.' and '-'", name)
	}
	return nil
}

// CheckReplicaPath reports why p cannot be a replica path: an absolute Keeper path of
// letters, digits, '_', '.', '-' and macros in braces, containing {shard}.
func CheckReplicaPath(p string) error {
	if !replicaPath.MatchString(p) {
		return fmt.Errorf("replica path %q: an absolute path of letters, digits, '_', '.', '-' and {macros}, without a trailing '/'", p)
	}
	if !strings.Contains(p, "{shard}") {
		return fmt.Errorf("replica path %q: must contain {shard}, or every shard would hold every row", p)
	}
	return nil
}

func (l Layout) check() error {
	if !ValidIdentifier(l.Database) {
		return fmt.Errorf("database name %q: use letters, digits and underscores", l.Database)
	}
	if err := CheckCluster(l.Cluster); err != nil {
		return err
	}
	if l.Cluster != "" {
		if err := CheckReplicaPath(l.replicaPath()); err != nil {
			return err
		}
	}
	return nil
}

func (l Layout) replicaPath() string {
	if l.ReplicaPath == "" {
		return DefaultReplicaPath
	}
	return l.ReplicaPath
}

// ShardKeys is the sharding key of every table's Distributed table. Two rules decide it.
// FINAL (and so every ReplacingMergeTree read) removes duplicates within a shard only, so
// the key must be a function of the table's sorting key: every version of a row goes to
// the same shard. And it keeps a series together: all rows of one model (of one pipeline
// for the stage tables, of one alert fingerprint for the alert tables) live on one shard,
// so the partials of a window, all versions and deployments of a model (canary beside
// primary) and a fingerprint's history are read and merged on one shard. driftd stores
// per-window aggregates, not events, so one busy model does not make a hot shard.
var ShardKeys = map[string]string{
	"window_model_stats":   "cityHash64(model)",
	"window_feature_stats": "cityHash64(model)",
	"drift_scores":         "cityHash64(model)",
	"reference_profiles":   "cityHash64(model)",
	"reference_samples":    "cityHash64(model)",
	// Keyed by Kafka position; the event at a position always has the same model (the
	// pipeline's name for a stage run).
	"late_events": "cityHash64(model)",
	// The alert id is derived from the fingerprint (detectors.alertEvent).
	"alerts":               "cityHash64(fingerprint)",
	"alert_state":          "cityHash64(fingerprint)",
	"alerts_published":     "cityHash64(alert_id)",
	"pipeline_stage_stats": "cityHash64(pipeline)",
	"pipeline_stage_state": "cityHash64(pipeline)",
	"schema_migrations":    "version",
	// A model's prediction keys and labels on one shard: the label join is then local.
	"prediction_keys":           "cityHash64(model)",
	"prediction_keys_by_window": "cityHash64(model)",
	"prediction_key_batches":    "cityHash64(model)",
	"labels":                    "cityHash64(model)",
	"label_events":              "cityHash64(model)",
	"label_offsets":             "cityHash64(topic, partition)",
	"label_progress":            "cityHash64(topic, partition)",
	"window_performance":        "cityHash64(model)",
	"change_state":              "cityHash64(model)",
	"canary_analysis":           "cityHash64(model)",
	"shadow_analysis":           "cityHash64(model)",
	// Spread judging: a model's progress rows and sample shares beside its windows.
	"partition_progress":     "cityHash64(model)",
	"read_progress":          "cityHash64(model)",
	"reference_sample_parts": "cityHash64(model)",
	"judge_progress":         "cityHash64(model)",
	// A run names its models in an array: read across shards (the hint's queries are few).
	"stage_runs": "cityHash64(topic, partition)",
}

var (
	createDatabase = regexp.MustCompile(`^CREATE DATABASE IF NOT EXISTS (\w+)$`)
	createTable    = regexp.MustCompile(`(?s)^CREATE TABLE IF NOT EXISTS (\w+)\.(\w+) (.*)$`)
	// The engine clause of a MergeTree-family table: its family (Replacing, Summing, …)
	// and its arguments, which contain no parentheses in driftd's migrations.
	mergeTree   = regexp.MustCompile(`ENGINE = (\w*)MergeTree(?:\(([^()]*)\))?`)
	alterTable  = regexp.MustCompile(`(?s)^ALTER TABLE (\w+)\.(\w+) (.*)$`)
	alterColumn = regexp.MustCompile(`^(ADD|DROP|MODIFY|RENAME|COMMENT) COLUMN `)
	insertInto  = regexp.MustCompile(`^INSERT INTO `)
	dropTable   = regexp.MustCompile(`^DROP TABLE IF EXISTS (\w+)\.(\w+)$`)
)

// layout turns one server's statements into the layout's. A statement it does not know
// how to lay out on a cluster is an error, not passed through: a new kind of migration
// must be taught here (and get a golden test) before it can reach a cluster.
func (l Layout) layout(stmts []string) ([]string, error) {
	if l.Cluster == "" {
		return stmts, nil
	}
	on := " ON CLUSTER '" + l.Cluster + "'"
	var out []string
	for _, s := range stmts {
		switch {
		case createDatabase.MatchString(s):
			out = append(out, s+on)
		case createTable.MatchString(s):
			m := createTable.FindStringSubmatch(s)
			db, name, rest := m[1], m[2], m[3]
			key, ok := ShardKeys[name]
			if !ok {
				return nil, fmt.Errorf("table %s has no sharding key (sql.ShardKeys)", name)
			}
			e := mergeTree.FindStringSubmatchIndex(rest)
			if e == nil {
				return nil, fmt.Errorf("table %s: only MergeTree-family tables can be laid out on a cluster", name)
			}
			family, args := rest[e[2]:e[3]], ""
			if e[4] >= 0 {
				args = rest[e[4]:e[5]]
			}
			local := name + LocalSuffix
			engine := fmt.Sprintf("ENGINE = Replicated%sMergeTree('%s/%s', '{replica}'", family, l.replicaPath(), local)
			if strings.TrimSpace(args) != "" {
				engine += ", " + args
			}
			engine += ")"
			out = append(out,
				fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s.%s%s %s%s%s", db, local, on, rest[:e[0]], engine, rest[e[1]:]),
				// AS copies the columns only; the Distributed engine stores nothing itself.
				fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s.%s%s AS %s.%s\nENGINE = Distributed('%s', '%s', '%s', %s)",
					db, name, on, db, local, l.Cluster, db, local, key))
		case alterTable.MatchString(s):
			m := alterTable.FindStringSubmatch(s)
			db, name, rest := m[1], m[2], m[3]
			if _, ok := ShardKeys[name]; !ok {
				return nil, fmt.Errorf("ALTER of %s, a table the cluster layout does not know", name)
			}
			out = append(out, fmt.Sprintf("ALTER TABLE %s.%s%s%s %s", db, name, LocalSuffix, on, rest))
			// A Distributed table has columns but no data, indexes or TTL: only column
			// changes apply to it.
			if alterColumn.MatchString(rest) {
				out = append(out, fmt.Sprintf("ALTER TABLE %s.%s%s %s", db, name, on, rest))
			}
		case dropTable.MatchString(s):
			m := dropTable.FindStringSubmatch(s)
			db, name := m[1], m[2]
			if _, ok := ShardKeys[name]; !ok {
				return nil, fmt.Errorf("DROP of %s, a table the cluster layout does not know", name)
			}
			// The Distributed table first: nothing reads the local tables through it after.
			out = append(out, fmt.Sprintf("DROP TABLE IF EXISTS %s.%s%s", db, name, on),
				fmt.Sprintf("DROP TABLE IF EXISTS %s.%s%s%s", db, name, LocalSuffix, on))
		case insertInto.MatchString(s):
			// Data, not DDL: run once, through the Distributed tables.
			out = append(out, s)
		default:
			return nil, fmt.Errorf("statement not known to the cluster layout: %.60q", s)
		}
	}
	return out, nil
}
