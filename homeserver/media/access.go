package media

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"

	"github.com/salonhq/salon/homeserver/store"
	"github.com/salonhq/salon/internal/mxerr"
)

// Who may fetch media. The spec serves any media to any logged-in user;
// Salon adds two rules:
//
//   - The authenticated media freeze (media.authenticated_media, on by
//     default): media uploaded under it is served only with an access
//     token, through /_matrix/client/v1/media; the unauthenticated legacy
//     endpoints serve media from before only.
//   - media.restrict_to_rooms (off by default): media that stored events
//     reference is served only to its uploader and to users who may see
//     one of those events now. Media no event visible to the server ever
//     referenced (just uploaded, or an encrypted attachment, whose event
//     is ciphertext) is served as the spec says.

// EventAccess is what media.restrict_to_rooms asks of the rooms: whether
// a user may see an event now (history visibility, or the room's state for
// its members), and if so its content as stored now (a redacted event
// no longer references its media).
type EventAccess interface {
	VisibleEvent(ctx context.Context, userID, roomID, eventID string) (content json.RawMessage, ok bool, err error)
}

// maxRefsChecked bounds the events looked at to decide one request: media
// referenced by more (an avatar in that many rooms) is judged on these.
const maxRefsChecked = 500

// errHidden answers for media the caller may not fetch: the same answer as
// for media that does not exist (Synapse answers the frozen legacy
// endpoints so too).
var errHidden = mxerr.NotFoundf("Media not found")

// find is lookup, then the access rules. user is "" on the
// unauthenticated legacy endpoints.
func (r *Repo) find(req *http.Request, user string) (store.MediaMeta, error) {
	if _, ok := req.Context().Value(fedOrigin{}).(string); ok {
		return r.forServer(req)
	}
	if user == "" && req.PathValue("serverName") != r.p.ServerName && r.cfg.AuthenticatedMedia {
		// Other servers' media is fetched for authenticated users only
		// once the freeze is on (what it fetches would be restricted).
		return store.MediaMeta{}, errHidden
	}
	if user == "" {
		// Refused before waiting for a pending upload: the flag is set at
		// reservation.
		if id := req.PathValue("mediaId"); validMediaID(id) && req.PathValue("serverName") == r.p.ServerName {
			if m, err := r.p.Store.MediaMeta(req.Context(), id); err == nil && m.Restricted {
				return m, errHidden
			}
		}
	}
	m, err := r.lookup(req)
	if err != nil {
		return m, err
	}
	if user == "" && m.Restricted {
		return m, errHidden
	}
	if r.cfg.RestrictToRooms {
		ok, err := r.maySee(req.Context(), m, user)
		if err != nil {
			return m, err
		}
		if !ok {
			return m, errHidden
		}
	}
	return m, nil
}

// maySee applies media.restrict_to_rooms.
func (r *Repo) maySee(ctx context.Context, m store.MediaMeta, user string) (bool, error) {
	if user != "" && user == m.UserID {
		return true, nil
	}
	uri := r.mxc(m.MediaID)
	refs, err := r.p.Store.MediaRefs(ctx, uri, maxRefsChecked)
	if err != nil {
		return false, err
	}
	if len(refs) == 0 {
		// Posted in no room the server can read, unless it is marked
		// referenced: then its events were redacted, or their index failed
		// to be written, and nobody but the uploader is sure to be allowed.
		return !m.Referenced, nil
	}
	if user == "" {
		return false, nil
	}
	if r.p.Events == nil {
		return false, errors.New("media: restrict_to_rooms without Params.Events")
	}
	for _, ref := range refs {
		content, ok, err := r.p.Events.VisibleEvent(ctx, user, ref.RoomID, ref.EventID)
		if err != nil {
			return false, err
		}
		if !ok {
			continue
		}
		var c map[string]any
		if json.Unmarshal(content, &c) == nil && slices.Contains(ReferencedURIs(c), uri) {
			return true, nil
		}
	}
	return false, nil
}

// EventStored records the media an event stored in a room references:
// they are kept by Purge, and with media.restrict_to_rooms served to
// those who may see the event. The rooms call it for each event they
// store, before waking anyone to read it.
func (r *Repo) EventStored(ctx context.Context, roomID, eventID string, content json.RawMessage) error {
	var c map[string]any
	if json.Unmarshal(content, &c) != nil {
		return nil
	}
	var refs []store.MediaRef
	var uris []string
	for _, u := range ReferencedURIs(c) {
		if server, _, ok := parseMXC(u); ok && server == r.p.ServerName {
			refs = append(refs, store.MediaRef{MXC: u, RoomID: roomID, EventID: eventID})
			uris = append(uris, u)
		}
	}
	if len(refs) == 0 {
		return nil
	}
	// Marked first: should the index fail to be written, the media is
	// then kept to its uploader rather than served to everyone (maySee).
	if err := r.MarkReferenced(ctx, uris); err != nil {
		return err
	}
	return r.p.Store.AddMediaRefs(ctx, refs)
}
