package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// PublishPosition returns the position saved under name (table
// publish_positions): the highest message id that publisher has had
// acknowledged downstream, every id before it included. It is 0 when nothing
// was saved yet.
func (s *Store) PublishPosition(ctx context.Context, name string) (int64, error) {
	var id int64
	err := s.db.QueryRowContext(ctx, "SELECT last_id FROM publish_positions WHERE publisher = ?", name).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("sqlite: publish position %q: %w", name, err)
	}
	return id, nil
}

// SetPublishPosition saves id as name's position, in a transaction of its own
// beside the commit writer's (a small one: publishers save at most about once
// a second). A position never moves back: a lower id than the one saved is
// ignored, so several publishers sharing a name, or a late save, cannot undo
// progress.
func (s *Store) SetPublishPosition(ctx context.Context, name string, id int64) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO publish_positions (publisher, last_id, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (publisher) DO UPDATE SET last_id = max(last_id, excluded.last_id), updated_at = excluded.updated_at`,
		name, id, time.Now().UnixNano())
	if err != nil {
		return fmt.Errorf("sqlite: save publish position %q: %w", name, err)
	}
	return nil
}
