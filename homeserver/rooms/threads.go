package rooms

import (
	"context"

	"github.com/salonhq/salon/homeserver/events"
	"github.com/salonhq/salon/homeserver/store"
)

// ThreadSummaryCap bounds the replies a thread summary counts.
const ThreadSummaryCap = 1000

// Thread is a thread root with its summary as one user may see it
// (https://spec.matrix.org/latest/client-server-api/#server-side-aggregation-of-mthread-relationships).
type Thread struct {
	Root store.EventRow
	// Latest is the newest reply the user may read, Count how many
	// they may read (up to ThreadSummaryCap), Participated whether they
	// sent the root or a reply.
	Latest       store.EventRow
	Count        int
	Participated bool
}

// ThreadSummary is the summary of the thread rooted at root, or ok false
// when the user can read no reply to it.
func (s *Service) ThreadSummary(ctx context.Context, rd *Reader, root store.EventRow) (Thread, bool, error) {
	rows, err := s.p.Store.Relations(ctx, root.RoomID, root.EventID, "m.thread", "", 0, ThreadSummaryCap)
	if err != nil {
		return Thread{}, false, err
	}
	th := Thread{Root: root, Participated: root.Sender == rd.UserID}
	for _, row := range rows { // newest first
		if row.RedactedBy != "" || !rd.CanRead(row) {
			continue
		}
		if th.Count == 0 {
			th.Latest = row
		}
		th.Count++
		if row.Sender == rd.UserID {
			th.Participated = true
		}
	}
	return th, th.Count > 0, nil
}

// Threads lists the threads of a room the user may read, by newest reply,
// newest first, those whose newest reply is before `before` (0: all),
// with participated only those the user took part in. next is where the
// following page starts (0: none).
func (s *Service) Threads(ctx context.Context, userID, roomID string, participated bool, before int64, limit int) (out []Thread, next int64, v events.RoomVersion, err error) {
	rd, v, err := s.reader(ctx, roomID, userID)
	if err != nil {
		return nil, 0, "", err
	}
	participant := ""
	if participated {
		participant = userID
	}
	const scanCap = 10 // batches of unreadable threads scanned before giving up
	for scans := 0; scans < scanCap; scans++ {
		roots, err := s.p.Store.ThreadRoots(ctx, roomID, participant, before, limit)
		if err != nil {
			return nil, 0, "", err
		}
		for _, r := range roots {
			before = r.LatestPos
			root, err := s.p.Store.Event(ctx, r.RootID)
			if err != nil || root.RoomID != roomID || !rd.CanRead(root) {
				continue // not here, or not readable
			}
			th, ok, err := s.ThreadSummary(ctx, rd, root)
			if err != nil {
				return nil, 0, "", err
			}
			if !ok {
				continue
			}
			out = append(out, th)
			if len(out) == limit {
				return out, before, v, nil
			}
		}
		if len(roots) < limit {
			return out, 0, v, nil
		}
	}
	return out, before, v, nil
}
