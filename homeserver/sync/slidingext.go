package sync

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/salonhq/salon/homeserver/store"
)

// Sliding sync extensions: account_data, receipts, typing and presence,
// read through the same providers as /sync's sections (to_device and e2ee
// are in slidinge2ee.go).

// extensions adds the extensions' results to resp and their positions to
// next.
func (e *Engine) extensions(ctx context.Context, s *syncer, req *SlidingRequest, base, next *connState, resp *SlidingResponse, want map[string]*wanted, inList map[string][]string, b *roomBuilder) error {
	x := &req.Extensions
	on := func(cur bool, v *bool) bool {
		if v != nil {
			return *v
		}
		return cur
	}
	if x.AccountData != nil {
		next.ext.accountData = on(next.ext.accountData, x.AccountData.Enabled)
	}
	if x.Receipts != nil {
		next.ext.receipts = on(next.ext.receipts, x.Receipts.Enabled)
	}
	if x.Typing != nil {
		next.ext.typing = on(next.ext.typing, x.Typing.Enabled)
	}
	if x.Presence != nil {
		next.ext.presence = on(next.ext.presence, x.Presence.Enabled)
	}
	if x.ToDevice != nil {
		next.ext.toDevice = on(next.ext.toDevice, x.ToDevice.Enabled)
	}
	if x.E2EE != nil {
		next.ext.e2ee = on(next.ext.e2ee, x.E2EE.Enabled)
	}
	initial := b.initialRooms()

	if next.ext.accountData {
		if err := e.extAccountData(ctx, s, scope(x.AccountData, want, inList, false), !base.ext.accountData || b.fresh, initial, base, next, resp); err != nil {
			return err
		}
	}
	if next.ext.receipts {
		if err := e.extReceipts(ctx, s, scope(x.Receipts, want, inList, true), initial, b.tl, base, next, resp); err != nil {
			return err
		}
	}
	if next.ext.typing && e.p.Typing != nil {
		e.extTyping(s, scope(x.Typing, want, inList, true), !base.ext.typing || b.fresh, initial, base, next, resp)
	}
	if next.ext.toDevice {
		if err := e.extToDevice(ctx, s, x.ToDevice, resp); err != nil {
			return err
		}
	}
	if next.ext.e2ee {
		if err := e.extE2EE(ctx, s, !base.ext.e2ee || b.fresh, base, next, resp); err != nil {
			return err
		}
	}
	if next.ext.presence && e.p.Presence != nil {
		if err := e.extPresence(ctx, s, !base.ext.presence || b.fresh, base, next, resp); err != nil {
			return err
		}
	}
	return nil
}

// scope is the rooms a room extension covers: those of the lists and
// rooms it names ("*" for all), by default every room of the response's
// lists and subscriptions; joinedOnly keeps the joined ones.
func scope(x *RoomsExtension, want map[string]*wanted, inList map[string][]string, joinedOnly bool) []string {
	pick := map[string]bool{}
	all := x == nil || (x.Lists == nil && x.Rooms == nil)
	if !all {
		for _, l := range x.Lists {
			if l == "*" {
				for _, ids := range inList {
					for _, id := range ids {
						pick[id] = true
					}
				}
				continue
			}
			for _, id := range inList[l] {
				pick[id] = true
			}
		}
		for _, id := range x.Rooms {
			if id == "*" {
				all = true
				break
			}
			if want[id] != nil {
				pick[id] = true
			}
		}
	}
	var out []string
	for id, w := range want {
		if (all || pick[id]) && (!joinedOnly || w.c.membership == join) {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// roomSince is, per room, the position from which a room extension still
// owes the room its data: 0 for a room sent as initial now or never served
// by the extension on this connection. A room out of the extension's scope
// keeps its position, so what happened there meanwhile is sent once it
// comes back.
func roomSince(rooms []string, initial map[string]bool, base *connState, pos func(*sentRoom) int64) map[string]int64 {
	out := make(map[string]int64, len(rooms))
	for _, id := range rooms {
		if p := base.rooms[id]; p != nil && !initial[id] {
			out[id] = pos(p)
		} else {
			out[id] = 0
		}
	}
	return out
}

// markServed records, in next, that the rooms' extension data is sent up
// to pos.
func markServed(next *connState, rooms []string, set func(*sentRoom)) {
	for _, id := range rooms {
		p := next.rooms[id]
		if p == nil {
			continue
		}
		cp := *p
		set(&cp)
		next.rooms[id] = &cp
	}
}

// extAccountData: global account data changed since the connection's
// position (all of it when the extension is new to the connection), and
// each room's account data changed since that room was last served (all
// of it for a room sent as initial).
func (e *Engine) extAccountData(ctx context.Context, s *syncer, rooms []string, full bool, initial map[string]bool, base, next *connState, resp *SlidingResponse) error {
	since := s.since.Pos
	if full {
		since = 0
	}
	per := roomSince(rooms, initial, base, func(p *sentRoom) int64 { return p.adPos })
	from := since
	for _, p := range per {
		from = min(from, p)
	}
	rows, err := e.p.Store.AccountDataSince(ctx, s.req.UserID, from, s.to.Pos)
	if err != nil {
		return fmt.Errorf("sync: account data: %w", err)
	}
	global := []json.RawMessage{}
	byRoom := map[string][]json.RawMessage{}
	for _, r := range rows {
		if r.RoomID == "" && r.Pos <= since {
			continue
		}
		if r.RoomID != "" {
			p, ok := per[r.RoomID]
			if !ok || r.Pos <= p {
				continue
			}
		}
		ev, err := basicEvent(r.Type, r.Content)
		if err != nil {
			return err
		}
		if r.RoomID == "" {
			global = append(global, ev)
		} else {
			byRoom[r.RoomID] = append(byRoom[r.RoomID], ev)
		}
	}
	markServed(next, rooms, func(p *sentRoom) { p.adPos = s.to.Pos })
	if len(global) > 0 || len(byRoom) > 0 {
		resp.Extensions["account_data"] = map[string]any{"global": global, "rooms": byRoom}
	}
	return nil
}

// extReceipts: for a room sent as initial (or new to the extension), the
// receipts on the events of its timeline and the user's own; for the
// others, the receipts since the room was last served.
func (e *Engine) extReceipts(ctx context.Context, s *syncer, rooms []string, initial map[string]bool, tl map[string][]string, base, next *connState, resp *SlidingResponse) error {
	per := roomSince(rooms, initial, base, func(p *sentRoom) int64 { return p.rcptPos })
	bySince := map[int64][]string{}
	for _, id := range rooms {
		bySince[per[id]] = append(bySince[per[id]], id)
	}
	out := map[string]json.RawMessage{}
	for since, ids := range bySince {
		rs, err := e.p.Store.ReceiptsSince(ctx, ids, since, s.to.Pos)
		if err != nil {
			return fmt.Errorf("sync: receipts: %w", err)
		}
		byRoom := map[string][]store.Receipt{}
		for _, r := range rs {
			if r.Type == "m.read.private" && r.UserID != s.req.UserID {
				continue
			}
			if since == 0 && r.UserID != s.req.UserID && !slices.Contains(tl[r.RoomID], r.EventID) {
				continue
			}
			byRoom[r.RoomID] = append(byRoom[r.RoomID], r)
		}
		for id, rs := range byRoom {
			ev, err := receiptEvent(rs)
			if err != nil {
				return err
			}
			out[id] = ev
		}
	}
	markServed(next, rooms, func(p *sentRoom) { p.rcptPos = s.to.Pos })
	if len(out) > 0 {
		resp.Extensions["receipts"] = map[string]any{"rooms": out}
	}
	return nil
}

// extTyping: the typing users of the rooms whose typing changed since the
// connection's position, and of rooms new to the extension when someone
// types.
func (e *Engine) extTyping(s *syncer, rooms []string, full bool, initial map[string]bool, base, next *connState, resp *SlidingResponse) {
	t := e.p.Typing
	cur, states := t.snapshot(rooms)
	next.tok.Typing = cur
	other := !full && !t.fromThisRun(base.tok.Typing, cur)
	out := map[string]json.RawMessage{}
	for _, id := range rooms {
		ts, ok := states[id]
		var send bool
		switch {
		case full || initial[id] || base.rooms[id] == nil || !base.rooms[id].typing:
			send = ok && len(ts.users) > 0
		case other:
			send = true
		default:
			send = ok && ts.pos > base.tok.Typing
		}
		if !send {
			continue
		}
		users := ts.users
		if users == nil {
			users = []string{}
		}
		c, err := json.Marshal(struct {
			UserIDs []string `json:"user_ids"`
		}{users})
		if err != nil {
			continue
		}
		ev, err := basicEvent("m.typing", c)
		if err != nil {
			continue
		}
		out[id] = ev
	}
	// A room that leaves the scope loses its mark: typing is a state, and
	// the room gets the current one when it comes back.
	in := map[string]bool{}
	for _, id := range rooms {
		in[id] = true
	}
	for id, p := range next.rooms {
		if p.typing != in[id] {
			cp := *p
			cp.typing = in[id]
			next.rooms[id] = &cp
		}
	}
	if len(out) > 0 {
		resp.Extensions["typing"] = map[string]any{"rooms": out}
	}
}

// extPresence runs /sync's presence provider over the user's joined
// rooms.
func (e *Engine) extPresence(ctx context.Context, s *syncer, full bool, base, next *connState, resp *SlidingResponse) error {
	mems, err := e.userMemberships(ctx, s.req.UserID, true)
	if err != nil {
		return err
	}
	var joined []string
	for _, m := range mems {
		if m.Membership == join && !m.Forgotten {
			joined = append(joined, m.RoomID)
		}
	}
	s.initial = full
	s.since.Presence = base.tok.Presence
	s.resp = newResponse()
	if err := s.presence(ctx, joined, nil); err != nil {
		return err
	}
	next.tok.Presence = s.to.Presence
	if len(s.resp.Presence.Events) > 0 {
		resp.Extensions["presence"] = map[string]any{"events": s.resp.Presence.Events}
	}
	return nil
}
