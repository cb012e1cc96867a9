// Package sql holds driftd's ClickHouse schema as numbered migrations and the queries a
// user runs against it (drift over time, worst features, latency by version). Both are
// plain .sql files, embedded in the binary; {db} stands for the configured database and
// {ttl_days} for the retention.
package sql

import (
	"embed"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

//go:embed migrations/*.sql queries/*.sql
var files embed.FS

// Migration is one numbered schema change.
type Migration struct {
	Version    uint32
	Name       string
	Statements []string
}

var (
	migrationName = regexp.MustCompile(`^(\d{4})_([a-z0-9_]+)\.sql$`)
	identifier    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// ValidIdentifier reports whether s can be used unquoted as a database name.
func ValidIdentifier(s string) bool { return identifier.MatchString(s) }

// Migrations returns the migrations in order, rendered for the layout: one server's
// tables, or the cluster layout when l.Cluster is set (see cluster.go).
func Migrations(l Layout) ([]Migration, error) {
	if err := l.check(); err != nil {
		return nil, err
	}
	entries, err := fs.ReadDir(files, "migrations")
	if err != nil {
		return nil, err
	}
	var out []Migration
	for _, e := range entries {
		m := migrationName.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("migration file %s: name must be NNNN_name.sql", e.Name())
		}
		v, _ := strconv.ParseUint(m[1], 10, 32)
		text, err := files.ReadFile(path.Join("migrations", e.Name()))
		if err != nil {
			return nil, err
		}
		stmts, err := l.layout(render(string(text), l.Database, l.TTLDays))
		if err != nil {
			return nil, fmt.Errorf("migration %s: %w", e.Name(), err)
		}
		out = append(out, Migration{Version: uint32(v), Name: m[2], Statements: stmts})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}

// setup creates the database and the table recording applied migrations: what must
// exist before the migrations can be read off it.
const setup = `CREATE DATABASE IF NOT EXISTS {db};
CREATE TABLE IF NOT EXISTS {db}.schema_migrations (version UInt32, name String, applied_at DateTime64(3, 'UTC')) ENGINE = ReplacingMergeTree(applied_at) ORDER BY version;
`

// Setup returns the statements that create the database and schema_migrations, rendered
// for the layout.
func Setup(l Layout) ([]string, error) {
	if err := l.check(); err != nil {
		return nil, err
	}
	return l.layout(render(setup, l.Database, l.TTLDays))
}

// Query returns a named query from queries/, rendered for database db.
func Query(name, db string) (string, error) {
	text, err := files.ReadFile(path.Join("queries", name+".sql"))
	if err != nil {
		return "", fmt.Errorf("query %s: %w", name, err)
	}
	stmts := render(string(text), db, 0)
	if len(stmts) != 1 {
		return "", fmt.Errorf("query %s: want one statement, found %d", name, len(stmts))
	}
	return stmts[0], nil
}

// QueryNames lists the queries in queries/.
func QueryNames() []string {
	entries, _ := fs.ReadDir(files, "queries")
	var names []string
	for _, e := range entries {
		names = append(names, strings.TrimSuffix(e.Name(), ".sql"))
	}
	return names
}

// render substitutes the placeholders and splits statements at semicolons that end a line.
func render(text, db string, ttlDays int) []string {
	text = strings.NewReplacer("{db}", db, "{ttl_days}", strconv.Itoa(ttlDays)).Replace(text)
	var out []string
	for _, part := range regexp.MustCompile(`;\s*(\n|$)`).Split(text, -1) {
		var lines []string
		for _, l := range strings.Split(part, "\n") {
			if t := strings.TrimSpace(l); t != "" && !strings.HasPrefix(t, "--") {
				lines = append(lines, l)
			}
		}
		if len(lines) > 0 {
			out = append(out, strings.Join(lines, "\n"))
		}
	}
	return out
}
