package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// PublishPosition returns the position saved under name (table
// publish_positions): the highest message id that publisher has had
// acknowledged downstream, every id before it included; 0 when none was saved.
// Ids commit in order (the commit lock), so a position never passes a row that
// commits later.
func (s *Store) PublishPosition(ctx context.Context, name string) (int64, error) {
	if s.pool == nil {
		return 0, fmt.Errorf("postgres: publish position %q: store closed", name)
	}
	var id int64
	err := s.pool.QueryRow(ctx, "SELECT last_id FROM publish_positions WHERE publisher = $1", name).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("postgres: publish position %q: %w", name, err)
	}
	return id, nil
}

// SetPublishPosition saves id as name's position. A position never moves back,
// so nodes sharing a name, or a late save, cannot undo progress.
func (s *Store) SetPublishPosition(ctx context.Context, name string, id int64) error {
	if s.pool == nil {
		return fmt.Errorf("postgres: save publish position %q: store closed", name)
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO publish_positions (publisher, last_id, updated_at) VALUES ($1, $2, $3)
		ON CONFLICT (publisher) DO UPDATE SET last_id = greatest(publish_positions.last_id, excluded.last_id),
		updated_at = excluded.updated_at`, name, id, time.Now().UnixNano())
	if err != nil {
		return fmt.Errorf("postgres: save publish position %q: %w", name, err)
	}
	return nil
}
