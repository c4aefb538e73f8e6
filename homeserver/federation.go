package homeserver

import (
	"context"
	"net/http"
	"time"

	"github.com/salonhq/salon/homeserver/userdata"
	"github.com/salonhq/salon/internal/mxerr"
)

// federationEDUs takes other servers' typing notices, receipts and
// device-list updates. Each is for a room or user a local user shares
// with the remote one: the sender must be joined to the room.
type federationEDUs struct{ h *Homeserver }

// remoteTypingTimeout is how long a remote typing notice lasts without a
// renewal (the EDU carries none; Synapse uses 30 s too).
const remoteTypingTimeout = 30 * time.Second

func (f federationEDUs) joined(ctx context.Context, roomID, userID string) ([]string, error) {
	m, err := f.h.Rooms.Membership(ctx, roomID, userID)
	if err != nil {
		return nil, err
	}
	if m != "join" {
		return nil, mxerr.Forbid("%s is not in %s", userID, roomID)
	}
	return f.h.Rooms.Members(ctx, roomID, "join")
}

func (f federationEDUs) Typing(ctx context.Context, roomID, userID string, typing bool) error {
	members, err := f.joined(ctx, roomID, userID)
	if err != nil {
		return err
	}
	f.h.Typing.Set(roomID, userID, typing, remoteTypingTimeout, members)
	return nil
}

func (f federationEDUs) Receipt(ctx context.Context, roomID, userID, receiptType, eventID, threadID string, ts int64) error {
	if receiptType != userdata.Read {
		// Private receipts and read markers never leave their server.
		return mxerr.InvalidParamf("receipt type %q is not shared", receiptType)
	}
	// The same rules as a local receipt: a joined member, an event they
	// may see; the time is this server's.
	return f.h.UserData.Receipt(ctx, userID, roomID, receiptType, eventID, threadID)
}

func (f federationEDUs) DeviceListUpdate(ctx context.Context, userID, deviceID string, deleted bool) error {
	// Remote device keys are not cached (each /keys/query asks the
	// user's server), so nothing is stale; what changes is that local
	// users sharing a room with them are told to ask again
	// (device_lists.changed). Users sharing no room: nothing recorded.
	shares, err := f.sharesRoomWithLocal(ctx, userID)
	if err != nil {
		return err
	}
	if shares {
		return f.h.Keys.RemoteDeviceListChanged(ctx, userID)
	}
	f.h.log.Debug("device list update of a user sharing no room", "user", userID, "device", deviceID, "deleted", deleted)
	return nil
}

func (f federationEDUs) Presence(ctx context.Context, userID, presence, statusMsg string, lastActiveAgo int64) error {
	if !f.h.cfg.Presence.Enabled {
		return nil
	}
	// Kept only for a user sharing a room with a local one: who may see
	// it, and a bound on what another server can make this one hold.
	shares, err := f.sharesRoomWithLocal(ctx, userID)
	if shares {
		f.h.Presence.SetRemote(userID, presence, statusMsg, lastActiveAgo)
	}
	return err
}

// sharesRoomWithLocal reports whether a remote user shares a joined room
// with a user of this server: whom their device lists and presence
// concern here.
func (f federationEDUs) sharesRoomWithLocal(ctx context.Context, userID string) (bool, error) {
	mates, err := f.h.Sync.RoomMates(ctx, userID)
	if err != nil {
		return false, err
	}
	for _, m := range mates {
		if m != userID && f.h.isLocal(m) {
			return true, nil
		}
	}
	return false, nil
}

// FederationHandler serves the Server-Server API on a listener of its own
// (federation.listen): the key and federation endpoints and OpenID
// userinfo, nothing of the Client-Server API.
func (h *Homeserver) FederationHandler() http.Handler {
	mux := http.NewServeMux()
	fh := h.Federation.Handler()
	mux.Handle("/_matrix/key/", fh)
	mux.Handle("/_matrix/federation/", fh)
	mux.Handle("/_matrix/federation/v1/openid/", h.api.Handler())
	mux.Handle("/", fh)
	return mux
}
