package homeserver

import (
	"context"
	"encoding/json"
	"errors"
	"io"

	"github.com/salonhq/salon/homeserver/federation"
	"github.com/salonhq/salon/homeserver/media"
	"github.com/salonhq/salon/homeserver/rooms"
)

// federationRooms answers other servers' reads of rooms
// (federation.RoomReader) over rooms' server readers, which apply history
// visibility per event for the requesting server.
type federationRooms struct{ rooms *rooms.Service }

var _ federation.RoomReader = federationRooms{}

func roomPDUs(in []rooms.ServerPDU) []federation.RoomPDU {
	out := make([]federation.RoomPDU, len(in))
	for i, p := range in {
		out[i] = federation.RoomPDU{EventID: p.EventID, JSON: p.JSON}
	}
	return out
}

func (f federationRooms) Event(ctx context.Context, origin, eventID string) (string, json.RawMessage, error) {
	return f.rooms.ServerEvent(ctx, origin, eventID)
}

func (f federationRooms) State(ctx context.Context, origin, roomID, eventID string) ([]federation.RoomPDU, []federation.RoomPDU, error) {
	state, chain, err := f.rooms.ServerState(ctx, origin, roomID, eventID)
	return roomPDUs(state), roomPDUs(chain), err
}

func (f federationRooms) AuthChain(ctx context.Context, origin, roomID, eventID string) ([]federation.RoomPDU, error) {
	chain, err := f.rooms.ServerAuthChain(ctx, origin, roomID, eventID)
	return roomPDUs(chain), err
}

func (f federationRooms) Backfill(ctx context.Context, origin, roomID string, from []string, limit int) ([]federation.RoomPDU, error) {
	got, err := f.rooms.ServerBackfill(ctx, origin, roomID, from, limit)
	return roomPDUs(got), err
}

func (f federationRooms) MissingEvents(ctx context.Context, origin, roomID string, earliest, latest []string, limit int, minDepth int64) ([]federation.RoomPDU, error) {
	got, err := f.rooms.ServerMissingEvents(ctx, origin, roomID, earliest, latest, limit, minDepth)
	return roomPDUs(got), err
}

func (f federationRooms) ServerACL(ctx context.Context, roomID string) (json.RawMessage, error) {
	return f.rooms.ServerACL(ctx, roomID)
}

// federationDirectory answers other servers' /publicRooms and /hierarchy
// (federation.RoomDirectory) over rooms.
type federationDirectory struct{ rooms *rooms.Service }

var _ federation.RoomDirectory = federationDirectory{}

func (f federationDirectory) PublicRooms(ctx context.Context, q federation.PublicRoomsQuery) (map[string]any, error) {
	return f.rooms.PublicRooms(ctx, rooms.PublicRoomsQuery{Limit: q.Limit, Since: q.Since, Term: q.Term, RoomTypes: q.RoomTypes})
}

func (f federationDirectory) Hierarchy(ctx context.Context, origin, roomID string, suggestedOnly bool) (map[string]any, error) {
	return f.rooms.ServerHierarchy(ctx, origin, roomID, suggestedOnly)
}

// remotePublicRooms asks another server for its directory (the client
// API's /publicRooms?server=).
func (h *Homeserver) remotePublicRooms(ctx context.Context, server string, q rooms.PublicRoomsQuery) (json.RawMessage, error) {
	return h.Federation.PublicRooms(ctx, server, federation.PublicRoomsQuery{Limit: q.Limit, Since: q.Since, Term: q.Term, RoomTypes: q.RoomTypes})
}

// federationMedia fetches other servers' media for the media repository
// (media.Remote) over federation.
type federationMedia struct{ f *federation.Service }

func (m federationMedia) FetchRemote(ctx context.Context, server, mediaID string) (string, string, io.ReadCloser, error) {
	rm, err := m.f.DownloadMedia(ctx, server, mediaID, nil)
	if errors.Is(err, federation.ErrMediaNotFound) {
		return "", "", nil, media.ErrRemoteNotFound
	}
	if err != nil {
		return "", "", nil, err
	}
	return rm.ContentType, rm.FileName, rm.Body, nil
}
