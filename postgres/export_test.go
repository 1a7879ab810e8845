package postgres

import (
	"context"

	"github.com/jackc/pgx/v5/pgxpool"
)

// SetAfterCommit makes every successful COMMIT report f's error, as a COMMIT
// whose answer was lost does.
func SetAfterCommit(s *Store, f func() error) { s.afterCommit = f }

// MigrateTo creates the schema of an older version on the database at url:
// the ladder's first version steps, as an older inlet did.
func MigrateTo(ctx context.Context, url string, version int) error {
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return err
	}
	defer pool.Close()
	return migrate(ctx, pool, ladder[:version])
}
