package storage

import (
	"context"
	"fmt"
	"sync"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// insertTypes remembers the column types of the inserts driftd makes, for inserts over
// HTTP. clickhouse-go's HTTP batch asks the server DESCRIBE TABLE before every INSERT to
// learn how to encode the block (the native protocol has the server send the block's
// header instead). That doubled the queries of every write: the embedded engine spends
// about 3 ms of CPU on any query, and a member writes a dozen tables a second under a
// backlog (docs/performance.md). An insert's types are asked once, and every insert's
// are asked again after any insert fails (a table altered or created anew under a
// running member). Shared by the views of a store (ForSpreadGroup).
type insertTypes struct {
	mu sync.Mutex
	// known is by insert statement, not table: given the types, the client encodes the
	// block by their column list, and the server matches columns by name, so one
	// insert's list given to another of the same table would store values in the wrong
	// columns.
	known map[string][]clickhouse.ColumnNameAndType
	// forgotten counts insertFailed's calls, so that types read before a failure are not
	// kept after it.
	forgotten uint64
}

// prepareInsert starts an INSERT of t's columns. ctx carries the insert's settings
// (writing). An insert that fails after this, appending rows or sending them, goes
// through insertFailed.
func (s *Store) prepareInsert(ctx context.Context, t table) (driver.Batch, error) {
	query := t.insertSQL(s.db)
	if s.types != nil {
		cols, err := s.types.columns(ctx, s, t, query)
		if err != nil {
			return nil, fmt.Errorf("prepare insert into %s: %w", t.name, err)
		}
		ctx = clickhouse.Context(ctx, clickhouse.WithColumnNamesAndTypes(cols))
	}
	b, err := s.conn.PrepareBatch(ctx, query)
	if err != nil {
		s.insertFailed()
		return nil, fmt.Errorf("prepare insert into %s: %w", t.name, err)
	}
	return b, nil
}

// sendInsert sends b, an insert into t.
func (s *Store) sendInsert(t table, b driver.Batch) error {
	if err := b.Send(); err != nil {
		s.insertFailed()
		return fmt.Errorf("insert into %s: %w", t.name, err)
	}
	return nil
}

// insertFailed forgets every insert's types: each asks them again. All of them, not only
// the failed table's: a failure is rare, asking again costs a query per table, and what
// made it fail (a database dropped and created anew) may not be the one table's alone.
func (s *Store) insertFailed() {
	if s.types == nil {
		return
	}
	s.types.mu.Lock()
	defer s.types.mu.Unlock()
	s.types.forgotten++
	clear(s.types.known)
}

// columns are the columns of t's insert query with their types, in t.cols' order.
func (it *insertTypes) columns(ctx context.Context, s *Store, t table, query string) ([]clickhouse.ColumnNameAndType, error) {
	it.mu.Lock()
	cols, ok := it.known[query]
	forgotten := it.forgotten
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
	if len(types) == 0 {
		// system.columns lists nothing, rather than failing, for a table that is not
		// there or whose columns the user may not see.
		return nil, fmt.Errorf("read the column types: table %s.%s not found, or its columns not visible to user (are the migrations applied? may the user read them?)", s.db, t.name)
	}
	for _, name := range t.columns() {
		typ, ok := types[name]
		if !ok {
			return nil, fmt.Errorf("read the column types: table %s.%s has no column %s (are the migrations applied?)", s.db, t.name, name)
		}
		cols = append(cols, clickhouse.ColumnNameAndType{Name: name, Type: typ})
	}
	it.mu.Lock()
	defer it.mu.Unlock()
	if it.forgotten != forgotten {
		// An insert failed while they were read: they may be from before what made it
		// fail. Used once, asked again next time.
		return cols, nil
	}
	if it.known == nil {
		it.known = map[string][]clickhouse.ColumnNameAndType{}
	}
	it.known[query] = cols
	return cols, nil
}
