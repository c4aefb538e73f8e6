package rooms

import (
	"context"
	"encoding/json"
	"slices"

	"github.com/salonhq/salon/homeserver/events"
	"github.com/salonhq/salon/homeserver/store"
	"github.com/salonhq/salon/internal/mxerr"
)

// Knocking across servers (spec: Knocking on rooms, make_knock and
// send_knock v1).

// MakeKnock answers make_knock: a knock template for userID of origin.
func (s *Service) MakeKnock(ctx context.Context, origin, roomID, userID string, versions []string) (events.RoomVersion, json.RawMessage, error) {
	if events.ServerOf(userID) != origin || !events.ValidUserID(userID) {
		return "", nil, mxerr.Forbid("The user is not of the requesting server")
	}
	r, err := s.lockResident(ctx, roomID, origin)
	if err != nil {
		return "", nil, err
	}
	defer r.mu.Unlock()
	if !slices.Contains(versions, string(r.version)) {
		return "", nil, errIncompatible(r.version)
	}
	t, err := s.template(r, userID, "knock", nil)
	return r.version, t, err
}

// SendKnock answers send_knock: the knock is checked and stored as a
// received PDU, sent to the room's other servers, and answered with the
// room's stripped state.
func (s *Service) SendKnock(ctx context.Context, origin, roomID, eventID string, raw json.RawMessage) ([]json.RawMessage, error) {
	r, err := s.lockResident(ctx, roomID, origin)
	if err != nil {
		return nil, err
	}
	var notifies []func()
	defer func() {
		for _, n := range notifies {
			n()
		}
	}()
	defer r.mu.Unlock()
	ev, err := checkMemberPDU(r, origin, eventID, "knock", raw)
	if err != nil {
		return nil, err
	}
	in := &inbound{s: s, r: r, origin: origin, notify: &notifies}
	if _, err := in.receive(ctx, raw, 0, true); err != nil {
		return nil, err
	}
	if r.state[ev.Tuple()] == nil || r.state[ev.Tuple()].ID != ev.ID {
		return nil, mxerr.Forbid("The knock was not accepted")
	}
	return r.strippedState(""), nil
}

// strippedState is what an invitee or a knocker of another server sees
// of r: the stripped state events, and sender's membership.
func (r *room) strippedState(sender string) []json.RawMessage {
	var out []json.RawMessage
	for t, st := range r.state {
		if (strippedTypes[t.Type] && t.StateKey == "") || (sender != "" && t.Type == "m.room.member" && t.StateKey == sender) {
			out = append(out, strippedEvent(st))
		}
	}
	return out
}

// knockRemote knocks on a room this server is not in through a resident
// server, and keeps the knock (with the room's stripped state) so the
// knocker's /sync shows it.
func (s *Service) knockRemote(ctx context.Context, roomID, userID string, servers []string, extra map[string]any) error {
	var lastErr error = errKnockRefused
	for _, srv := range servers {
		ver, tmpl, err := s.remote.MakeKnock(ctx, srv, roomID, userID, supportedVersions())
		if err != nil {
			lastErr = err
			continue
		}
		v := events.RoomVersion(ver)
		if !v.Supported() {
			lastErr = errIncompatible(v)
			continue
		}
		signed, ev, err := s.fillTemplate(v, tmpl, roomID, userID, "knock", extra)
		if err != nil {
			lastErr = err
			continue
		}
		stripped, err := s.remote.SendKnock(ctx, srv, roomID, ev.ID, signed)
		if err != nil {
			lastErr = err
			continue
		}
		if len(stripped) > 50 {
			stripped = stripped[:50]
		}
		if err := s.p.Store.CreateRoom(ctx, store.Room{RoomID: roomID, Version: string(v), Creator: ev.Sender, CreatedTS: ev.OriginServerTS}); err != nil {
			return err
		}
		r := s.entry(roomID)
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.state == nil {
			_ = s.fill(ctx, r)
		}
		if _, err := s.p.Store.Event(ctx, ev.ID); err == nil {
			return nil
		}
		row := eventRow(r, ev, nil)
		row.JSON = signed
		if len(stripped) > 0 {
			row.Unsigned, _ = json.Marshal(map[string]any{"knock_room_state": stripped})
		}
		return s.storeOutOfBand(ctx, r, row)
	}
	return lastErr
}
