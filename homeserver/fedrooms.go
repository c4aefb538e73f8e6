package homeserver

import (
	"context"
	"crypto/ed25519"
	"encoding/json"

	"github.com/salonhq/salon/homeserver/events"
	"github.com/salonhq/salon/homeserver/federation"
	"github.com/salonhq/salon/homeserver/rooms"
)

// Shared rooms: rooms asks other servers through remoteRooms (over the
// federation service), and the federation service answers other servers'
// membership handshakes through roomHost (over rooms). Inbound PDUs go
// straight to rooms.Service.ReceivePDU.

type remoteRooms struct{ f *federation.Service }

var _ rooms.Remote = remoteRooms{}

func (r remoteRooms) VerifyKey(ctx context.Context, server, keyID string, atMS int64) (ed25519.PublicKey, error) {
	return r.f.Keyring.VerifyKey(ctx, server, keyID, atMS)
}

func (r remoteRooms) MissingEvents(ctx context.Context, server, roomID string, earliest, latest []string, limit int, minDepth int64) ([]json.RawMessage, error) {
	return r.f.MissingEvents(ctx, server, roomID, earliest, latest, limit, minDepth)
}

func (r remoteRooms) Backfill(ctx context.Context, server, roomID string, from []string, limit int) ([]json.RawMessage, error) {
	return r.f.Backfill(ctx, server, roomID, from, limit)
}

func (r remoteRooms) StateIDs(ctx context.Context, server, roomID, eventID string) ([]string, []string, error) {
	return r.f.StateIDs(ctx, server, roomID, eventID)
}

func (r remoteRooms) Event(ctx context.Context, server, eventID string) (json.RawMessage, error) {
	return r.f.Event(ctx, server, eventID)
}

func (r remoteRooms) QueuePDU(ctx context.Context, destinations []string, pdu json.RawMessage) error {
	return r.f.QueuePDU(ctx, destinations, pdu)
}

func (r remoteRooms) Directory(ctx context.Context, alias string) (string, []string, error) {
	return r.f.Directory(ctx, alias)
}

func (r remoteRooms) MakeJoin(ctx context.Context, server, roomID, userID string, versions []string) (string, json.RawMessage, error) {
	return r.f.MakeJoin(ctx, server, roomID, userID, versions)
}

func (r remoteRooms) SendJoin(ctx context.Context, server, roomID, eventID string, ev json.RawMessage) (rooms.JoinAnswer, error) {
	a, err := r.f.SendJoin(ctx, server, roomID, eventID, ev)
	return rooms.JoinAnswer{State: a.State, AuthChain: a.AuthChain, Event: a.Event}, err
}

func (r remoteRooms) MakeLeave(ctx context.Context, server, roomID, userID string) (string, json.RawMessage, error) {
	return r.f.MakeLeave(ctx, server, roomID, userID)
}

func (r remoteRooms) SendLeave(ctx context.Context, server, roomID, eventID string, ev json.RawMessage) error {
	return r.f.SendLeave(ctx, server, roomID, eventID, ev)
}

func (r remoteRooms) Invite(ctx context.Context, server, roomID, eventID string, v events.RoomVersion, ev json.RawMessage, stripped []json.RawMessage) (json.RawMessage, error) {
	return r.f.Invite(ctx, server, roomID, eventID, string(v), ev, stripped)
}

type roomHost struct{ r *rooms.Service }

var _ federation.RoomHost = roomHost{}

func (h roomHost) MakeJoin(ctx context.Context, origin, roomID, userID string, versions []string) (string, json.RawMessage, error) {
	v, t, err := h.r.MakeJoin(ctx, origin, roomID, userID, versions)
	return string(v), t, err
}

func (h roomHost) SendJoin(ctx context.Context, origin, roomID, eventID string, pdu json.RawMessage) (federation.SendJoinAnswer, error) {
	a, err := h.r.SendJoin(ctx, origin, roomID, eventID, pdu)
	return federation.SendJoinAnswer{State: a.State, AuthChain: a.AuthChain, Event: a.Event}, err
}

func (h roomHost) MakeLeave(ctx context.Context, origin, roomID, userID string) (string, json.RawMessage, error) {
	v, t, err := h.r.MakeLeave(ctx, origin, roomID, userID)
	return string(v), t, err
}

func (h roomHost) SendLeave(ctx context.Context, origin, roomID, eventID string, pdu json.RawMessage) error {
	return h.r.SendLeave(ctx, origin, roomID, eventID, pdu)
}

func (h roomHost) Invite(ctx context.Context, origin, roomID, eventID, version string, pdu json.RawMessage, stripped []json.RawMessage) (json.RawMessage, error) {
	return h.r.ReceiveInvite(ctx, origin, roomID, eventID, events.RoomVersion(version), pdu, stripped)
}

func (r remoteRooms) MakeKnock(ctx context.Context, server, roomID, userID string, versions []string) (string, json.RawMessage, error) {
	return r.f.MakeKnock(ctx, server, roomID, userID, versions)
}

func (r remoteRooms) SendKnock(ctx context.Context, server, roomID, eventID string, ev json.RawMessage) ([]json.RawMessage, error) {
	return r.f.SendKnock(ctx, server, roomID, eventID, ev)
}

func (h roomHost) MakeKnock(ctx context.Context, origin, roomID, userID string, versions []string) (string, json.RawMessage, error) {
	v, t, err := h.r.MakeKnock(ctx, origin, roomID, userID, versions)
	return string(v), t, err
}

func (h roomHost) SendKnock(ctx context.Context, origin, roomID, eventID string, pdu json.RawMessage) ([]json.RawMessage, error) {
	return h.r.SendKnock(ctx, origin, roomID, eventID, pdu)
}
