package media

import (
	"context"
	"errors"
	"time"
)

// purgeBatch is how many media IDs one purge transaction deletes.
const purgeBatch = 200

// Purge deletes media that no stored event references and that is older
// than olderThan, and reservations of asynchronous uploads that expired.
// Content shared with media that stays is kept. It returns the number of
// media IDs deleted and the bytes of content and thumbnails freed.
func (r *Repo) Purge(ctx context.Context, olderThan time.Duration) (n int, bytes int64, err error) {
	if olderThan < 0 {
		return 0, 0, errors.New("media: purge age must not be negative")
	}
	now := r.now()
	before := now.Add(-olderThan).UnixMilli()
	remove := func(sha []byte) error {
		k, ok := keyOf(sha)
		if !ok {
			return nil
		}
		// A file that cannot be removed is wasted space, not lost data:
		// the purge goes on rather than keeping rows of deleted media.
		if err := r.blobs.Delete(ctx, k); err != nil {
			r.log.Warn("purge: cannot remove blob", "sha256", k.String(), "err", err)
		}
		return nil
	}
	for {
		res, err := r.p.Store.PurgeMedia(ctx, before, now.UnixMilli(), purgeBatch, remove)
		if err != nil {
			return n, bytes, err
		}
		n += res.Media
		bytes += res.Bytes
		if res.Media < purgeBatch {
			r.log.Info("media purged", "media", n, "bytes", bytes, "older_than", olderThan)
			return n, bytes, nil
		}
	}
}

// MarkReferenced records that a stored event references these mxc://
// URIs, so that Purge keeps them. URIs of other servers and malformed ones
// are ignored. The rooms layer calls it with ReferencedURIs of each event
// it stores.
func (r *Repo) MarkReferenced(ctx context.Context, mxcURIs []string) error {
	var ids []string
	for _, u := range mxcURIs {
		if server, id, ok := parseMXC(u); ok && server == r.p.ServerName {
			ids = append(ids, id)
		}
	}
	return r.p.Store.MarkMediaReferenced(ctx, ids)
}

// ReferencedURIs returns the mxc:// URIs in an event's content: url,
// info.thumbnail_url, file.url and info.thumbnail_file.url (encrypted
// attachments) of m.image, m.file, m.audio, m.video and m.sticker, and the
// avatar_url of m.room.avatar and m.room.member.
func ReferencedURIs(content map[string]any) []string {
	var out []string
	add := func(v any) {
		if s, ok := v.(string); ok {
			if _, _, ok := parseMXC(s); ok {
				out = append(out, s)
			}
		}
	}
	obj := func(v any) map[string]any { m, _ := v.(map[string]any); return m }
	add(content["url"])
	add(content["avatar_url"])
	add(obj(content["file"])["url"])
	if info := obj(content["info"]); info != nil {
		add(info["thumbnail_url"])
		add(obj(info["thumbnail_file"])["url"])
	}
	return out
}
