package rooms

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/salonhq/salon/homeserver/authrules"
	"github.com/salonhq/salon/homeserver/events"
)

// MatrixRTC call membership (MSC3401/MSC4143). In standard room versions a
// state key that does not start with '@' is not owned by anyone, and rooms
// let members send call memberships (power level 0), so without a check
// here one member could write — or erase — another's membership.

// IsCallMemberType reports whether typ is a call membership event type.
func IsCallMemberType(typ string) bool {
	return typ == CallMemberEventType || typ == "m.rtc.member"
}

// OwnsCallMemberKey reports whether a call membership state key belongs to
// sender: the sender's ID alone (the first MSC3401 form), or
// "_@user:server_DEVICE..." and "@user:server_DEVICE..." (the per-device
// forms matrix-js-sdk sends). Server names cannot hold '_', so the prefix
// names exactly one user.
func OwnsCallMemberKey(sender, key string) bool {
	return key == sender || strings.HasPrefix(key, "_"+sender+"_") || strings.HasPrefix(key, sender+"_")
}

// CallMember is one device present in a room's call.
type CallMember struct {
	UserID   string
	DeviceID string
	StateKey string
	Expires  time.Time // zero: no expiry given
}

// callMemberContent is the part of a membership the server reads.
type callMemberContent struct {
	Application string `json:"application"`
	DeviceID    string `json:"device_id"`
	CreatedTS   int64  `json:"created_ts"`
	Expires     int64  `json:"expires"`    // ms after created_ts (or after origin_server_ts)
	ExpiresTS   int64  `json:"expires_ts"` // absolute, older clients
	Memberships []struct {
		DeviceID  string `json:"device_id"`
		Expires   int64  `json:"expires"`
		ExpiresTS int64  `json:"expires_ts"`
		CreatedTS int64  `json:"created_ts"`
	} `json:"memberships"`
}

// CallMembers lists the devices in a room's call now: memberships that are
// not empty (left) and not expired.
func (s *Service) CallMembers(ctx context.Context, roomID string) ([]CallMember, error) {
	r, err := s.lockRoom(ctx, roomID)
	if err != nil {
		return nil, err
	}
	now := s.p.Now()
	defer r.mu.Unlock()
	var out []CallMember
	for t, ev := range r.state {
		if !IsCallMemberType(t.Type) {
			continue
		}
		out = append(out, activeCallMembers(ev, now)...)
	}
	return out, nil
}

func activeCallMembers(ev *events.Event, now time.Time) []CallMember {
	var c callMemberContent
	if json.Unmarshal(ev.Content, &c) != nil {
		return nil
	}
	expiry := func(created, expires, expiresTS int64) (time.Time, bool) {
		if expiresTS > 0 {
			t := time.UnixMilli(expiresTS)
			return t, now.Before(t)
		}
		if expires > 0 {
			if created == 0 {
				created = ev.OriginServerTS
			}
			t := time.UnixMilli(created + expires)
			return t, now.Before(t)
		}
		return time.Time{}, true
	}
	var out []CallMember
	if len(c.Memberships) > 0 { // the first MSC3401 form: one event per user
		for _, m := range c.Memberships {
			if exp, live := expiry(m.CreatedTS, m.Expires, m.ExpiresTS); live {
				out = append(out, CallMember{UserID: ev.Sender, DeviceID: m.DeviceID, StateKey: ev.StateKeyOrEmpty(), Expires: exp})
			}
		}
		return out
	}
	if c.Application == "" && c.DeviceID == "" {
		return nil // {} or {"leave_reason": ...}: left
	}
	if exp, live := expiry(c.CreatedTS, c.Expires, c.ExpiresTS); live {
		out = append(out, CallMember{UserID: ev.Sender, DeviceID: c.DeviceID, StateKey: ev.StateKeyOrEmpty(), Expires: exp})
	}
	return out
}

// CallPermissions is what a user may do in a room's call, derived from the
// room's power levels and its teaching mode. Rooms can raise the level
// needed to publish each kind of media with the pseudo event types below
// in the power levels' "events".
type CallPermissions struct {
	Joined                                    bool
	PublishAudio, PublishVideo, PublishScreen bool
	PublishData, Moderate                     bool
}

// Power-level keys (in "events") for call publishing; default: the level
// needed to send a call membership (0 in rooms Salon creates).
const (
	CallPublishAudio  = "org.salonhq.call.publish.audio"
	CallPublishVideo  = "org.salonhq.call.publish.video"
	CallPublishScreen = "org.salonhq.call.publish.screen"
)

// CallTeachingEventType is the state event (state key "") that turns a
// room's call into a class: while its content says {"enabled": true}, only
// moderators and the users listed in "speakers" may publish microphone,
// camera or screen; everyone else listens (and may still send data).
// Sending it needs the power level for its type (state_default: the
// moderators' in rooms Salon creates).
const CallTeachingEventType = "org.salonhq.call.teaching"

// TeachingMode is the content of a room's CallTeachingEventType event.
type TeachingMode struct {
	Enabled  bool     `json:"enabled"`
	Speakers []string `json:"speakers"`
}

// ParseTeachingMode reads a teaching-mode event's content. It fails
// closed: "enabled" is on only when it is the JSON true, and a malformed
// "speakers" (not a list, entries that are not strings) names nobody
// rather than turning the mode off.
func ParseTeachingMode(content json.RawMessage) TeachingMode {
	var raw map[string]json.RawMessage
	if json.Unmarshal(content, &raw) != nil {
		return TeachingMode{}
	}
	var tm TeachingMode
	_ = json.Unmarshal(raw["enabled"], &tm.Enabled)
	var list []json.RawMessage
	if json.Unmarshal(raw["speakers"], &list) == nil {
		for _, e := range list {
			var id string
			if json.Unmarshal(e, &id) == nil && id != "" {
				tm.Speakers = append(tm.Speakers, id)
			}
		}
	}
	return tm
}

// CallPermissions says whether a user is joined to a room now and what the
// power levels and teaching mode let them publish; moderators (who may
// kick) also moderate the call.
func (s *Service) CallPermissions(ctx context.Context, userID, roomID string) (CallPermissions, error) {
	r, err := s.lockRoom(ctx, roomID)
	if err == errUnknownRoom {
		return CallPermissions{}, nil
	}
	if err != nil {
		return CallPermissions{}, err
	}
	defer r.mu.Unlock()
	return callPermissions(r.version, r.state, userID)
}

// callPermissions decides CallPermissions from a room's current state.
func callPermissions(v events.RoomVersion, st authrules.StateMap, userID string) (CallPermissions, error) {
	if ev := st[events.StateTuple{Type: "m.room.member", StateKey: userID}]; ev == nil || ev.Membership() != "join" {
		return CallPermissions{}, nil
	}
	pl, err := authrules.CurrentPowerLevels(v, st)
	if err != nil {
		return CallPermissions{}, err
	}
	lvl := pl.UserLevel(userID)
	member := pl.EventLevel(CallMemberEventType, true)
	may := func(key string) bool {
		need := member
		if _, ok := explicitEventLevel(st, key); ok {
			need = pl.EventLevel(key, false)
		}
		return lvl >= need
	}
	p := CallPermissions{
		Joined:        true,
		PublishAudio:  may(CallPublishAudio),
		PublishVideo:  may(CallPublishVideo),
		PublishScreen: may(CallPublishScreen),
		PublishData:   lvl >= member,
		Moderate:      lvl >= pl.Kick(),
	}
	if ev := st[events.StateTuple{Type: CallTeachingEventType}]; ev != nil && !p.Moderate {
		if tm := ParseTeachingMode(ev.Content); tm.Enabled && !slices.Contains(tm.Speakers, userID) {
			p.PublishAudio, p.PublishVideo, p.PublishScreen = false, false, false
		}
	}
	return p, nil
}

// explicitEventLevel reports whether the power levels name key in "events".
func explicitEventLevel(st authrules.StateMap, key string) (int64, bool) {
	ev := st[events.StateTuple{Type: "m.room.power_levels"}]
	if ev == nil {
		return 0, false
	}
	var c struct {
		Events map[string]int64 `json:"events"`
	}
	if json.Unmarshal(ev.Content, &c) != nil {
		return 0, false
	}
	v, ok := c.Events[key]
	return v, ok
}
