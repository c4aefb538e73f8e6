package sqlstore

import (
	"context"
	"strconv"
	"strings"

	"github.com/salonhq/salon/homeserver/store"
)

var _ store.KeyBackups = (*Store)(nil)

// Every write to a user's backups first locks the user's key_backup_users
// row (an UPDATE that changes nothing), so on PostgreSQL two writes of one
// user — a key upload racing the creation of a new version, two uploads of
// the same session — run one after the other; on SQLite all writes do.
const lockBackupUser = `UPDATE key_backup_users SET last_version = last_version WHERE user_id = $1`

const backupCols = `user_id, version, algorithm, auth_data, etag, key_count`

// The queries of KeyBackupHotQueries, shared with the code that runs them.
const (
	latestBackupQuery = `SELECT ` + backupCols + ` FROM key_backup_versions
		WHERE user_id = $1 AND NOT deleted ORDER BY version DESC LIMIT 1`
	// storedKeysQuery is followed by the session IDs' placeholders and ")".
	storedKeysQuery = `SELECT session_id, first_message_index, forwarded_count, is_verified FROM key_backup_keys
		WHERE user_id = $1 AND version = $2 AND room_id = $3 AND session_id IN (`
)

func readKeysQuery(where string) string {
	return `SELECT room_id, session_id, first_message_index, forwarded_count, is_verified, session_data
		FROM key_backup_keys WHERE ` + where + ` ORDER BY room_id, session_id`
}

func deleteKeysQuery(where string) string { return `DELETE FROM key_backup_keys WHERE ` + where }

// KeyBackupHotQueries are the key backup queries whose plans must use an
// index (a backup holds up to hundreds of thousands of keys), with sample
// arguments; the SQLite tests check them.
func KeyBackupHotQueries() map[string][]any {
	room, _ := backupKeysWhere(store.BackupKeysFilter{RoomID: "!r:t"})
	session, _ := backupKeysWhere(store.BackupKeysFilter{RoomID: "!r:t", SessionID: "s"})
	return map[string][]any{
		latestBackupQuery:           {"@a:t"},
		storedKeysQuery + `$4, $5)`: {"@a:t", int64(1), "!r:t", "s1", "s2"},
		readKeysQuery(room):         {"@a:t", int64(1), "!r:t"},
		readKeysQuery(session):      {"@a:t", int64(1), "!r:t", "s"},
		deleteKeysQuery(session):    {"@a:t", int64(1), "!r:t", "s"},
	}
}

func scanBackup(r Row) (store.KeyBackup, error) {
	var b store.KeyBackup
	var auth string
	err := r.Scan(&b.UserID, &b.Version, &b.Algorithm, &auth, &b.ETag, &b.Count)
	b.AuthData = []byte(auth)
	return b, err
}

func (s *Store) CreateKeyBackup(ctx context.Context, userID, algorithm string, authData []byte) (int64, error) {
	var version int64
	err := s.db.Tx(ctx, func(q Querier) error {
		if err := q.QueryRow(ctx, `INSERT INTO key_backup_users (user_id, last_version) VALUES ($1, 1)
			ON CONFLICT (user_id) DO UPDATE SET last_version = key_backup_users.last_version + 1
			RETURNING last_version`, userID).Scan(&version); err != nil {
			return err
		}
		_, err := q.Exec(ctx, `INSERT INTO key_backup_versions (user_id, version, algorithm, auth_data, etag, key_count, deleted)
			VALUES ($1, $2, $3, $4, 0, 0, $5)`, userID, version, algorithm, string(authData), false)
		return err
	})
	return version, s.mapErr(err)
}

func (s *Store) KeyBackup(ctx context.Context, userID string, version int64) (store.KeyBackup, error) {
	b, err := scanBackup(s.db.QueryRow(ctx, `SELECT `+backupCols+` FROM key_backup_versions
		WHERE user_id = $1 AND version = $2 AND NOT deleted`, userID, version))
	return b, s.mapErr(err)
}

func (s *Store) LatestKeyBackup(ctx context.Context, userID string) (store.KeyBackup, error) {
	return latestBackup(ctx, s, s.db, userID)
}

func latestBackup(ctx context.Context, s *Store, q Querier, userID string) (store.KeyBackup, error) {
	b, err := scanBackup(q.QueryRow(ctx, latestBackupQuery, userID))
	return b, s.mapErr(err)
}

func (s *Store) UpdateKeyBackupAuthData(ctx context.Context, userID string, version int64, authData []byte) error {
	return s.mapErr(s.db.Tx(ctx, func(q Querier) error {
		n, err := q.Exec(ctx, `UPDATE key_backup_versions SET auth_data = $3
			WHERE user_id = $1 AND version = $2 AND NOT deleted`, userID, version, string(authData))
		if err == nil && n == 0 {
			return errNotFound
		}
		return err
	}))
}

func (s *Store) DeleteKeyBackup(ctx context.Context, userID string, version int64) error {
	return s.mapErr(s.db.Tx(ctx, func(q Querier) error {
		if n, err := q.Exec(ctx, lockBackupUser, userID); err != nil || n == 0 {
			if err == nil {
				err = errNotFound
			}
			return err
		}
		var deleted bool
		if err := q.QueryRow(ctx, `SELECT deleted FROM key_backup_versions WHERE user_id = $1 AND version = $2`,
			userID, version).Scan(&deleted); err != nil {
			return err
		}
		if deleted {
			return nil
		}
		if _, err := q.Exec(ctx, `DELETE FROM key_backup_keys WHERE user_id = $1 AND version = $2`, userID, version); err != nil {
			return err
		}
		// The row stays, marked deleted, so its number is never handed out
		// again and a second delete still succeeds.
		_, err := q.Exec(ctx, `UPDATE key_backup_versions SET deleted = $3, key_count = 0, etag = etag + 1, auth_data = '{}'
			WHERE user_id = $1 AND version = $2`, userID, version, true)
		return err
	}))
}

// deleteUserKeyBackups deletes every backup version of a user and its keys
// (for a deactivated account); the versions stay as tombstones.
func deleteUserKeyBackups(ctx context.Context, q Querier, userID string) error {
	if _, err := q.Exec(ctx, `DELETE FROM key_backup_keys WHERE user_id = $1`, userID); err != nil {
		return err
	}
	_, err := q.Exec(ctx, `UPDATE key_backup_versions SET deleted = $2, key_count = 0, etag = etag + 1, auth_data = '{}'
		WHERE user_id = $1 AND NOT deleted`, userID, true)
	return err
}

// backupKeysBatch is how many sessions one INSERT statement carries (8
// parameters each, well below both databases' parameter limits).
const backupKeysBatch = 100

// backupKeyMeta is what the replacement rule looks at of a stored key.
type backupKeyMeta struct {
	fmi, fc  int64
	verified bool
}

func (s *Store) PutBackupKeys(ctx context.Context, userID string, version int64, sessions []store.BackupSession) (store.KeyBackup, error) {
	var out store.KeyBackup
	err := s.db.Tx(ctx, func(q Querier) error {
		b, err := s.writableBackup(ctx, q, userID, version)
		if err != nil {
			return err
		}
		sessions = uniqueBackupKeys(sessions)
		stored, err := s.storedBackupKeys(ctx, q, userID, version, sessions)
		if err != nil {
			return err
		}
		var write []store.BackupSession
		var added int64
		for _, ns := range sessions {
			old, ok := stored[[2]string{ns.RoomID, ns.SessionID}]
			if ok && !ns.Replaces(store.BackupSession{FirstMessageIndex: old.fmi, ForwardedCount: old.fc, IsVerified: old.verified}) {
				continue
			}
			if !ok {
				added++
			}
			write = append(write, ns)
		}
		changed := len(write)
		for len(write) > 0 {
			n := min(len(write), backupKeysBatch)
			if err := upsertBackupKeys(ctx, q, userID, version, write[:n]); err != nil {
				return err
			}
			write = write[n:]
		}
		if changed > 0 {
			// Something was written: the keys changed.
			if _, err := q.Exec(ctx, `UPDATE key_backup_versions SET etag = etag + 1, key_count = key_count + $3
				WHERE user_id = $1 AND version = $2`, userID, version, added); err != nil {
				return err
			}
			b.ETag++
			b.Count += added
		}
		out = b
		return nil
	})
	return out, s.mapErr(err)
}

// uniqueBackupKeys keeps one key per room and session (the one the rule
// prefers), since one statement cannot write a row twice.
func uniqueBackupKeys(sessions []store.BackupSession) []store.BackupSession {
	at := make(map[[2]string]int, len(sessions))
	out := sessions[:0:0]
	for _, k := range sessions {
		id := [2]string{k.RoomID, k.SessionID}
		if i, ok := at[id]; ok {
			if k.Replaces(out[i]) {
				out[i] = k
			}
			continue
		}
		at[id] = len(out)
		out = append(out, k)
	}
	return out
}

// writableBackup locks the user's backups and returns version if it is the
// latest; ErrNotFound when it never existed or no version is left,
// *store.WrongBackupVersion when it is an older (or deleted) one.
func (s *Store) writableBackup(ctx context.Context, q Querier, userID string, version int64) (store.KeyBackup, error) {
	var last int64
	if n, err := q.Exec(ctx, lockBackupUser, userID); err != nil || n == 0 {
		if err == nil {
			err = errNotFound
		}
		return store.KeyBackup{}, err
	}
	if err := q.QueryRow(ctx, `SELECT last_version FROM key_backup_users WHERE user_id = $1`, userID).Scan(&last); err != nil {
		return store.KeyBackup{}, err
	}
	b, err := latestBackup(ctx, s, q, userID)
	if err != nil {
		return store.KeyBackup{}, err
	}
	switch {
	case b.Version == version:
		return b, nil
	case version >= 1 && version <= last:
		return store.KeyBackup{}, &store.WrongBackupVersion{Current: b.Version}
	}
	return store.KeyBackup{}, errNotFound
}

// storedBackupKeys reads the replacement-rule fields of the stored keys
// among sessions, a room and up to backupKeysBatch session IDs per query
// (an index range, whatever the number of keys the room already holds).
func (s *Store) storedBackupKeys(ctx context.Context, q Querier, userID string, version int64, sessions []store.BackupSession) (map[[2]string]backupKeyMeta, error) {
	stored := make(map[[2]string]backupKeyMeta, len(sessions))
	byRoom := map[string][]string{}
	var rooms []string
	for _, ns := range sessions {
		if _, ok := byRoom[ns.RoomID]; !ok {
			rooms = append(rooms, ns.RoomID)
		}
		byRoom[ns.RoomID] = append(byRoom[ns.RoomID], ns.SessionID)
	}
	for _, room := range rooms {
		ids := byRoom[room]
		for len(ids) > 0 {
			n := min(len(ids), backupKeysBatch)
			var sb strings.Builder
			sb.WriteString(storedKeysQuery)
			args := []any{userID, version, room}
			for i, id := range ids[:n] {
				if i > 0 {
					sb.WriteString(", ")
				}
				args = append(args, id)
				sb.WriteString("$" + strconv.Itoa(len(args)))
			}
			sb.WriteString(")")
			ids = ids[n:]
			rows, err := q.Query(ctx, sb.String(), args...)
			if err != nil {
				return nil, err
			}
			for rows.Next() {
				var id string
				var m backupKeyMeta
				if err := rows.Scan(&id, &m.fmi, &m.fc, &m.verified); err != nil {
					rows.Close()
					return nil, err
				}
				stored[[2]string{room, id}] = m
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return nil, err
			}
		}
	}
	return stored, nil
}

func upsertBackupKeys(ctx context.Context, q Querier, userID string, version int64, batch []store.BackupSession) error {
	var sb strings.Builder
	sb.WriteString(`INSERT INTO key_backup_keys (user_id, version, room_id, session_id, first_message_index, forwarded_count, is_verified, session_data) VALUES `)
	args := make([]any, 0, len(batch)*8)
	for i, k := range batch {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString("(")
		for j := range 8 {
			if j > 0 {
				sb.WriteString(", ")
			}
			sb.WriteString("$")
			sb.WriteString(strconv.Itoa(i*8 + j + 1))
		}
		sb.WriteString(")")
		args = append(args, userID, version, k.RoomID, k.SessionID, k.FirstMessageIndex, k.ForwardedCount, k.IsVerified, string(k.SessionData))
	}
	sb.WriteString(` ON CONFLICT (user_id, version, room_id, session_id) DO UPDATE SET
		first_message_index = excluded.first_message_index, forwarded_count = excluded.forwarded_count,
		is_verified = excluded.is_verified, session_data = excluded.session_data`)
	_, err := q.Exec(ctx, sb.String(), args...)
	return err
}

// backupKeysWhere is the WHERE clause of a filtered read or delete, and its
// arguments after user and version.
func backupKeysWhere(f store.BackupKeysFilter) (string, []any) {
	where := `user_id = $1 AND version = $2`
	var args []any
	if f.RoomID != "" {
		where += ` AND room_id = $3`
		args = append(args, f.RoomID)
		if f.SessionID != "" {
			where += ` AND session_id = $4`
			args = append(args, f.SessionID)
		}
	}
	return where, args
}

func (s *Store) BackupKeys(ctx context.Context, userID string, version int64, f store.BackupKeysFilter) ([]store.BackupSession, error) {
	if _, err := s.KeyBackup(ctx, userID, version); err != nil {
		return nil, err
	}
	where, extra := backupKeysWhere(f)
	rows, err := s.db.Query(ctx, readKeysQuery(where), append([]any{userID, version}, extra...)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []store.BackupSession{}
	for rows.Next() {
		var k store.BackupSession
		var data string
		if err := rows.Scan(&k.RoomID, &k.SessionID, &k.FirstMessageIndex, &k.ForwardedCount, &k.IsVerified, &data); err != nil {
			return nil, err
		}
		k.SessionData = []byte(data)
		out = append(out, k)
	}
	return out, rows.Err()
}

func (s *Store) DeleteBackupKeys(ctx context.Context, userID string, version int64, f store.BackupKeysFilter) (store.KeyBackup, error) {
	var out store.KeyBackup
	err := s.db.Tx(ctx, func(q Querier) error {
		if n, err := q.Exec(ctx, lockBackupUser, userID); err != nil || n == 0 {
			if err == nil {
				err = errNotFound
			}
			return err
		}
		b, err := scanBackup(q.QueryRow(ctx, `SELECT `+backupCols+` FROM key_backup_versions
			WHERE user_id = $1 AND version = $2 AND NOT deleted`, userID, version))
		if err != nil {
			return err
		}
		where, extra := backupKeysWhere(f)
		n, err := q.Exec(ctx, deleteKeysQuery(where), append([]any{userID, version}, extra...)...)
		if err != nil {
			return err
		}
		if n > 0 {
			if _, err := q.Exec(ctx, `UPDATE key_backup_versions SET etag = etag + 1, key_count = key_count - $3
				WHERE user_id = $1 AND version = $2`, userID, version, n); err != nil {
				return err
			}
			b.ETag++
			b.Count -= n
		}
		out = b
		return nil
	})
	return out, s.mapErr(err)
}
