package pushrules

import (
	"context"
	"errors"
	"sort"

	"github.com/salonhq/salon/homeserver/push"
	"github.com/salonhq/salon/homeserver/store"
)

// Notification is an event whose push rules said notify, for GET
// /notifications.
type Notification struct {
	Row       store.EventRow
	Actions   []push.Action
	Highlight bool
	// Read is true when the user's read receipt is at or after it.
	Read bool
}

// notificationScan bounds how many events of one room one page looks at.
const notificationScan = 300

// Notifications lists the events that notified the user, newest first,
// with position < before (0: up to now), up to limit; onlyHighlight keeps
// those that highlight. The rules are evaluated as /sync's unread counts
// evaluate them (the user's rules now, the room as it is now).
//
// Only rooms the user is joined to, and in each only the events since
// they last joined, are looked at: events the user was a member for, so
// readable whatever the room's history visibility; of a room they are
// invited to, only the invite.
//
// next is where the following page starts (0: none). A page may hold
// fewer than limit notifications and still have a next: each room is
// scanned at most notificationScan events deep per page, and a page only
// lists notifications down to where every room's scan reached.
func (s *Service) Notifications(ctx context.Context, userID string, before int64, limit int, onlyHighlight bool) (out []Notification, next int64, err error) {
	if before <= 0 {
		before = s.st.CurrentPos() + 1
	}
	mems, err := s.st.UserMemberships(ctx, userID)
	if err != nil {
		return nil, 0, err
	}
	c, err := s.get(ctx, userID)
	if err != nil {
		return nil, 0, err
	}
	var floor int64 // notifications below floor are not known yet
	for _, m := range mems {
		if m.Membership == "invite" && m.Pos < before {
			// A pending invite: the invite event itself, which the user
			// may see (m.rule.invite_for_me), and nothing else of the room.
			row, err := s.st.Event(ctx, m.EventID)
			if err != nil {
				return nil, 0, err
			}
			found, err := s.roomNotifications(ctx, c, userID, m.RoomID, []store.EventRow{row}, onlyHighlight)
			if err != nil {
				return nil, 0, err
			}
			out = append(out, found...)
			continue
		}
		if m.Membership != "join" || m.Pos >= before-1 {
			continue
		}
		rows, err := s.st.RoomEvents(ctx, m.RoomID, m.Pos, before, notificationScan, true)
		if err != nil {
			return nil, 0, err
		}
		if len(rows) == notificationScan {
			floor = max(floor, rows[len(rows)-1].Pos)
		}
		found, err := s.roomNotifications(ctx, c, userID, m.RoomID, rows, onlyHighlight)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, found...)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Row.Pos > out[j].Row.Pos })
	cut := sort.Search(len(out), func(i int) bool { return out[i].Row.Pos < floor })
	out = out[:cut]
	if len(out) > limit {
		out = out[:limit]
		return out, out[limit-1].Row.Pos, nil
	}
	return out, floor, nil
}

func (s *Service) roomNotifications(ctx context.Context, c *compiled, userID, roomID string, rows []store.EventRow, onlyHighlight bool) ([]Notification, error) {
	if len(rows) == 0 {
		return nil, nil
	}
	members, err := s.rooms.MemberCount(ctx, roomID)
	if err != nil {
		return nil, err
	}
	userPL, notifPL, err := s.rooms.PowerLevels(ctx, roomID)
	if err != nil {
		return nil, err
	}
	ec := push.EvalContext{UserID: userID, DisplayName: s.displayName(ctx, roomID, userID), MemberCount: members,
		PowerLevelOf: userPL, NotificationLevel: notifPL}
	var read int64
	for _, typ := range []string{"m.read", "m.read.private"} {
		r, err := s.st.UserReceipt(ctx, roomID, userID, typ)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if ev, err := s.st.Event(ctx, r.EventID); err == nil {
			read = max(read, ev.Pos)
		}
	}
	var out []Notification
	for _, row := range rows {
		if row.RedactedBy != "" || row.Sender == userID {
			continue
		}
		notify, highlight, actions := c.c.Evaluate(row.JSON, ec)
		if !notify || (onlyHighlight && !highlight) {
			continue
		}
		out = append(out, Notification{Row: row, Actions: actions, Highlight: highlight, Read: row.Pos <= read})
	}
	return out, nil
}

// Evaluate runs a user's push rules on one event of a room, as the
// unread counts do.
func (s *Service) Evaluate(ctx context.Context, userID string, row store.EventRow) (notify, highlight bool, actions []push.Action, err error) {
	if row.Sender == userID || row.RedactedBy != "" {
		return false, false, nil, nil
	}
	c, err := s.get(ctx, userID)
	if err != nil {
		return false, false, nil, err
	}
	members, err := s.rooms.MemberCount(ctx, row.RoomID)
	if err != nil {
		return false, false, nil, err
	}
	userPL, notifPL, err := s.rooms.PowerLevels(ctx, row.RoomID)
	if err != nil {
		return false, false, nil, err
	}
	notify, highlight, actions = c.c.Evaluate(row.JSON, push.EvalContext{UserID: userID, DisplayName: s.displayName(ctx, row.RoomID, userID),
		MemberCount: members, PowerLevelOf: userPL, NotificationLevel: notifPL})
	return notify, highlight, actions, nil
}
