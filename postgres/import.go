package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/inletdev/inlet"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// Importing another store's history (inlet migrate): rows keep their ids, so
// that export cursors and the ids users noted stay valid, and a row already
// there is skipped, so that a copy cut short can be run again.

// ErrImportConflict is returned when the database already holds messages that
// are not the source's: inlet nodes wrote to it before the import.
var ErrImportConflict = errors.New("the database already holds other messages")

// ImportedUpTo returns the highest id at or below upTo already in the
// database: an import of rows in id order resumes after it. The row found must
// be the one at that id in the source, which check reports (false: the
// database holds other messages, ErrImportConflict); the database must hold no
// id above upTo.
func (s *Store) ImportedUpTo(ctx context.Context, upTo int64, check func(*inlet.Stored) (bool, error)) (int64, error) {
	db, err := s.q()
	if err != nil {
		return 0, fmt.Errorf("postgres: import: %w", err)
	}
	var above pgtype.Int8
	if err := db.QueryRow(ctx, "SELECT min(id) FROM messages WHERE id > $1", upTo).Scan(&above); err != nil {
		return 0, fmt.Errorf("postgres: import: %w", err)
	}
	if above.Valid {
		return 0, fmt.Errorf("postgres: import: %w: message id %d is above the source's last id %d: "+
			"import into an empty database, before any inlet node writes to it", ErrImportConflict, above.Int64, upTo)
	}
	var m inlet.Stored
	rows, err := db.Query(ctx, "SELECT "+messageColumns+" FROM messages WHERE id <= $1 ORDER BY id DESC LIMIT 1", upTo)
	if err != nil {
		return 0, fmt.Errorf("postgres: import: %w", err)
	}
	defer rows.Close()
	if !rows.Next() {
		return 0, rows.Err()
	}
	if err := scanMessage(rows, &m); err != nil {
		return 0, fmt.Errorf("postgres: import: %w", err)
	}
	rows.Close()
	same, err := check(&m)
	if err != nil {
		return 0, err
	}
	if !same {
		return 0, fmt.Errorf("postgres: import: %w: message id %d differs from the source's: "+
			"import into an empty database, before any inlet node writes to it", ErrImportConflict, m.ID)
	}
	return m.ID, nil
}

// ImportMessages inserts msgs with their ids, in one transaction, skipping
// those already stored; it returns how many it inserted.
func (s *Store) ImportMessages(ctx context.Context, msgs []inlet.Stored) (int64, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	conn, err := s.writer(ctx)
	if err != nil {
		return 0, fmt.Errorf("postgres: import: %w", err)
	}
	n := len(msgs)
	id, at, seq := make([]int64, n), make([]int64, n), make([]*int64, n)
	dev, tr, rem := make([]string, n), make([]string, n), make([]string, n)
	boot, fields := make([]*string, n), make([]*string, n)
	pay := make([][]byte, n)
	for i := range msgs {
		m := &msgs[i]
		id[i], at[i], dev[i], tr[i], rem[i], pay[i], fields[i] = m.ID, m.ReceivedAt, m.Device, m.Transport.String(), m.Remote.String(),
			payloadOf(&m.Message), fieldsOf(&m.Message)
		if m.Seq != 0 {
			boot[i], seq[i] = &m.Boot, &m.Seq
		}
	}
	var added int64
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(lockCommit)); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `INSERT INTO messages (id, received_at, device, transport, remote, boot, seq, payload, fields)
			SELECT id, at, dev, tr, rem, boot, seq, pay, fields::json FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[],
				$5::text[], $6::text[], $7::bigint[], $8::bytea[], $9::text[]) AS r(id, at, dev, tr, rem, boot, seq, pay, fields)
			ORDER BY id ON CONFLICT DO NOTHING`, id, at, dev, tr, rem, boot, seq, pay, fields)
		added = tag.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("postgres: import messages: %w", err)
	}
	return added, nil
}

// ImportState replaces the accounting of devs and boots with theirs (raising
// the devices' versions, so that running nodes read them back) and moves the
// id sequence past every stored id, in one transaction.
func (s *Store) ImportState(ctx context.Context, devs []inlet.Device, boots []inlet.Boot) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	conn, err := s.writer(ctx)
	if err != nil {
		return fmt.Errorf("postgres: import: %w", err)
	}
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(lockCommit)); err != nil {
			return err
		}
		for len(devs) > 0 {
			k := min(len(devs), 1000)
			if _, err := s.saveDevices(ctx, tx, devs[:k]); err != nil {
				return err
			}
			devs = devs[k:]
		}
		for len(boots) > 0 {
			k := min(len(boots), 1000)
			if err := saveBoots(ctx, tx, boots[:k]); err != nil {
				return err
			}
			boots = boots[k:]
		}
		_, err := tx.Exec(ctx, `SELECT setval('messages_id_seq', greatest((SELECT max(id) FROM messages),
			(SELECT last_value FROM messages_id_seq), 1))`)
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: import state: %w", err)
	}
	return nil
}
