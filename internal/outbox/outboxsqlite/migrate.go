package outboxsqlite

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

//go:embed migration
var migrationFS embed.FS

// migrationLines are the lines of migrations; "main" is the outbox schema.
var migrationLines = []string{"main"}

// GetMigrationLines returns the migration lines the store has ("main").
func (s *Store) GetMigrationLines() []string { return append([]string(nil), migrationLines...) }

// GetMigrationFS returns the migration files of line, named
// NNN_name.up.sql and NNN_name.down.sql, or nil for an unknown line.
func (s *Store) GetMigrationFS(line string) fs.FS {
	sub, err := fs.Sub(migrationFS, "migration/"+line)
	if err != nil {
		return nil
	}
	if _, err := fs.Stat(sub, "."); err != nil {
		return nil
	}
	return sub
}

// migration is one version of a line.
type migration struct {
	version  int
	name     string
	up, down string
}

// loadMigrations reads line's migrations in version order.
func loadMigrations(line string) ([]migration, error) {
	dir := "migration/" + line
	entries, err := fs.ReadDir(migrationFS, dir)
	if err != nil {
		return nil, err
	}
	byVersion := map[int]*migration{}
	for _, e := range entries {
		base, dirn, ok := strings.Cut(e.Name(), ".")
		if !ok || (dirn != "up.sql" && dirn != "down.sql") {
			return nil, fmt.Errorf("migration %s: unexpected file %s", line, e.Name())
		}
		num, name, _ := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: bad version in %s", line, e.Name())
		}
		b, err := fs.ReadFile(migrationFS, path.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		m := byVersion[v]
		if m == nil {
			m = &migration{version: v, name: name}
			byVersion[v] = m
		}
		if dirn == "up.sql" {
			m.up = string(b)
		} else {
			m.down = string(b)
		}
	}
	var out []migration
	for _, m := range byVersion {
		if m.up == "" || m.down == "" {
			return nil, fmt.Errorf("migration %s %03d: needs both up and down", line, m.version)
		}
		out = append(out, *m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	return out, nil
}

// Migrate applies the embedded migrations not yet recorded in the
// migration table, each with its record in one transaction. Running it
// again does nothing.
func (s *Store) Migrate(ctx context.Context) error {
	return wrapErr("migrate", s.migrate(ctx, "main", -1))
}

// migrate brings line up to version target (-1: the latest) or, for a
// lower target, down to it.
func (s *Store) migrate(ctx context.Context, line string, target int) error {
	ms, err := loadMigrations(line)
	if err != nil {
		return err
	}
	if target < 0 && len(ms) > 0 {
		target = ms[len(ms)-1].version
	}
	return s.writeTx(ctx, func(q querier) error {
		if _, err := q.ExecContext(ctx, qMigrationTable); err != nil {
			return err
		}
		rows, err := q.QueryContext(ctx, qMigrationVersions, line)
		if err != nil {
			return err
		}
		applied := map[int]bool{}
		for rows.Next() {
			var v int
			if err := rows.Scan(&v); err != nil {
				rows.Close()
				return err
			}
			applied[v] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, m := range ms {
			if m.version > target || applied[m.version] {
				continue
			}
			if _, err := q.ExecContext(ctx, m.up); err != nil {
				return fmt.Errorf("%s %03d_%s up: %w", line, m.version, m.name, err)
			}
			if _, err := q.ExecContext(ctx, qMigrationInsert, line, m.version, m.name, time.Now().UnixMilli()); err != nil {
				return err
			}
		}
		for i := len(ms) - 1; i >= 0; i-- {
			m := ms[i]
			if m.version <= target || !applied[m.version] {
				continue
			}
			if _, err := q.ExecContext(ctx, m.down); err != nil {
				return fmt.Errorf("%s %03d_%s down: %w", line, m.version, m.name, err)
			}
			if _, err := q.ExecContext(ctx, qMigrationDelete, line, m.version); err != nil {
				return err
			}
		}
		return nil
	})
}
