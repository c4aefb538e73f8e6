package sync

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/salonhq/salon/homeserver/store"
)

// The receipts, typing and account data providers. Receipts and account
// data share the store's stream position with room events; typing has its
// own counter.

// receipts reads the receipts to send: every receipt of the rooms joined
// by this sync (fresh), and those after since in the existing rooms that
// changed. A token from before the engine read the room positions may
// predate receipts they do not cover, so then every existing room is read.
func (s *syncer) receipts(ctx context.Context, existing, fresh []string, changed map[string]bool) error {
	s.rcpts = map[string][]store.Receipt{}
	ef := &s.f.Room.Ephemeral
	if !ef.AllowsType("m.receipt") {
		return nil
	}
	var incr []string
	old := !s.initial && s.since.Pos < s.e.startPos.Load()
	for _, id := range existing {
		if (changed[id] || old) && ef.AllowsRoom(id) {
			incr = append(incr, id)
		}
	}
	var all []string
	for _, id := range fresh {
		if ef.AllowsRoom(id) {
			all = append(all, id)
		}
	}
	for _, q := range []struct {
		rooms []string
		since int64
	}{{all, 0}, {incr, s.since.Pos}} {
		if len(q.rooms) == 0 {
			continue
		}
		rs, err := s.e.p.Store.ReceiptsSince(ctx, q.rooms, q.since, s.to.Pos)
		if err != nil {
			return fmt.Errorf("sync: receipts: %w", err)
		}
		for _, r := range rs {
			// m.read.private is for its owner only (spec: Private read
			// receipts).
			if r.Type == "m.read.private" && r.UserID != s.req.UserID {
				continue
			}
			s.rcpts[r.RoomID] = append(s.rcpts[r.RoomID], r)
		}
	}
	return nil
}

// snapshotTyping reads the typing state of the joined rooms.
func (s *syncer) snapshotTyping(existing, fresh []string) {
	t := s.e.p.Typing
	if t == nil {
		return
	}
	rooms := make([]string, 0, len(existing)+len(fresh))
	rooms = append(append(rooms, existing...), fresh...)
	var cur int64
	cur, s.typing = t.snapshot(rooms)
	s.to.Typing = cur
	s.typingFull = !s.initial && !t.fromThisRun(s.since.Typing, cur)
}

// ephemeral is a joined room's ephemeral events: one m.receipt with every
// receipt to send, and m.typing when the typing users changed since the
// token (always, when the token's typing part is from another run; when
// someone is typing, for a fresh room).
func (s *syncer) ephemeral(roomID string, fresh bool) ([]json.RawMessage, error) {
	ef := &s.f.Room.Ephemeral
	if !ef.AllowsRoom(roomID) {
		return nil, nil
	}
	var out []json.RawMessage
	if rs := s.rcpts[roomID]; len(rs) > 0 {
		ev, err := receiptEvent(rs)
		if err != nil {
			return nil, err
		}
		out = append(out, ev)
	}
	if s.e.p.Typing != nil && ef.AllowsType("m.typing") {
		ts, ok := s.typing[roomID]
		send := false
		switch {
		case fresh || s.initial:
			send = ok && len(ts.users) > 0
		case s.typingFull:
			send = true
		default:
			send = ok && ts.pos > s.since.Typing
		}
		if send {
			users := ts.users
			if users == nil {
				users = []string{}
			}
			c, err := json.Marshal(struct {
				UserIDs []string `json:"user_ids"`
			}{users})
			if err != nil {
				return nil, err
			}
			ev, err := basicEvent("m.typing", c)
			if err != nil {
				return nil, err
			}
			out = append(out, ev)
		}
	}
	return out, nil
}

// receiptEvent aggregates receipts into one m.receipt event:
// {event_id: {receipt_type: {user_id: {ts, thread_id?}}}}.
func receiptEvent(rs []store.Receipt) (json.RawMessage, error) {
	type receipt struct {
		TS       int64  `json:"ts"`
		ThreadID string `json:"thread_id,omitempty"`
	}
	content := map[string]map[string]map[string]receipt{}
	for _, r := range rs {
		byType := content[r.EventID]
		if byType == nil {
			byType = map[string]map[string]receipt{}
			content[r.EventID] = byType
		}
		byUser := byType[r.Type]
		if byUser == nil {
			byUser = map[string]receipt{}
			byType[r.Type] = byUser
		}
		if prev, ok := byUser[r.UserID]; ok && prev.ThreadID == "" && r.ThreadID != "" {
			// A user's unthreaded and threaded receipts on one event
			// share this slot: the unthreaded one, which covers more,
			// wins (MSC4102).
			continue
		}
		byUser[r.UserID] = receipt{TS: r.TS, ThreadID: r.ThreadID}
	}
	c, err := json.Marshal(content)
	if err != nil {
		return nil, err
	}
	return basicEvent("m.receipt", c)
}

// accountData reads the user's account data changed since the token (all
// of it on an initial sync): global data goes to the response, room data
// waits for the rooms.
func (s *syncer) accountData(ctx context.Context) error {
	rows, err := s.e.p.Store.AccountDataSince(ctx, s.req.UserID, s.since.Pos, s.to.Pos)
	if err != nil {
		return fmt.Errorf("sync: account data: %w", err)
	}
	sawPushRules := false
	for _, r := range rows {
		if r.RoomID != "" {
			s.roomAD[r.RoomID] = append(s.roomAD[r.RoomID], r)
			continue
		}
		sawPushRules = sawPushRules || r.Type == "m.push_rules"
		if !s.f.AccountData.AllowsType(r.Type) {
			continue
		}
		ev, err := basicEvent(r.Type, r.Content)
		if err != nil {
			return err
		}
		s.resp.AccountData.Events = append(s.resp.AccountData.Events, ev)
	}
	if s.initial && !sawPushRules && s.e.p.PushRules != nil && s.f.AccountData.AllowsType("m.push_rules") {
		content, err := s.e.p.PushRules(ctx, s.req.UserID)
		if err != nil {
			return fmt.Errorf("sync: push rules: %w", err)
		}
		ev, err := basicEvent("m.push_rules", content)
		if err != nil {
			return err
		}
		s.resp.AccountData.Events = append(s.resp.AccountData.Events, ev)
	}
	return nil
}

// roomAccountData is the room's account data to send.
func (s *syncer) roomAccountData(roomID string) ([]json.RawMessage, error) {
	f := &s.f.Room.AccountData
	if !f.AllowsRoom(roomID) {
		return nil, nil
	}
	var out []json.RawMessage
	for _, r := range s.roomAD[roomID] {
		if !f.AllowsType(r.Type) {
			continue
		}
		ev, err := basicEvent(r.Type, r.Content)
		if err != nil {
			return nil, err
		}
		out = append(out, ev)
	}
	return out, nil
}
