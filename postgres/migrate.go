package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The schema is a ladder of numbered migrations, migrations/NNNN_name.sql, as
// in the sqlite package. The table inlet_schema lists the steps applied. Open
// applies the missing ones in order, each in its own transaction with its row
// in inlet_schema, while holding a session advisory lock (lockMigrate): nodes
// starting at once take turns, and the later ones find the work done. A
// released migration is never edited.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

type migration struct {
	version int
	name    string
	sql     string
}

var ladder = mustLadder(migrationFiles)

// SchemaVersion is the PostgreSQL schema version this build writes (docs/schema.md).
func SchemaVersion() int { return ladder[len(ladder)-1].version }

func mustLadder(fsys fs.FS) []migration {
	names, err := fs.Glob(fsys, "migrations/*.sql")
	if err != nil {
		panic(err)
	}
	slices.Sort(names)
	var l []migration
	for i, n := range names {
		num, name, ok := strings.Cut(strings.TrimSuffix(path.Base(n), ".sql"), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v != i+1 {
			panic(fmt.Sprintf("postgres: migration %s: want migrations/%04d_name.sql", n, i+1))
		}
		b, err := fs.ReadFile(fsys, n)
		if err != nil {
			panic(err)
		}
		l = append(l, migration{version: v, name: name, sql: string(b)})
	}
	if len(l) == 0 {
		panic("postgres: no migrations")
	}
	return l
}

// Advisory lock keys (one bigint space per database, shared with other
// applications: these spell "inlet" and a number).
const (
	lockMigrate = 0x696e6c6574_01 // session lock while migrating
	lockCommit  = 0x696e6c6574_02 // transaction lock from the first id taken to COMMIT
)

var errNewer = errors.New("written by a newer inlet")

// schemaVersion reads the version of the database, 0 when it has no inlet schema.
func schemaVersion(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}) (int, error) {
	var exists bool
	if err := q.QueryRow(ctx, "SELECT to_regclass('inlet_schema') IS NOT NULL").Scan(&exists); err != nil || !exists {
		return 0, err
	}
	var v int
	err := q.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM inlet_schema").Scan(&v)
	return v, err
}

// checkVersion says whether a database at version can be used by a reader of
// this build without migrating.
func checkVersion(version int) error {
	top := SchemaVersion()
	switch {
	case version == top:
		return nil
	case version > top:
		return fmt.Errorf("schema version %d is %w (this one knows up to %d): upgrade inlet", version, errNewer, top)
	case version == 0:
		return errors.New("not an inlet database (no inlet_schema table): start `inlet serve --db` on it once to create the schema")
	default:
		return fmt.Errorf("schema version %d is older than this inlet's %d: start `inlet serve` on it once to upgrade it", version, top)
	}
}

// migrate brings the database up the ladder under the migration lock.
func migrate(ctx context.Context, pool *pgxpool.Pool, ladder []migration) error {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", int64(lockMigrate)); err != nil {
		return fmt.Errorf("migrate: lock: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", int64(lockMigrate))
	version, err := schemaVersion(ctx, conn)
	if err != nil {
		return fmt.Errorf("migrate: read version: %w", err)
	}
	top := ladder[len(ladder)-1].version
	if version > top {
		return fmt.Errorf("schema version %d is %w (this one knows up to %d): upgrade inlet", version, errNewer, top)
	}
	if version == 0 {
		var other bool
		if err := conn.QueryRow(ctx, "SELECT to_regclass('messages') IS NOT NULL OR to_regclass('devices') IS NOT NULL OR to_regclass('tokens') IS NOT NULL").Scan(&other); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		if other {
			return errors.New("the database holds other tables named messages, devices or tokens, without an inlet schema version: use an empty database")
		}
	}
	for _, m := range ladder[version:] {
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS inlet_schema (
				version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "INSERT INTO inlet_schema (version, name) VALUES ($1, $2)", m.version, m.name)
			return err
		})
		if err != nil {
			return fmt.Errorf("migrate to version %d (%s): %w", m.version, m.name, err)
		}
	}
	return nil
}
