package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// SetAfterCommit makes every successful COMMIT report f's error, as a COMMIT
// whose answer was lost does.
func SetAfterCommit(s *Store, f func() error) { s.afterCommit = f }

// SetBeforeCommit calls f with each batch's transaction just before its COMMIT.
func SetBeforeCommit(s *Store, f func(ctx context.Context, tx pgx.Tx)) { s.beforeCommit = f }

// PendingXID is the transaction id of the batch whose COMMIT is unknown (0:
// none); SetPendingXID replaces it, as a server that reused the id would.
func PendingXID(s *Store) int64 {
	if s.pending == nil {
		return 0
	}
	return s.pending.xid
}

func SetPendingXID(s *Store, xid int64) { s.pending.xid = xid }

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
