package homeserver

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/url"
	"time"

	"github.com/salonhq/salon/homeserver/events"
	"github.com/salonhq/salon/homeserver/federation"
	"github.com/salonhq/salon/homeserver/keys"
	"github.com/salonhq/salon/homeserver/media"
	"github.com/salonhq/salon/homeserver/rooms"
	"github.com/salonhq/salon/homeserver/store"
)

// federationRooms answers other servers' reads of rooms
// (federation.RoomReader) over rooms' server readers, which apply history
// visibility per event for the requesting server.
type federationRooms struct {
	rooms      *rooms.Service
	store      store.Store
	serverName string
}

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

func (m federationMedia) FetchRemote(ctx context.Context, server, mediaID string, thumb url.Values) (string, string, io.ReadCloser, error) {
	rm, err := m.f.DownloadMedia(ctx, server, mediaID, thumb)
	if errors.Is(err, federation.ErrMediaNotFound) {
		return "", "", nil, media.ErrRemoteNotFound
	}
	if err != nil {
		return "", "", nil, err
	}
	return rm.ContentType, rm.FileName, rm.Body, nil
}

// JoinedServers implements federation.Residents: the other servers with a
// joined member in the room.
func (f federationRooms) JoinedServers(ctx context.Context, roomID string) ([]string, error) {
	members, err := f.rooms.Members(ctx, roomID, "join")
	if err != nil {
		return nil, err
	}
	return otherServers(f.serverName, members), nil
}

// ServersSharing implements federation.Residents: the other servers with a
// joined member in one of the user's joined rooms.
func (f federationRooms) ServersSharing(ctx context.Context, userID string) ([]string, error) {
	ms, err := f.store.UserMemberships(ctx, userID)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []string
	for _, m := range ms {
		if m.Membership != "join" {
			continue
		}
		servers, err := f.JoinedServers(ctx, m.RoomID)
		if err != nil {
			continue
		}
		for _, s := range servers {
			if !seen[s] {
				seen[s] = true
				out = append(out, s)
			}
		}
	}
	return out, nil
}

// otherServers is the set of servers of users, self left out.
func otherServers(self string, users []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, u := range users {
		server := events.ServerOf(u)
		if server != "" && server != self && !seen[server] {
			seen[server] = true
			out = append(out, server)
		}
	}
	return out
}

// isLocal reports whether a user is of this server.
func (h *Homeserver) isLocal(userID string) bool {
	return events.ServerOf(userID) == h.cfg.ServerName
}

// eduTimeout bounds queueing an EDU on behalf of a request that has no
// context of its own to give (typing, presence).
const eduTimeout = 5 * time.Second

// typingOut tells the room's other servers of a local user's typing.
func (h *Homeserver) typingOut(roomID, userID string, typing bool) {
	if h.Federation == nil || !h.Federation.Enabled() || !h.isLocal(userID) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), eduTimeout)
	defer cancel()
	if err := h.Federation.SendTyping(ctx, roomID, userID, typing); err != nil {
		h.log.Warn("queueing a typing notice for other servers", "room", roomID, "err", err)
	}
}

// presenceOut tells the servers sharing a room with a local user of the
// presence they set.
func (h *Homeserver) presenceOut(userID, state, msg string) {
	if h.Federation == nil || !h.Federation.Enabled() || !h.isLocal(userID) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), eduTimeout)
	defer cancel()
	if err := h.Federation.SendPresence(ctx, userID, state, msg, 0, state == "online"); err != nil {
		h.log.Warn("queueing presence for other servers", "user", userID, "err", err)
	}
}

// receiptOut tells the room's other servers of a local user's public read
// receipt.
func (h *Homeserver) receiptOut(ctx context.Context, r store.Receipt) {
	if h.Federation == nil || !h.Federation.Enabled() || !h.isLocal(r.UserID) {
		return
	}
	if err := h.Federation.SendReceipt(ctx, r.RoomID, r.UserID, r.EventID, r.ThreadID, r.TS); err != nil {
		h.log.Warn("queueing a receipt for other servers", "room", r.RoomID, "err", err)
	}
}

// deviceOut tells the servers sharing a room with a local user of a
// change of their devices.
func (h *Homeserver) deviceOut(ctx context.Context, c keys.DeviceChange) {
	if h.Federation == nil || !h.Federation.Enabled() {
		return
	}
	err := h.Federation.SendDeviceListUpdate(ctx, federation.DeviceListUpdate{UserID: c.UserID, DeviceID: c.DeviceID,
		StreamID: c.StreamID, Deleted: c.Deleted, Keys: c.Keys})
	if err != nil {
		h.log.Warn("queueing a device-list update for other servers", "user", c.UserID, "err", err)
	}
}
