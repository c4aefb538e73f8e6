package sqlstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/salonhq/salon/homeserver/store"
)

var _ store.Media = (*Store)(nil)

const mediaCols = `media_id, user_id, sha256, size, content_type, upload_name, created_ts, uploaded_ts, expires_ts, referenced, restricted`

func scanMedia(r Row) (store.MediaMeta, error) {
	var m store.MediaMeta
	err := r.Scan(&m.MediaID, &m.UserID, &m.SHA256, &m.Size, &m.ContentType, &m.UploadName,
		&m.CreatedTS, &m.UploadedTS, &m.ExpiresTS, &m.Referenced, &m.Restricted)
	return m, err
}

func (s *Store) ReserveMedia(ctx context.Context, m store.MediaMeta, maxPending int) error {
	return s.mapErr(s.db.Tx(ctx, func(q Querier) error {
		if maxPending > 0 {
			var n int
			if err := q.QueryRow(ctx, `SELECT COUNT(*) FROM media WHERE user_id = $1 AND uploaded_ts = 0 AND expires_ts > $2`,
				m.UserID, m.CreatedTS).Scan(&n); err != nil {
				return err
			}
			if n >= maxPending {
				return store.ErrQuotaExceeded
			}
		}
		_, err := q.Exec(ctx, `INSERT INTO media (media_id, user_id, content_type, upload_name, created_ts, expires_ts, restricted)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`, m.MediaID, m.UserID, m.ContentType, m.UploadName, m.CreatedTS, m.ExpiresTS, m.Restricted)
		return err
	}))
}

func (s *Store) CommitMedia(ctx context.Context, m store.MediaMeta, quota int64, place func() error) error {
	if len(m.SHA256) == 0 || m.UploadedTS == 0 {
		return errors.New("sqlstore: CommitMedia needs SHA256 and UploadedTS")
	}
	return s.mapErr(s.db.Tx(ctx, func(q Querier) error {
		var owner string
		var uploaded, expires int64
		err := q.QueryRow(ctx, `SELECT user_id, uploaded_ts, expires_ts FROM media WHERE media_id = $1`, m.MediaID).
			Scan(&owner, &uploaded, &expires)
		reserved := err == nil
		switch {
		case err != nil && !s.db.IsNoRows(err):
			return err
		case reserved && uploaded != 0:
			return store.ErrExists
		case reserved && (owner != m.UserID || expires < m.UploadedTS):
			return store.ErrNotFound
		}
		if quota > 0 {
			used, err := mediaUsage(ctx, q, m.UserID)
			if err != nil {
				return err
			}
			if used+m.Size > quota {
				return store.ErrQuotaExceeded
			}
		}
		// The upsert takes the blob's row lock (PostgreSQL) or the write
		// lock (SQLite): a purge of the same content waits for us, or we
		// for it.
		if err := upsertBlob(ctx, q, m.SHA256, m.Size, m.UploadedTS); err != nil {
			return err
		}
		if reserved {
			n, err := q.Exec(ctx, `UPDATE media SET sha256 = $2, size = $3, content_type = $4, upload_name = $5,
				uploaded_ts = $6, expires_ts = 0, restricted = (restricted OR $7) WHERE media_id = $1 AND uploaded_ts = 0`,
				m.MediaID, m.SHA256, m.Size, m.ContentType, m.UploadName, m.UploadedTS, m.Restricted)
			if err != nil {
				return err
			}
			if n == 0 {
				return store.ErrExists // another upload to the same ID won the race
			}
		} else {
			created := m.CreatedTS
			if created == 0 {
				created = m.UploadedTS
			}
			if _, err := q.Exec(ctx, `INSERT INTO media (`+mediaCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, $9, $10)`,
				m.MediaID, m.UserID, m.SHA256, m.Size, m.ContentType, m.UploadName, created, m.UploadedTS, m.Referenced, m.Restricted); err != nil {
				return err
			}
		}
		return place()
	}))
}

func upsertBlob(ctx context.Context, q Querier, sha []byte, size, ts int64) error {
	_, err := q.Exec(ctx, `INSERT INTO media_blobs (sha256, size, created_ts) VALUES ($1, $2, $3)
		ON CONFLICT (sha256) DO UPDATE SET size = excluded.size`, sha, size, ts)
	return err
}

func mediaUsage(ctx context.Context, q Querier, userID string) (int64, error) {
	var n int64
	err := q.QueryRow(ctx, `SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM media WHERE user_id = $1`, userID).Scan(&n)
	return n, err
}

func (s *Store) MediaMeta(ctx context.Context, mediaID string) (store.MediaMeta, error) {
	m, err := scanMedia(s.db.QueryRow(ctx, `SELECT `+mediaCols+` FROM media WHERE media_id = $1`, mediaID))
	return m, s.mapErr(err)
}

func (s *Store) MediaUsage(ctx context.Context, userID string) (int64, error) {
	n, err := mediaUsage(ctx, s.db, userID)
	return n, s.mapErr(err)
}

const thumbCols = `source_sha256, width, height, method, content_type, sha256, size, created_ts`

func (s *Store) MediaThumbnails(ctx context.Context, sourceSHA256 []byte) ([]store.MediaThumbnail, error) {
	rows, err := s.db.Query(ctx, `SELECT `+thumbCols+` FROM media_thumbnails WHERE source_sha256 = $1
		ORDER BY width, height, method, content_type`, sourceSHA256)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.MediaThumbnail
	for rows.Next() {
		var t store.MediaThumbnail
		if err := rows.Scan(&t.SourceSHA256, &t.Width, &t.Height, &t.Method, &t.ContentType, &t.SHA256, &t.Size, &t.CreatedTS); err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

func (s *Store) AddMediaThumbnail(ctx context.Context, t store.MediaThumbnail, place func() error) error {
	err := s.db.Tx(ctx, func(q Querier) error {
		var have []byte
		err := q.QueryRow(ctx, `SELECT sha256 FROM media_thumbnails
			WHERE source_sha256 = $1 AND width = $2 AND height = $3 AND method = $4 AND content_type = $5`,
			t.SourceSHA256, t.Width, t.Height, t.Method, t.ContentType).Scan(&have)
		if err == nil {
			return nil // made by someone else meanwhile
		}
		if !s.db.IsNoRows(err) {
			return err
		}
		// Lock the source blob: a purge that removes it waits, or has
		// removed it already.
		n, err := q.Exec(ctx, `UPDATE media_blobs SET size = size WHERE sha256 = $1`, t.SourceSHA256)
		if err != nil {
			return err
		}
		if n == 0 {
			return store.ErrNotFound
		}
		if err := upsertBlob(ctx, q, t.SHA256, t.Size, t.CreatedTS); err != nil {
			return err
		}
		if _, err := q.Exec(ctx, `INSERT INTO media_thumbnails (`+thumbCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			t.SourceSHA256, t.Width, t.Height, t.Method, t.ContentType, t.SHA256, t.Size, t.CreatedTS); err != nil {
			return err
		}
		return place()
	})
	if s.db.IsUniqueViolation(err) {
		return nil // a concurrent writer added the same thumbnail
	}
	return s.mapErr(err)
}

func (s *Store) AddMediaRefs(ctx context.Context, refs []store.MediaRef) error {
	if len(refs) == 0 {
		return nil
	}
	return s.mapErr(s.db.Tx(ctx, func(q Querier) error {
		for _, r := range refs {
			if _, err := q.Exec(ctx, `INSERT INTO media_refs (mxc, room_id, event_id) VALUES ($1, $2, $3)
				ON CONFLICT (mxc, event_id) DO NOTHING`, r.MXC, r.RoomID, r.EventID); err != nil {
				return err
			}
		}
		return nil
	}))
}

func (s *Store) MediaRefs(ctx context.Context, mxc string, limit int) ([]store.MediaRef, error) {
	rows, err := s.db.Query(ctx, `SELECT mxc, room_id, event_id FROM media_refs WHERE mxc = $1
		ORDER BY room_id, event_id LIMIT $2`, mxc, limit)
	if err != nil {
		return nil, s.mapErr(err)
	}
	defer rows.Close()
	var out []store.MediaRef
	for rows.Next() {
		var r store.MediaRef
		if err := rows.Scan(&r.MXC, &r.RoomID, &r.EventID); err != nil {
			return nil, s.mapErr(err)
		}
		out = append(out, r)
	}
	return out, s.mapErr(rows.Err())
}

func (s *Store) MarkMediaReferenced(ctx context.Context, mediaIDs []string) error {
	if len(mediaIDs) == 0 {
		return nil
	}
	return s.mapErr(s.db.Tx(ctx, func(q Querier) error {
		for _, id := range mediaIDs {
			if _, err := q.Exec(ctx, `UPDATE media SET referenced = $2 WHERE media_id = $1`, id, true); err != nil {
				return err
			}
		}
		return nil
	}))
}

func (s *Store) PurgeMedia(ctx context.Context, beforeTS, nowTS int64, limit int, remove func(sha256 []byte) error) (store.MediaPurge, error) {
	var res store.MediaPurge
	err := s.db.Tx(ctx, func(q Querier) error {
		res = store.MediaPurge{}
		rows, err := q.Query(ctx, `SELECT media_id, sha256 FROM media
			WHERE (referenced = $1 AND created_ts < $2) OR (uploaded_ts = 0 AND expires_ts < $3)
			ORDER BY created_ts LIMIT $4`, false, beforeTS, nowTS, limit)
		if err != nil {
			return err
		}
		var ids []string
		var candidates [][]byte
		seen := map[string]bool{}
		for rows.Next() {
			var id string
			var sha []byte
			if err := rows.Scan(&id, &sha); err != nil {
				rows.Close()
				return err
			}
			ids = append(ids, id)
			if len(sha) > 0 && !seen[string(sha)] {
				seen[string(sha)] = true
				candidates = append(candidates, sha)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, id := range ids {
			if _, err := q.Exec(ctx, `DELETE FROM media WHERE media_id = $1`, id); err != nil {
				return err
			}
		}
		res.Media = len(ids)
		// Thumbnails of a removed blob become candidates in turn.
		for len(candidates) > 0 {
			sha := candidates[0]
			candidates = candidates[1:]
			n, err := q.Exec(ctx, `UPDATE media_blobs SET size = size WHERE sha256 = $1`, sha)
			if err != nil {
				return err
			}
			if n == 0 {
				continue
			}
			var used bool
			if err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM media WHERE sha256 = $1)
				OR EXISTS (SELECT 1 FROM media_thumbnails WHERE sha256 = $1)`, sha).Scan(&used); err != nil {
				return err
			}
			if used {
				continue
			}
			thumbs, err := q.Query(ctx, `SELECT sha256 FROM media_thumbnails WHERE source_sha256 = $1`, sha)
			if err != nil {
				return err
			}
			for thumbs.Next() {
				var t []byte
				if err := thumbs.Scan(&t); err != nil {
					thumbs.Close()
					return err
				}
				// No dedup here: a blob skipped earlier because this
				// thumbnail used it must be looked at again.
				candidates = append(candidates, t)
			}
			thumbs.Close()
			if err := thumbs.Err(); err != nil {
				return err
			}
			if _, err := q.Exec(ctx, `DELETE FROM media_thumbnails WHERE source_sha256 = $1`, sha); err != nil {
				return err
			}
			var size int64
			if err := q.QueryRow(ctx, `DELETE FROM media_blobs WHERE sha256 = $1 RETURNING size`, sha).Scan(&size); err != nil {
				return err
			}
			if err := remove(sha); err != nil {
				return fmt.Errorf("remove blob %x: %w", sha, err)
			}
			res.Blobs++
			res.Bytes += size
		}
		return nil
	})
	if err != nil {
		return store.MediaPurge{}, s.mapErr(err)
	}
	return res, nil
}
