package sql

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/driftd/driftd/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var update = flag.Bool("update", false, "rewrite testdata/cluster_ddl.sql")

// docLayout is the layout docs/clickhouse-cluster.md shows.
var docLayout = Layout{Database: "driftd", TTLDays: 90, Cluster: "driftd"}

// clusterDDL is every statement of a layout in the order Migrate runs them, as a file.
func clusterDDL(t *testing.T, l Layout) string {
	t.Helper()
	setup, err := Setup(l)
	if err != nil {
		t.Fatal(err)
	}
	migs, err := Migrations(l)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	section := func(name string, stmts []string) {
		fmt.Fprintf(&b, "-- %s\n", name)
		for _, s := range stmts {
			b.WriteString(s + ";\n\n")
		}
	}
	section("setup (storage.Migrate, before reading schema_migrations)", setup)
	for _, m := range migs {
		section(fmt.Sprintf("%04d_%s", m.Version, m.Name), m.Statements)
	}
	return b.String()
}

// allStatements is the layout's statements, setup first.
func allStatements(t *testing.T, l Layout) []string {
	t.Helper()
	out, err := Setup(l)
	if err != nil {
		t.Fatal(err)
	}
	migs, err := Migrations(l)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range migs {
		out = append(out, m.Statements...)
	}
	return out
}

// The cluster DDL is reviewed as a file: a change to a migration shows here, and in the
// documentation, which must quote it whole.
func TestClusterLayoutGolden(t *testing.T) {
	got := clusterDDL(t, docLayout)
	golden := filepath.Join("testdata", "cluster_ddl.sql")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (go test ./sql/ -run TestClusterLayoutGolden -update writes it)", err)
	}
	if got != string(want) {
		t.Errorf("cluster DDL differs from %s (rerun with -update and review the diff):\n%s", golden, got)
	}
	doc, err := os.ReadFile(filepath.Join("..", "docs", "clickhouse-cluster.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), got) {
		t.Errorf("docs/clickhouse-cluster.md does not quote %s whole", golden)
	}
}

var (
	tableName  = regexp.MustCompile(`^CREATE TABLE IF NOT EXISTS driftd\.(\w+) `)
	orderBy    = regexp.MustCompile(`ORDER BY \(?([^\n]+?)\)?(?:\n|$)`)
	keyColumns = regexp.MustCompile(`\w+`)
	replicated = regexp.MustCompile(`ENGINE = Replicated(\w*)MergeTree\(`)
)

func TestClusterLayoutRules(t *testing.T) {
	single := allStatements(t, Layout{Database: "driftd", TTLDays: 90})
	cluster := allStatements(t, docLayout)
	// Sorting key of every single-server table.
	sortKey := map[string]string{}
	for _, s := range single {
		if m := tableName.FindStringSubmatch(s); m != nil {
			sortKey[m[1]] = orderBy.FindStringSubmatch(s)[1]
		}
	}
	// 28 created, three of them (0009's) dropped again by 0011, one (0010's) by 0023, one
	// (0017's) by 0025.
	if len(sortKey) != 28 {
		t.Fatalf("%d tables in the single-server layout, want 28: %v", len(sortKey), sortKey)
	}
	// A sharding key outside the sorting key, and why the engine's FINAL is still right.
	derived := map[string]string{
		"late_events.model":  "the event at a Kafka position always has one model",
		"alerts.fingerprint": "alert_id is a hash of the fingerprint, state and window",
	}
	for table, key := range ShardKeys {
		sk, ok := sortKey[table]
		if !ok {
			t.Errorf("ShardKeys names %s, which no migration creates", table)
			continue
		}
		for _, col := range keyColumns.FindAllString(key, -1) {
			if col == "cityHash64" {
				continue
			}
			if !strings.Contains(", "+sk+",", ", "+col+",") && derived[table+"."+col] == "" {
				t.Errorf("%s is sharded by %s, not a function of its sorting key (%s): FINAL would miss duplicates on other shards", table, col, sk)
			}
		}
	}
	locals, dists := map[string]string{}, map[string]string{}
	for _, s := range cluster {
		if strings.HasPrefix(s, "INSERT ") {
			if strings.Contains(s, "ON CLUSTER") || strings.Contains(s, LocalSuffix) {
				t.Errorf("an INSERT runs once, through the Distributed tables: %q", s)
			}
			continue
		}
		if !strings.Contains(s, " ON CLUSTER 'driftd'") {
			t.Errorf("DDL without ON CLUSTER: %q", s)
		}
		m := tableName.FindStringSubmatch(s)
		if m == nil {
			continue
		}
		if name, ok := strings.CutSuffix(m[1], LocalSuffix); ok {
			locals[name] = s
		} else {
			dists[m[1]] = s
		}
	}
	for table := range sortKey {
		local, dist := locals[table], dists[table]
		family := "Replacing" // every table but the prediction keys, deduplicated at read (0022)
		if table == "prediction_key_batches" {
			family = ""
		}
		wantEngine := fmt.Sprintf("ENGINE = Replicated%sMergeTree('/clickhouse/tables/{shard}/{database}/%s_local', '{replica}'", family, table)
		if !strings.Contains(local, wantEngine) {
			t.Errorf("%s_local: want %s…, got %q", table, wantEngine, local)
		}
		if !strings.Contains(local, "ORDER BY "+sortKey[table]) && !strings.Contains(local, "ORDER BY ("+sortKey[table]+")") {
			t.Errorf("%s_local lost its sorting key %s: %q", table, sortKey[table], local)
		}
		wantDist := fmt.Sprintf("AS driftd.%s_local\nENGINE = Distributed('driftd', 'driftd', '%s_local', %s)", table, table, ShardKeys[table])
		if !strings.Contains(dist, wantDist) {
			t.Errorf("%s: want %q in %q", table, wantDist, dist)
		}
	}
	// Every ALTER reaches the local table, and the Distributed one when it changes columns
	// (a Distributed table has no data, indexes or TTL).
	alters, indexes := 0, 0
	for _, s := range single {
		if !strings.HasPrefix(s, "ALTER TABLE ") {
			continue
		}
		alters++
		table := strings.Fields(s)[2]
		rest := strings.SplitN(s, " ", 4)[3]
		local, dist := "ALTER TABLE "+table+"_local ON CLUSTER 'driftd' "+rest, "ALTER TABLE "+table+" ON CLUSTER 'driftd' "+rest
		columns := strings.Contains(strings.Fields(rest)[1], "COLUMN")
		if !columns {
			indexes++
		}
		foundLocal, foundDist := false, false
		for _, c := range cluster {
			foundLocal, foundDist = foundLocal || c == local, foundDist || c == dist
		}
		if !foundLocal {
			t.Errorf("missing %q", local)
		}
		if foundDist != columns {
			t.Errorf("%q on the Distributed table: %v, want %v", rest, foundDist, columns)
		}
	}
	if alters == 0 || indexes == 0 {
		t.Errorf("%d ALTERs checked, %d of indexes", alters, indexes)
	}
	// Every DROP drops the Distributed table, then the local one.
	drops := 0
	for _, s := range single {
		table, ok := strings.CutPrefix(s, "DROP TABLE IF EXISTS ")
		if !ok {
			continue
		}
		drops++
		want := []string{"DROP TABLE IF EXISTS " + table + " ON CLUSTER 'driftd'", "DROP TABLE IF EXISTS " + table + "_local ON CLUSTER 'driftd'"}
		for i, c := range cluster {
			if c == want[0] && (i+1 == len(cluster) || cluster[i+1] != want[1]) {
				t.Errorf("%q is not followed by %q", c, want[1])
			}
			if c == want[0] {
				want[0] = ""
			}
		}
		if want[0] != "" {
			t.Errorf("missing %q", want[0])
		}
	}
	if drops == 0 {
		t.Error("no DROP checked")
	}
}

func TestClusterLayoutRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		l    Layout
		stmt string
		want string
	}{
		{"cluster name with a quote", Layout{Database: "d", Cluster: "a'b"}, "", "cluster name"},
		{"cluster name with a space", Layout{Database: "d", Cluster: "a b"}, "", "cluster name"},
		{"replica path without {shard}", Layout{Database: "d", Cluster: "c", ReplicaPath: "/clickhouse/tables/{database}"}, "", "{shard}"},
		{"relative replica path", Layout{Database: "d", Cluster: "c", ReplicaPath: "clickhouse/{shard}"}, "", "absolute"},
		{"replica path with a quote", Layout{Database: "d", Cluster: "c", ReplicaPath: "/x/{shard}'"}, "", "absolute"},
		{"replica path ending in /", Layout{Database: "d", Cluster: "c", ReplicaPath: "/x/{shard}/"}, "", "trailing"},
		{"table without a sharding key", Layout{Database: "d", Cluster: "c"}, "CREATE TABLE IF NOT EXISTS d.new_table (a String) ENGINE = MergeTree ORDER BY a", "sharding key"},
		{"not a MergeTree", Layout{Database: "d", Cluster: "c"}, "CREATE TABLE IF NOT EXISTS d.alerts (a String) ENGINE = Memory", "MergeTree"},
		{"a view", Layout{Database: "d", Cluster: "c"}, "CREATE MATERIALIZED VIEW d.v TO d.alerts AS SELECT 1", "not known"},
		{"ALTER of an unknown table", Layout{Database: "d", Cluster: "c"}, "ALTER TABLE d.new_table ADD COLUMN x UInt8", "does not know"},
		{"DROP of an unknown table", Layout{Database: "d", Cluster: "c"}, "DROP TABLE IF EXISTS d.new_table", "does not know"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			if tc.stmt == "" {
				err = tc.l.check()
			} else {
				_, err = tc.l.layout([]string{tc.stmt})
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one saying %q", err, tc.want)
			}
		})
	}
	// What the checks let through.
	for _, ok := range []Layout{
		{Database: "d", Cluster: "prod-eu.1"},
		{Database: "d", Cluster: "c", ReplicaPath: "/ch/{layer}-{shard}/driftd"},
	} {
		if err := ok.check(); err != nil {
			t.Errorf("%+v refused: %v", ok, err)
		}
	}
	// The engine arguments and a MergeTree without them.
	got, err := Layout{Database: "d", Cluster: "c", ReplicaPath: "/p/{shard}"}.layout([]string{"CREATE TABLE IF NOT EXISTS d.alerts (a String) ENGINE = MergeTree ORDER BY a"})
	if err != nil || len(got) != 2 || !strings.Contains(got[0], "ENGINE = ReplicatedMergeTree('/p/{shard}/alerts_local', '{replica}') ORDER BY a") {
		t.Errorf("plain MergeTree: %q, %v", got, err)
	}
}

// Every statement of the cluster layout parses in the real engine (the embedded one here:
// no Keeper or distributed DDL queue to run it on), and the engine reads ON CLUSTER and
// the engines as written, not as something else.
func TestClusterDDLParses(t *testing.T) {
	addr, proto := testenv.ClickHouse(t)
	protocol := clickhouse.HTTP
	if proto == "native" {
		protocol = clickhouse.Native
	}
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}, Protocol: protocol})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := testenv.Context(t, 2*time.Minute)
	stmts := allStatements(t, docLayout)
	for i, s := range stmts {
		var printed string
		if err := conn.QueryRow(ctx, "SELECT formatQuery({q:String})", clickhouse.Named("q", s)).Scan(&printed); err != nil {
			t.Errorf("statement %d does not parse: %v\n%s", i+1, err, s)
			continue
		}
		var want []string
		switch {
		case strings.HasPrefix(s, "INSERT "):
			want = []string{strings.Fields(s)[0] + " " + strings.Fields(s)[1] + " " + strings.Fields(s)[2]}
		case strings.Contains(s, "ENGINE = Replicated"):
			family := replicated.FindStringSubmatch(s)[1] // Replacing, or plain for the prediction keys
			want = []string{"ON CLUSTER driftd", "ENGINE = Replicated" + family + "MergeTree('/clickhouse/tables/{shard}/{database}/", "'{replica}'"}
		case strings.Contains(s, "ENGINE = Distributed"):
			want = []string{"ON CLUSTER driftd", "ENGINE = Distributed('driftd', 'driftd', '"}
		default:
			want = []string{"ON CLUSTER driftd"}
		}
		for _, w := range want {
			if !strings.Contains(printed, w) {
				t.Errorf("statement %d as the engine reads it lacks %q:\n%s", i+1, w, printed)
			}
		}
	}
	if len(stmts) < 30 {
		t.Errorf("only %d statements checked", len(stmts))
	}
}
