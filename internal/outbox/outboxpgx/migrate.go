package outboxpgx

import (
	"context"
	"embed"
	"fmt"
	"hash/fnv"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

//go:embed migration/main/*.sql
var migrationFS embed.FS

// migration is one embedded migration with the schema filled in.
type migration struct {
	Version  int64
	Name     string // e.g. "outbox"
	Up, Down string
}

var migrationFile = regexp.MustCompile(`^(\d+)_([a-z0-9_]+)\.(up|down)\.sql$`)

// migrations reads the embedded migrations of line ("main"), in version
// order, with {{schema}} replaced by schema.
func migrations(line, schema string) ([]migration, error) {
	dir := path.Join("migration", line)
	entries, err := fs.ReadDir(migrationFS, dir)
	if err != nil {
		return nil, fmt.Errorf("outboxpgx: migration line %q: %w", line, err)
	}
	byVersion := map[int64]*migration{}
	for _, e := range entries {
		m := migrationFile.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("outboxpgx: migration file %q: name is not NNN_name.up.sql or .down.sql", e.Name())
		}
		v, err := strconv.ParseInt(m[1], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("outboxpgx: migration file %q: %w", e.Name(), err)
		}
		b, err := fs.ReadFile(migrationFS, path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("outboxpgx: migration file %q: %w", e.Name(), err)
		}
		mig := byVersion[v]
		if mig == nil {
			mig = &migration{Version: v, Name: m[2]}
			byVersion[v] = mig
		}
		if mig.Name != m[2] {
			return nil, fmt.Errorf("outboxpgx: migration %d has two names, %q and %q", v, mig.Name, m[2])
		}
		sql := strings.ReplaceAll(string(b), "{{schema}}", schema)
		if m[3] == "up" {
			mig.Up = sql
		} else {
			mig.Down = sql
		}
	}
	var out []migration
	for _, m := range byVersion {
		if m.Up == "" || m.Down == "" {
			return nil, fmt.Errorf("outboxpgx: migration %d_%s lacks its up or down file", m.Version, m.Name)
		}
		out = append(out, *m)
	}
	slices.SortFunc(out, func(a, b migration) int { return int(a.Version - b.Version) })
	return out, nil
}

// migrateLockKey is the advisory lock key of schema's migrations: processes
// migrating the same schema wait for each other, other schemas do not.
func migrateLockKey(schema string) int64 {
	h := fnv.New64a()
	h.Write([]byte("evproxy outboxpgx migrate " + schema))
	return int64(h.Sum64())
}

// Migrate applies the embedded migrations the schema lacks, creating the
// schema if needed, in one transaction holding an advisory lock on the
// schema's migrations: when several processes start at once, one applies
// them and the others then find nothing to do. Each applied migration is
// recorded in <schema>.migration.
func (s *Store) Migrate(ctx context.Context) error {
	migs, err := migrations("main", s.schema)
	if err != nil {
		return err
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return wrapErr("migrate", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // a no-op after Commit
	for _, q := range []string{s.q.migrateLock, s.q.migrateSchema, s.q.migrateTable} {
		args := []any{}
		if q == s.q.migrateLock {
			args = append(args, migrateLockKey(s.schema))
		}
		if _, err := tx.Exec(ctx, q, args...); err != nil {
			return wrapErr("migrate", err)
		}
	}
	rows, err := tx.Query(ctx, s.q.migrateVersions)
	if err != nil {
		return wrapErr("migrate", err)
	}
	applied := map[int64]bool{}
	for rows.Next() {
		var v int64
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return wrapErr("migrate", err)
		}
		applied[v] = true
	}
	if err := rows.Err(); err != nil {
		return wrapErr("migrate", err)
	}
	for _, m := range migs {
		if applied[m.Version] {
			continue
		}
		if _, err := tx.Exec(ctx, m.Up); err != nil {
			return wrapErr(fmt.Sprintf("migrate %03d_%s", m.Version, m.Name), err)
		}
		if _, err := tx.Exec(ctx, s.q.migrateRecord, m.Version, m.Name); err != nil {
			return wrapErr("migrate", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return wrapErr("migrate", err)
	}
	return nil
}
