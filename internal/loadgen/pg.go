package loadgen

import (
	"context"
	"errors"
	"fmt"

	"github.com/inletdev/inlet/postgres"
	"github.com/jackc/pgx/v5"
)

// errNotEmpty is returned when a PostgreSQL database the bench was given holds
// rows and --db-reset was not given.
var errNotEmpty = errors.New("holds rows")

// preparePostgres makes the schema of the URL (its search_path, public by
// default) empty before a run, so that the started servers create inlet's
// tables afresh: a schema without tables, or an inlet schema whose messages and
// devices are empty, is used as it is. Anything else is dropped and created
// again (DROP SCHEMA … CASCADE) only when reset is set; otherwise the bench
// refuses.
func preparePostgres(ctx context.Context, url string, reset bool) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return fmt.Errorf("--db %s: %w", postgres.Redact(url), err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var schema string
	var tables int64
	if err := conn.QueryRow(ctx, `SELECT current_schema(),
		(SELECT count(*) FROM pg_tables WHERE schemaname = current_schema())`).Scan(&schema, &tables); err != nil {
		return fmt.Errorf("--db %s: %w", postgres.Redact(url), err)
	}
	if tables == 0 {
		return nil
	}
	var rows int64
	var inletDB bool
	if err := conn.QueryRow(ctx, `SELECT to_regclass('inlet_schema') IS NOT NULL
		AND to_regclass('messages') IS NOT NULL AND to_regclass('devices') IS NOT NULL`).Scan(&inletDB); err != nil {
		return fmt.Errorf("--db %s: %w", postgres.Redact(url), err)
	}
	if inletDB {
		if err := conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM (SELECT 1 FROM messages LIMIT 1) m)
			+ (SELECT count(*) FROM (SELECT 1 FROM devices LIMIT 1) d)`).Scan(&rows); err != nil {
			return fmt.Errorf("--db %s: %w", postgres.Redact(url), err)
		}
		if rows == 0 {
			return nil
		}
	}
	if !reset {
		what := "holds inlet messages or devices"
		if !inletDB {
			what = fmt.Sprintf("holds %d tables that are not inlet's", tables)
		}
		return fmt.Errorf("--db %s: schema %s %s: the bench wants it empty; give --db-reset to drop the schema "+
			"(DROP SCHEMA %s CASCADE) and create it again: %w", postgres.Redact(url), schema, what, schema, errNotEmpty)
	}
	id := pgx.Identifier{schema}.Sanitize()
	if _, err := conn.Exec(ctx, "DROP SCHEMA "+id+" CASCADE"); err != nil {
		return fmt.Errorf("--db-reset %s: %w", postgres.Redact(url), err)
	}
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+id); err != nil {
		return fmt.Errorf("--db-reset %s: %w", postgres.Redact(url), err)
	}
	return nil
}

// countPostgres counts the messages stored in the database at url.
func countPostgres(ctx context.Context, url string) (int64, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return 0, fmt.Errorf("count rows in %s: %w", postgres.Redact(url), err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var n int64
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM messages").Scan(&n); err != nil {
		return 0, fmt.Errorf("count rows in %s: %w", postgres.Redact(url), err)
	}
	return n, nil
}
