package signaling

import (
	"context"

	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/livekit"
)

// Authority answers for the homeserver. The homeserver implements it; the
// JWT service imports nothing of the homeserver's.
type Authority interface {
	CallPolicy
	// OpenIDUser validates a Matrix OpenID access token issued by this
	// homeserver (the in-process equivalent of GET
	// /_matrix/federation/v1/openid/userinfo) and returns its user ID; an
	// error wrapping ErrBadOpenIDToken when unknown or expired. Any other
	// error is the homeserver's failure (500 M_UNKNOWN).
	OpenIDUser(ctx context.Context, token string) (userID string, err error)
}

// CallPolicy is the part of Authority the signal endpoint needs: to admit
// a participant at join and resume only while the token's user is joined
// to the token's Matrix room, and to apply a room's changes to the
// participants of its call.
type CallPolicy interface {
	// CallPermissions says whether the user is joined to the Matrix room
	// now and what the room's power levels and teaching mode let them do
	// in its call. A room the homeserver does not know is Joined: false,
	// not an error.
	CallPermissions(ctx context.Context, userID, roomID string) (CallPermissions, error)
	// JoinedRooms lists the Matrix rooms the user is joined to now. The
	// signal endpoint finds with it the Matrix room of a token that does
	// not name one (MatrixRoomAttribute; tokens from before it): the room
	// whose LegacySlotID call the token is for.
	JoinedRooms(ctx context.Context, userID string) ([]string, error)
}

// CallPermissions is what one user may do in a room's call, read from the
// room's membership and power levels at the moment a token is asked for.
type CallPermissions struct {
	// Joined: the user's membership in the room is "join" now.
	Joined bool
	// PublishAudio lets the user send a microphone track, PublishVideo a
	// camera track, PublishScreen a screen share (and its audio).
	PublishAudio, PublishVideo, PublishScreen bool
	// PublishData lets the user send on LiveKit's data channels.
	PublishData bool
	// Moderate makes the user a LiveKit room admin: they may mute and
	// remove other participants of the call.
	Moderate bool
}

// MatrixRoomAttribute is the participant attribute in which the JWT
// service's tokens name the Matrix room of the call: the embedded SFU
// keeps it with the session (JoinRequest.Scope), so a change to the Matrix
// room reaches its calls in every slot (RTC.RoomChanged). Every
// participant of the call is a member of that room, so it tells them
// nothing new.
const MatrixRoomAttribute = "org.salonhq.matrix_room"

// videoGrant turns a joined user's permissions into the LiveKit grant for
// one room. Every member may subscribe; publishing is limited to the
// sources the permissions name (LiveKit's canPublishSources), and a user
// who may publish none gets canPublish false.
func videoGrant(room string, p CallPermissions) *auth.VideoGrant {
	g := &auth.VideoGrant{
		RoomJoin:  true,
		Room:      room,
		RoomAdmin: p.Moderate,
	}
	sources := publishSources(p)
	g.SetCanSubscribe(true)
	g.SetCanPublish(len(sources) > 0)
	if len(sources) > 0 {
		g.SetCanPublishSources(sources)
	}
	g.SetCanPublishData(p.PublishData)
	g.SetCanUpdateOwnMetadata(true)
	return g
}

// publishSources lists the track sources p lets a user publish.
func publishSources(p CallPermissions) []livekit.TrackSource {
	var sources []livekit.TrackSource
	if p.PublishAudio {
		sources = append(sources, livekit.TrackSource_MICROPHONE)
	}
	if p.PublishVideo {
		sources = append(sources, livekit.TrackSource_CAMERA)
	}
	if p.PublishScreen {
		sources = append(sources, livekit.TrackSource_SCREEN_SHARE, livekit.TrackSource_SCREEN_SHARE_AUDIO)
	}
	return sources
}
