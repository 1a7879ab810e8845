package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
)

// The schema is a ladder of numbered migrations, migrations/NNNN_name.sql. A
// database's PRAGMA user_version is the number of the last one applied; Open
// applies the ones above it in order, each in its own transaction together with
// the new user_version, so a crash leaves the database at one step or the next,
// never between. A migration, once released, is never edited: a change of schema
// is a new file.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// migration is one step of the ladder.
type migration struct {
	version int
	name    string
	sql     string
}

// ladder is the embedded migrations in order; schemaVersion is its top.
var ladder = mustLadder(migrationFiles)

var schemaVersion = ladder[len(ladder)-1].version

// SchemaVersion is the schema version this build writes (docs/schema.md).
func SchemaVersion() int { return schemaVersion }

func mustLadder(fsys fs.FS) []migration {
	l, err := loadLadder(fsys)
	if err != nil {
		panic(err)
	}
	return l
}

// loadLadder reads migrations/NNNN_name.sql, which must be numbered 1, 2, 3, …
func loadLadder(fsys fs.FS) ([]migration, error) {
	names, err := fs.Glob(fsys, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	var l []migration
	for i, n := range names {
		base := path.Base(n)
		num, name, ok := strings.Cut(strings.TrimSuffix(base, ".sql"), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v != i+1 {
			return nil, fmt.Errorf("sqlite: migration %s: want migrations/%04d_name.sql", n, i+1)
		}
		b, err := fs.ReadFile(fsys, n)
		if err != nil {
			return nil, err
		}
		l = append(l, migration{version: v, name: name, sql: string(b)})
	}
	if len(l) == 0 {
		return nil, errors.New("sqlite: no migrations")
	}
	return l, nil
}

// errNewer is returned for a database written by a newer inlet.
var errNewer = errors.New("written by a newer inlet")

// checkVersion says whether a database at version can be used by a reader of
// this build without migrating.
func checkVersion(version int) error {
	switch {
	case version == schemaVersion:
		return nil
	case version > schemaVersion:
		return fmt.Errorf("schema version %d is %w (this one knows up to %d): upgrade inlet, or restore a backup made by this version",
			version, errNewer, schemaVersion)
	case version == 0:
		return errors.New("not an inlet database (no schema version)")
	default:
		return fmt.Errorf("schema version %d is older than this inlet's %d: start `inlet serve` on it once to upgrade it", version, schemaVersion)
	}
}

// migrate brings the database on conn up the ladder. Each step runs in a
// BEGIN IMMEDIATE transaction (so two processes starting at once take turns;
// the second finds the work done), with its user_version.
func migrate(ctx context.Context, conn *sql.Conn, ladder []migration) error {
	top := ladder[len(ladder)-1].version
	for {
		done, err := migrateStep(ctx, conn, ladder, top)
		if err != nil || done {
			return err
		}
	}
}

func migrateStep(ctx context.Context, conn *sql.Conn, ladder []migration, top int) (done bool, err error) {
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return false, fmt.Errorf("migrate: begin: %w", err)
	}
	committed := false
	defer func() {
		if !committed {
			conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		}
	}()
	var version int
	if err := conn.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return false, fmt.Errorf("migrate: read version: %w", err)
	}
	if version > top {
		return false, fmt.Errorf("schema version %d is %w (this one knows up to %d): upgrade inlet, or restore a backup made by this version",
			version, errNewer, top)
	}
	if version == top {
		return true, nil
	}
	if version == 0 {
		var tables int
		if err := conn.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema").Scan(&tables); err != nil {
			return false, fmt.Errorf("migrate: %w", err)
		}
		if tables != 0 {
			return false, errors.New("the file holds another database (tables without an inlet schema version)")
		}
	}
	m := ladder[version] // the step from version to version+1
	if _, err := conn.ExecContext(ctx, m.sql); err != nil {
		return false, fmt.Errorf("migrate to version %d (%s): %w", m.version, m.name, err)
	}
	if _, err := conn.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", m.version)); err != nil {
		return false, fmt.Errorf("migrate to version %d (%s): %w", m.version, m.name, err)
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		return false, fmt.Errorf("migrate to version %d (%s): commit: %w", m.version, m.name, err)
	}
	committed = true
	return m.version == top, nil
}
