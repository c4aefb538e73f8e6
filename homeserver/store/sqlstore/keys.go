package sqlstore

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/salonhq/salon/homeserver/store"
)

var _ store.Keys = (*Store)(nil)

// inChunk bounds the placeholders of one IN list.
const inChunk = 200

// inList is "$first, $first+1, ..." for n values.
func inList(first, n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('$')
		b.WriteString(strconv.Itoa(first + i))
	}
	return b.String()
}

// chunked runs fn over the values in slices of at most inChunk, each with
// its IN list.
func chunked[T any](vals []T, fn func(part []any, in string) error) error {
	for len(vals) > 0 {
		n := min(len(vals), inChunk)
		part := make([]any, n)
		for i, v := range vals[:n] {
			part[i] = v
		}
		if err := fn(part, inList(1, n)); err != nil {
			return err
		}
		vals = vals[n:]
	}
	return nil
}

// markChanged records a device-list change of userID at pos.
func markChanged(ctx context.Context, q Querier, userID string, pos int64) error {
	_, err := q.Exec(ctx, `INSERT INTO device_list_changes (user_id, stream_pos) VALUES ($1, $2)
		ON CONFLICT (user_id) DO UPDATE SET stream_pos = excluded.stream_pos`, userID, pos)
	return err
}

// noteKeysPos keeps the newest device-list change position, so that syncs
// with nothing new skip the query.
func (s *Store) noteKeysPos(pos int64) {
	for {
		cur := s.keysPos.Load()
		if pos <= cur || s.keysPos.CompareAndSwap(cur, pos) {
			return
		}
	}
}

func (s *Store) loadKeysPos(ctx context.Context) error {
	var p int64
	if err := s.db.QueryRow(ctx, `SELECT COALESCE(MAX(stream_pos), 0) FROM device_list_changes`).Scan(&p); err != nil {
		return err
	}
	s.keysPos.Store(p)
	return nil
}

func (s *Store) UploadKeys(ctx context.Context, userID, deviceID string, deviceKeys []byte, otks, fallbacks []store.KeyJSON) (int64, error) {
	var changedAt int64
	_, err := s.streamTx(ctx, func(q Querier, next func() int64) error {
		changedAt = 0
		if deviceKeys != nil {
			var old string
			err := q.QueryRow(ctx, `SELECT key_json FROM device_keys WHERE user_id = $1 AND device_id = $2`, userID, deviceID).Scan(&old)
			if err != nil && !s.db.IsNoRows(err) {
				return err
			}
			if err != nil || !bytes.Equal([]byte(old), deviceKeys) {
				if _, err := q.Exec(ctx, `INSERT INTO device_keys (user_id, device_id, key_json) VALUES ($1, $2, $3)
					ON CONFLICT (user_id, device_id) DO UPDATE SET key_json = excluded.key_json`, userID, deviceID, string(deviceKeys)); err != nil {
					return err
				}
				changedAt = next()
				if err := markChanged(ctx, q, userID, changedAt); err != nil {
					return err
				}
			}
		}
		for _, k := range otks {
			alg, _, _ := strings.Cut(k.KeyID, ":")
			var old string
			err := q.QueryRow(ctx, `SELECT key_json FROM one_time_keys WHERE user_id = $1 AND device_id = $2 AND algorithm = $3 AND key_id = $4`,
				userID, deviceID, alg, k.KeyID).Scan(&old)
			switch {
			case err == nil:
				if old != string(k.JSON) {
					return errExists
				}
				continue
			case !s.db.IsNoRows(err):
				return err
			}
			if _, err := q.Exec(ctx, `INSERT INTO one_time_keys (user_id, device_id, algorithm, key_id, key_json) VALUES ($1, $2, $3, $4, $5)`,
				userID, deviceID, alg, k.KeyID, string(k.JSON)); err != nil {
				return err
			}
		}
		for _, k := range fallbacks {
			alg, _, _ := strings.Cut(k.KeyID, ":")
			if _, err := q.Exec(ctx, `INSERT INTO fallback_keys (user_id, device_id, algorithm, key_id, key_json, used) VALUES ($1, $2, $3, $4, $5, $6)
				ON CONFLICT (user_id, device_id, algorithm) DO UPDATE SET key_id = excluded.key_id, key_json = excluded.key_json, used = excluded.used`,
				userID, deviceID, alg, k.KeyID, string(k.JSON), false); err != nil {
				return err
			}
		}
		return nil
	}, nil)
	s.keyCounts.changed(userID)
	if err != nil {
		return 0, err
	}
	if changedAt > 0 {
		s.noteKeysPos(changedAt)
	}
	return changedAt, nil
}

func (s *Store) queryKeyJSON(ctx context.Context, q string, args ...any) ([]store.KeyJSON, error) {
	rows, err := s.db.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.KeyJSON
	for rows.Next() {
		var k store.KeyJSON
		var js string
		if err := rows.Scan(&k.UserID, &k.DeviceID, &k.KeyID, &js); err != nil {
			return nil, err
		}
		k.JSON = []byte(js)
		out = append(out, k)
	}
	return out, rows.Err()
}

func (s *Store) DeviceKeys(ctx context.Context, userIDs []string) ([]store.KeyJSON, error) {
	var out []store.KeyJSON
	err := chunked(userIDs, func(part []any, in string) error {
		rows, err := s.db.Query(ctx, `SELECT k.user_id, k.device_id, COALESCE(d.display_name, ''), k.key_json FROM device_keys k
			LEFT JOIN devices d ON d.user_id = k.user_id AND d.device_id = k.device_id
			WHERE k.user_id IN (`+in+`) ORDER BY k.user_id, k.device_id`, part...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var k store.KeyJSON
			var js string
			if err := rows.Scan(&k.UserID, &k.DeviceID, &k.DisplayName, &js); err != nil {
				return err
			}
			k.JSON = []byte(js)
			out = append(out, k)
		}
		return rows.Err()
	})
	return out, err
}

func (s *Store) oneTimeKeyCounts(ctx context.Context, userID, deviceID string) (map[string]int, error) {
	rows, err := s.db.Query(ctx, `SELECT algorithm, COUNT(*) FROM one_time_keys WHERE user_id = $1 AND device_id = $2 GROUP BY algorithm`, userID, deviceID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var alg string
		var n int
		if err := rows.Scan(&alg, &n); err != nil {
			return nil, err
		}
		out[alg] = n
	}
	return out, rows.Err()
}

func (s *Store) unusedFallbackKeyTypes(ctx context.Context, userID, deviceID string) ([]string, error) {
	rows, err := s.db.Query(ctx, `SELECT algorithm FROM fallback_keys WHERE user_id = $1 AND device_id = $2 AND used = $3 ORDER BY algorithm`, userID, deviceID, false)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var alg string
		if err := rows.Scan(&alg); err != nil {
			return nil, err
		}
		out = append(out, alg)
	}
	return out, rows.Err()
}

func (s *Store) ClaimKeys(ctx context.Context, reqs []store.ClaimRequest) ([]store.KeyJSON, error) {
	var out []store.KeyJSON
	err := s.db.Tx(ctx, func(q Querier) error {
		out = out[:0]
		for _, r := range reqs {
			var keyID, js string
			// The DELETE decides who gets the key: of two transactions
			// picking the same row, only the one whose DELETE removes it
			// gets it back; the other finds no row, and tries again if
			// keys are left. Each lost try means another claimer took a
			// key, so this ends.
			for {
				err := q.QueryRow(ctx, `DELETE FROM one_time_keys WHERE user_id = $1 AND device_id = $2 AND algorithm = $3 AND key_id = (
						SELECT key_id FROM one_time_keys WHERE user_id = $1 AND device_id = $2 AND algorithm = $3 ORDER BY seq LIMIT 1)
					RETURNING key_id, key_json`, r.UserID, r.DeviceID, r.Algorithm).Scan(&keyID, &js)
				if err == nil {
					break
				}
				if !s.db.IsNoRows(err) {
					return err
				}
				keyID = ""
				var left int
				if err := q.QueryRow(ctx, `SELECT COUNT(*) FROM (SELECT 1 FROM one_time_keys WHERE user_id = $1 AND device_id = $2 AND algorithm = $3 LIMIT 1) AS t`,
					r.UserID, r.DeviceID, r.Algorithm).Scan(&left); err != nil {
					return err
				}
				if left == 0 {
					break
				}
			}
			if keyID == "" {
				err := q.QueryRow(ctx, `SELECT key_id, key_json FROM fallback_keys WHERE user_id = $1 AND device_id = $2 AND algorithm = $3`,
					r.UserID, r.DeviceID, r.Algorithm).Scan(&keyID, &js)
				if s.db.IsNoRows(err) {
					continue
				}
				if err != nil {
					return err
				}
				if _, err := q.Exec(ctx, `UPDATE fallback_keys SET used = $4 WHERE user_id = $1 AND device_id = $2 AND algorithm = $3`,
					r.UserID, r.DeviceID, r.Algorithm, true); err != nil {
					return err
				}
			}
			out = append(out, store.KeyJSON{UserID: r.UserID, DeviceID: r.DeviceID, KeyID: keyID, JSON: []byte(js)})
		}
		return nil
	})
	users := make([]string, 0, len(reqs))
	for _, r := range reqs {
		users = append(users, r.UserID)
	}
	s.keyCounts.changed(users...)
	return out, s.mapErr(err)
}

func (s *Store) PutCrossSigningKeys(ctx context.Context, userID string, keys []store.KeyJSON) (int64, error) {
	pos, err := s.streamTx(ctx, func(q Querier, next func() int64) error {
		for _, k := range keys {
			if _, err := q.Exec(ctx, `INSERT INTO cross_signing_keys (user_id, key_type, key_json) VALUES ($1, $2, $3)
				ON CONFLICT (user_id, key_type) DO UPDATE SET key_json = excluded.key_json`, userID, k.KeyID, string(k.JSON)); err != nil {
				return err
			}
		}
		return markChanged(ctx, q, userID, next())
	}, nil)
	if err == nil {
		s.noteKeysPos(pos)
	}
	return pos, err
}

func (s *Store) CrossSigningKeys(ctx context.Context, userIDs []string) ([]store.KeyJSON, error) {
	var out []store.KeyJSON
	err := chunked(userIDs, func(part []any, in string) error {
		got, err := s.queryKeyJSON(ctx, `SELECT user_id, '', key_type, key_json FROM cross_signing_keys WHERE user_id IN (`+in+`) ORDER BY user_id, key_type`, part...)
		out = append(out, got...)
		return err
	})
	return out, err
}

func (s *Store) PutKeySignatures(ctx context.Context, sigs []store.KeySignature) (int64, error) {
	pos, err := s.streamTx(ctx, func(q Querier, next func() int64) error {
		users := map[string]bool{}
		for _, g := range sigs {
			if _, err := q.Exec(ctx, `INSERT INTO key_signatures (target_user, target_key, signer_user, signer_key_id, signature) VALUES ($1, $2, $3, $4, $5)
				ON CONFLICT (target_user, target_key, signer_user, signer_key_id) DO UPDATE SET signature = excluded.signature`,
				g.TargetUser, g.TargetKey, g.SignerUser, g.SignerKeyID, g.Signature); err != nil {
				return err
			}
			users[g.TargetUser] = true
		}
		list := make([]string, 0, len(users))
		for u := range users {
			list = append(list, u)
		}
		sort.Strings(list)
		p := next()
		for _, u := range list {
			if err := markChanged(ctx, q, u, p); err != nil {
				return err
			}
		}
		return nil
	}, nil)
	if err == nil {
		s.noteKeysPos(pos)
	}
	return pos, err
}

func (s *Store) KeySignatures(ctx context.Context, targetUsers []string) ([]store.KeySignature, error) {
	var out []store.KeySignature
	err := chunked(targetUsers, func(part []any, in string) error {
		rows, err := s.db.Query(ctx, `SELECT target_user, target_key, signer_user, signer_key_id, signature FROM key_signatures
			WHERE target_user IN (`+in+`) ORDER BY target_user, target_key, signer_user, signer_key_id`, part...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var g store.KeySignature
			if err := rows.Scan(&g.TargetUser, &g.TargetKey, &g.SignerUser, &g.SignerKeyID, &g.Signature); err != nil {
				return err
			}
			out = append(out, g)
		}
		return rows.Err()
	})
	return out, err
}

func (s *Store) MarkDeviceListChanged(ctx context.Context, userID string) (int64, error) {
	pos, err := s.streamTx(ctx, func(q Querier, next func() int64) error {
		return markChanged(ctx, q, userID, next())
	}, nil)
	if err == nil {
		s.noteKeysPos(pos)
	}
	return pos, err
}

func (s *Store) DeviceListChanges(ctx context.Context, since, to int64) ([]string, error) {
	if since >= to || since >= s.keysPos.Load() {
		return nil, nil
	}
	rows, err := s.db.Query(ctx, `SELECT user_id FROM device_list_changes WHERE stream_pos > $1 AND stream_pos <= $2 ORDER BY user_id`, since, to)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var u string
		if err := rows.Scan(&u); err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// queuedDevices is the set of devices that may have queued to-device
// messages: a device is added after each commit that queues for it and
// removed only by an ack that finds its queue empty, under the same lock,
// so a message committed during the ack re-adds it.
type queuedDevices struct {
	mu  sync.Mutex
	set map[[2]string]struct{}
}

func (q *queuedDevices) add(msgs []store.ToDeviceMessage) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.set == nil {
		q.set = map[[2]string]struct{}{}
	}
	for _, m := range msgs {
		q.set[[2]string{m.UserID, m.DeviceID}] = struct{}{}
	}
}

func (q *queuedDevices) has(userID, deviceID string) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	_, ok := q.set[[2]string{userID, deviceID}]
	return ok
}

func (s *Store) loadQueued(ctx context.Context) error {
	rows, err := s.db.Query(ctx, `SELECT DISTINCT user_id, device_id FROM to_device`)
	if err != nil {
		return err
	}
	defer rows.Close()
	var msgs []store.ToDeviceMessage
	for rows.Next() {
		var m store.ToDeviceMessage
		if err := rows.Scan(&m.UserID, &m.DeviceID); err != nil {
			return err
		}
		msgs = append(msgs, m)
	}
	s.queued.add(msgs)
	return rows.Err()
}

func (s *Store) AddToDevice(ctx context.Context, msgs []store.ToDeviceMessage, txn store.ToDeviceTxn, maxQueue int) (int64, error) {
	return s.streamTx(ctx, func(q Querier, next func() int64) error {
		if txn.TxnID != "" {
			_, err := q.Exec(ctx, `INSERT INTO to_device_txns (user_id, device_id, txn_id, body_hash, created_ts) VALUES ($1, $2, $3, $4, $5)`,
				txn.UserID, txn.DeviceID, txn.TxnID, txn.BodyHash, txn.TS)
			if err != nil {
				return err // a unique violation maps to ErrExists
			}
		}
		if maxQueue > 0 {
			if err := checkQueues(ctx, q, msgs, maxQueue); err != nil {
				return err
			}
		}
		pos := next()
		for i := range msgs {
			msgs[i].Pos = pos
		}
		// Many rows per statement: a fan-out to a big room is thousands.
		for part := msgs; len(part) > 0; {
			n := min(len(part), 100)
			var sb strings.Builder
			args := make([]any, 0, 6*n)
			sb.WriteString(`INSERT INTO to_device (user_id, device_id, stream_pos, sender, type, content) VALUES `)
			for i, m := range part[:n] {
				if i > 0 {
					sb.WriteString(", ")
				}
				fmt.Fprintf(&sb, "($%d, $%d, $%d, $%d, $%d, $%d)", 6*i+1, 6*i+2, 6*i+3, 6*i+4, 6*i+5, 6*i+6)
				args = append(args, m.UserID, m.DeviceID, pos, m.Sender, m.Type, string(m.Content))
			}
			if _, err := q.Exec(ctx, sb.String(), args...); err != nil {
				return err
			}
			part = part[n:]
		}
		// The queue's rows go once delivered: the head row keeps the
		// position for loadPos across a restart.
		_, err := q.Exec(ctx, `INSERT INTO stream_head (id, stream_pos) VALUES (1, $1)
			ON CONFLICT (id) DO UPDATE SET stream_pos = excluded.stream_pos`, pos)
		return err
	}, func() { s.queued.add(msgs) })
}

// checkQueues is ErrQueueFull when a target device already holds maxQueue
// messages: one grouped count per batch of recipients.
func checkQueues(ctx context.Context, q Querier, msgs []store.ToDeviceMessage, maxQueue int) error {
	target := map[[2]string]bool{}
	var users []string
	seen := map[string]bool{}
	for _, m := range msgs {
		target[[2]string{m.UserID, m.DeviceID}] = true
		if !seen[m.UserID] {
			seen[m.UserID] = true
			users = append(users, m.UserID)
		}
	}
	return chunked(users, func(part []any, in string) error {
		rows, err := q.Query(ctx, `SELECT user_id, device_id, COUNT(*) FROM to_device WHERE user_id IN (`+in+`) GROUP BY user_id, device_id`, part...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var u, d string
			var n int
			if err := rows.Scan(&u, &d, &n); err != nil {
				return err
			}
			if n >= maxQueue && target[[2]string{u, d}] {
				return store.ErrQueueFull
			}
		}
		return rows.Err()
	})
}

// DeviceIDs lists the devices of each of the users.
func (s *Store) DeviceIDs(ctx context.Context, userIDs []string) (map[string][]string, error) {
	out := map[string][]string{}
	err := chunked(userIDs, func(part []any, in string) error {
		rows, err := s.db.Query(ctx, `SELECT user_id, device_id FROM devices WHERE user_id IN (`+in+`) ORDER BY user_id, device_id`, part...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var u, d string
			if err := rows.Scan(&u, &d); err != nil {
				return err
			}
			out[u] = append(out[u], d)
		}
		return rows.Err()
	})
	return out, err
}

func (s *Store) ToDeviceTxnHash(ctx context.Context, userID, deviceID, txnID string) ([]byte, error) {
	var h []byte
	err := s.db.QueryRow(ctx, `SELECT body_hash FROM to_device_txns WHERE user_id = $1 AND device_id = $2 AND txn_id = $3`, userID, deviceID, txnID).Scan(&h)
	return h, s.mapErr(err)
}

func (s *Store) ToDevice(ctx context.Context, userID, deviceID string, since, to int64, limit int) ([]store.ToDeviceMessage, error) {
	if since >= to || !s.queued.has(userID, deviceID) {
		return nil, nil
	}
	rows, err := s.db.Query(ctx, `SELECT user_id, device_id, stream_pos, sender, type, content FROM to_device
		WHERE user_id = $1 AND device_id = $2 AND stream_pos > $3 AND stream_pos <= $4 ORDER BY stream_pos LIMIT $5`,
		userID, deviceID, since, to, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.ToDeviceMessage
	for rows.Next() {
		var m store.ToDeviceMessage
		var c string
		if err := rows.Scan(&m.UserID, &m.DeviceID, &m.Pos, &m.Sender, &m.Type, &c); err != nil {
			return nil, err
		}
		m.Content = []byte(c)
		out = append(out, m)
	}
	return out, rows.Err()
}

func (s *Store) HasToDeviceUpTo(ctx context.Context, userID, deviceID string, upTo int64) (bool, error) {
	if !s.queued.has(userID, deviceID) {
		return false, nil
	}
	var n int
	err := s.db.QueryRow(ctx, `SELECT COUNT(*) FROM (SELECT 1 FROM to_device WHERE user_id = $1 AND device_id = $2 AND stream_pos <= $3 LIMIT 1) AS t`,
		userID, deviceID, upTo).Scan(&n)
	return n > 0, s.mapErr(err)
}

func (s *Store) AckToDevice(ctx context.Context, userID, deviceID string, upTo int64) (int64, error) {
	var n int64
	err := s.db.Tx(ctx, func(q Querier) error {
		var err error
		n, err = q.Exec(ctx, `DELETE FROM to_device WHERE user_id = $1 AND device_id = $2 AND stream_pos <= $3`, userID, deviceID, upTo)
		return err
	})
	if err != nil {
		return 0, s.mapErr(err)
	}
	// Forget the device if its queue is now empty; see queuedDevices.
	s.queued.mu.Lock()
	defer s.queued.mu.Unlock()
	var left int
	if err := s.db.QueryRow(ctx, `SELECT COUNT(*) FROM (SELECT 1 FROM to_device WHERE user_id = $1 AND device_id = $2 LIMIT 1) AS t`, userID, deviceID).Scan(&left); err != nil {
		return n, nil // kept in the set: only costs a read later
	}
	if left == 0 {
		delete(s.queued.set, [2]string{userID, deviceID})
	}
	return n, nil
}

func (s *Store) ExpireToDeviceTxns(ctx context.Context, beforeTS int64) error {
	return s.mapErr(s.db.Tx(ctx, func(q Querier) error {
		_, err := q.Exec(ctx, `DELETE FROM to_device_txns WHERE created_ts < $1`, beforeTS)
		return err
	}))
}

// deleteDeviceData deletes what a device leaves behind in the keys tables.
func deleteDeviceData(ctx context.Context, q Querier, userID, deviceID string) error {
	for _, t := range []string{"device_keys", "one_time_keys", "fallback_keys", "to_device", "to_device_txns"} {
		if _, err := q.Exec(ctx, `DELETE FROM `+t+` WHERE user_id = $1 AND device_id = $2`, userID, deviceID); err != nil {
			return err
		}
	}
	if _, err := q.Exec(ctx, `DELETE FROM key_signatures WHERE target_user = $1 AND target_key = $2`, userID, deviceID); err != nil {
		return err
	}
	_, err := q.Exec(ctx, `DELETE FROM dehydrated_devices WHERE user_id = $1 AND device_id = $2`, userID, deviceID)
	return err
}

func (s *Store) PutDehydratedDevice(ctx context.Context, d store.DehydratedDevice) (string, error) {
	var old string
	err := s.db.Tx(ctx, func(q Querier) error {
		old = ""
		var n int
		if err := q.QueryRow(ctx, `SELECT COUNT(*) FROM devices WHERE user_id = $1 AND device_id = $2`, d.UserID, d.DeviceID).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return errNotFound
		}
		err := q.QueryRow(ctx, `SELECT device_id FROM dehydrated_devices WHERE user_id = $1`, d.UserID).Scan(&old)
		if err != nil && !s.db.IsNoRows(err) {
			return err
		}
		if old != "" && old != d.DeviceID {
			if err := deleteDeviceData(ctx, q, d.UserID, old); err != nil {
				return err
			}
			if _, err := q.Exec(ctx, `DELETE FROM devices WHERE user_id = $1 AND device_id = $2`, d.UserID, old); err != nil {
				return err
			}
		} else {
			old = ""
		}
		_, err = q.Exec(ctx, `INSERT INTO dehydrated_devices (user_id, device_id, device_data) VALUES ($1, $2, $3)
			ON CONFLICT (user_id) DO UPDATE SET device_id = excluded.device_id, device_data = excluded.device_data`,
			d.UserID, d.DeviceID, string(d.DeviceData))
		return err
	})
	s.keyCounts.changed(d.UserID)
	return old, s.mapErr(err)
}

func (s *Store) DehydratedDevice(ctx context.Context, userID string) (store.DehydratedDevice, error) {
	d := store.DehydratedDevice{UserID: userID}
	var data string
	err := s.db.QueryRow(ctx, `SELECT device_id, device_data FROM dehydrated_devices WHERE user_id = $1`, userID).Scan(&d.DeviceID, &data)
	d.DeviceData = []byte(data)
	return d, s.mapErr(err)
}

func (s *Store) DeleteDehydratedDevice(ctx context.Context, userID string) (string, error) {
	var id string
	err := s.db.Tx(ctx, func(q Querier) error {
		if err := q.QueryRow(ctx, `SELECT device_id FROM dehydrated_devices WHERE user_id = $1`, userID).Scan(&id); err != nil {
			return err
		}
		if err := deleteDeviceData(ctx, q, userID, id); err != nil {
			return err
		}
		_, err := q.Exec(ctx, `DELETE FROM devices WHERE user_id = $1 AND device_id = $2`, userID, id)
		return err
	})
	s.keyCounts.changed(userID)
	return id, s.mapErr(err)
}

// deleteUserKeys deletes every key and queued message of a deactivated
// user: their devices are gone, and so are their cross-signing keys.
func deleteUserKeys(ctx context.Context, q Querier, userID string) error {
	for _, t := range []string{"device_keys", "one_time_keys", "fallback_keys", "to_device", "to_device_txns", "cross_signing_keys", "dehydrated_devices"} {
		if _, err := q.Exec(ctx, `DELETE FROM `+t+` WHERE user_id = $1`, userID); err != nil {
			return err
		}
	}
	_, err := q.Exec(ctx, `DELETE FROM key_signatures WHERE target_user = $1 OR signer_user = $1`, userID)
	return err
}
