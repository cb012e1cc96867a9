package storage

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// insertTypes remembers the column types of the tables driftd inserts into, for inserts
// over HTTP. clickhouse-go's HTTP batch asks the server DESCRIBE TABLE before every
// INSERT to learn how to encode the block (the native protocol has the server send the
// block's header instead). That doubled the queries of every write: the embedded engine
// spends about as long planning a DESCRIBE as an INSERT of a few rows, and a member
// writes a dozen tables a second (docs/performance.md). A table's types are asked once,
// and asked again after an insert into it fails (a table altered or created anew under
// a running member). Shared by the views of a store (ForSpreadGroup).
type insertTypes struct {
	mu    sync.Mutex
	known map[string][]clickhouse.ColumnNameAndType // by table name
}

// prepareInsert starts an INSERT of t's columns. ctx carries the insert's settings
// (writing).
func (s *Store) prepareInsert(ctx context.Context, t table) (driver.Batch, error) {
	if s.types != nil {
		cols, err := s.types.columns(ctx, s, t)
		if err != nil {
			return nil, fmt.Errorf("prepare insert into %s: %w", t.name, err)
		}
		ctx = clickhouse.Context(ctx, clickhouse.WithColumnNamesAndTypes(cols))
	}
	b, err := s.conn.PrepareBatch(ctx, t.insertSQL(s.db))
	if err != nil {
		s.insertFailed(t)
		return nil, fmt.Errorf("prepare insert into %s: %w", t.name, err)
	}
	return b, nil
}

// sendInsert sends b, an insert into t.
func (s *Store) sendInsert(t table, b driver.Batch) error {
	if err := b.Send(); err != nil {
		s.insertFailed(t)
		return fmt.Errorf("insert into %s: %w", t.name, err)
	}
	return nil
}

// insertFailed forgets t's types: the next insert asks them again.
func (s *Store) insertFailed(t table) {
	if s.types == nil {
		return
	}
	s.types.mu.Lock()
	defer s.types.mu.Unlock()
	delete(s.types.known, t.name)
}

// columns are t's columns with their types, in t.cols' order.
func (it *insertTypes) columns(ctx context.Context, s *Store, t table) ([]clickhouse.ColumnNameAndType, error) {
	it.mu.Lock()
	cols, ok := it.known[t.name]
	it.mu.Unlock()
	if ok {
		return cols, nil
	}
	types := map[string]string{}
	rows, err := s.conn.Query(ctx, "SELECT name, type FROM system.columns WHERE database = {db:String} AND table = {table:String}",
		clickhouse.Named("db", s.db), clickhouse.Named("table", t.name))
	if err != nil {
		return nil, fmt.Errorf("read the column types: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var name, typ string
		if err := rows.Scan(&name, &typ); err != nil {
			return nil, fmt.Errorf("read the column types: %w", err)
		}
		types[name] = typ
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the column types: %w", err)
	}
	for _, name := range strings.Split(t.cols, ",") {
		name = strings.TrimSpace(name)
		typ, ok := types[name]
		if !ok {
			return nil, fmt.Errorf("table %s.%s has no column %s (are the migrations applied?)", s.db, t.name, name)
		}
		cols = append(cols, clickhouse.ColumnNameAndType{Name: name, Type: typ})
	}
	it.mu.Lock()
	defer it.mu.Unlock()
	if it.known == nil {
		it.known = map[string][]clickhouse.ColumnNameAndType{}
	}
	it.known[t.name] = cols
	return cols, nil
}
