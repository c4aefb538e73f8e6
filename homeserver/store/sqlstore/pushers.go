package sqlstore

import (
	"context"
	"strings"

	"github.com/salonhq/salon/homeserver/store"
)

var _ store.Pushers = (*Store)(nil)

const pusherCols = `user_id, kind, app_id, pushkey, app_display_name, device_display_name, profile_tag, lang, data, device_id, created_ts`

func (s *Store) SetPusher(ctx context.Context, p store.Pusher, keepOthers bool) error {
	return s.mapErr(s.db.Tx(ctx, func(q Querier) error {
		if !keepOthers {
			if _, err := q.Exec(ctx, `DELETE FROM pushers WHERE app_id = $1 AND pushkey = $2 AND user_id <> $3`, p.AppID, p.PushKey, p.UserID); err != nil {
				return err
			}
		}
		_, err := q.Exec(ctx, `INSERT INTO pushers (`+pusherCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
			ON CONFLICT (user_id, app_id, pushkey) DO UPDATE SET kind = excluded.kind, app_display_name = excluded.app_display_name,
				device_display_name = excluded.device_display_name, profile_tag = excluded.profile_tag, lang = excluded.lang,
				data = excluded.data, device_id = excluded.device_id`,
			p.UserID, p.Kind, p.AppID, p.PushKey, p.AppDisplayName, p.DeviceDisplayName, p.ProfileTag, p.Lang, string(p.Data), p.DeviceID, p.CreatedTS)
		return err
	}))
}

func (s *Store) DeletePusher(ctx context.Context, userID, appID, pushKey string) error {
	return s.mapErr(s.db.Tx(ctx, func(q Querier) error {
		_, err := q.Exec(ctx, `DELETE FROM pushers WHERE user_id = $1 AND app_id = $2 AND pushkey = $3`, userID, appID, pushKey)
		return err
	}))
}

func (s *Store) Pushers(ctx context.Context, userID string) ([]store.Pusher, error) {
	return s.queryPushers(ctx, `SELECT `+pusherCols+` FROM pushers WHERE user_id = $1 ORDER BY created_ts, app_id, pushkey`, userID)
}

func (s *Store) RoomPushers(ctx context.Context, roomID, kind string) ([]store.Pusher, error) {
	return s.queryPushers(ctx, `SELECT p.`+strings.ReplaceAll(pusherCols, ", ", ", p.")+` FROM pushers p
		JOIN memberships m ON m.user_id = p.user_id AND m.room_id = $1 AND m.membership = 'join'
		WHERE p.kind = $2 ORDER BY p.user_id, p.created_ts`, roomID, kind)
}

func (s *Store) queryPushers(ctx context.Context, q string, args ...any) ([]store.Pusher, error) {
	rows, err := s.db.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Pusher
	for rows.Next() {
		var p store.Pusher
		var data string
		if err := rows.Scan(&p.UserID, &p.Kind, &p.AppID, &p.PushKey, &p.AppDisplayName, &p.DeviceDisplayName,
			&p.ProfileTag, &p.Lang, &data, &p.DeviceID, &p.CreatedTS); err != nil {
			return nil, err
		}
		p.Data = []byte(data)
		out = append(out, p)
	}
	return out, rows.Err()
}

// deleteDeviceSessions deletes the pushers and refresh tokens of a
// deleted device ("" for every device of the user), inside the
// transaction that deletes it.
func deleteDeviceSessions(ctx context.Context, q Querier, userID, deviceID string) error {
	for _, table := range []string{"pushers", "refresh_tokens"} {
		if _, err := q.Exec(ctx, `DELETE FROM `+table+` WHERE user_id = $1 AND ($2 = '' OR device_id = $2)`, userID, deviceID); err != nil {
			return err
		}
	}
	return nil
}
