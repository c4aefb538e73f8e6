package sync

import (
	"encoding/json"
	"slices"
	"strconv"
)

// Response is a /sync response body; json.Marshal gives the spec's shape
// (data/api/client-server/sync.yaml), with empty sections present as empty
// objects and arrays rather than null.
type Response struct {
	NextBatch                    string         `json:"next_batch"`
	Rooms                        Rooms          `json:"rooms"`
	Presence                     EventList      `json:"presence"`
	AccountData                  EventList      `json:"account_data"`
	ToDevice                     EventList      `json:"to_device"`
	DeviceLists                  DeviceLists    `json:"device_lists"`
	DeviceOneTimeKeysCount       map[string]int `json:"device_one_time_keys_count"`
	DeviceUnusedFallbackKeyTypes []string       `json:"device_unused_fallback_key_types"`
}

// Rooms maps room IDs to what changed in them, by the user's membership.
type Rooms struct {
	Join   map[string]*JoinedRoom  `json:"join"`
	Invite map[string]*InvitedRoom `json:"invite"`
	Leave  map[string]*LeftRoom    `json:"leave"`
	Knock  map[string]*KnockedRoom `json:"knock"`
}

// EventList is an object with an "events" array ("state", "ephemeral",
// "account_data", ...). Events are already encoded.
type EventList struct {
	Events []json.RawMessage `json:"events"`
}

// MarshalJSON writes a nil list as [].
func (l EventList) MarshalJSON() ([]byte, error) {
	if len(l.Events) == 0 {
		return []byte(`{"events":[]}`), nil
	}
	type plain EventList
	return json.Marshal(plain(l))
}

// JoinedRoom is a room in rooms.join.
type JoinedRoom struct {
	Summary             Summary       `json:"summary"`
	State               EventList     `json:"state"`
	Timeline            Timeline      `json:"timeline"`
	Ephemeral           EventList     `json:"ephemeral"`
	AccountData         EventList     `json:"account_data"`
	UnreadNotifications *UnreadCounts `json:"unread_notifications,omitempty"`
	// UnreadThreadNotifications is set when the filter asks for
	// unread_thread_notifications: each thread root with unread
	// notifications, whose counts are then left out of
	// UnreadNotifications.
	UnreadThreadNotifications map[string]UnreadCounts `json:"unread_thread_notifications,omitempty"`
	// StateAfter replaces state, under StateAfterField (MSC4222).
	StateAfter      EventList `json:"-"`
	StateAfterField string    `json:"-"`
}

// MarshalJSON writes state_after in place of state when it was asked for.
// The events are already encoded and are appended as they are: json.Marshal
// re-reads the output of every Marshaler, so with a Marshaler at each level
// (event list, timeline, room) each event was re-read three times, and
// encoding /sync responses was a fifth of the CPU of a server fanning
// messages out to a 1,000-member room (issue 24). The json.Marshal of the
// whole response still checks and compacts it once.
func (r JoinedRoom) MarshalJSON() ([]byte, error) {
	return r.appendJSON(make([]byte, 0, r.size()))
}

// size estimates the room's encoded length.
func (r *JoinedRoom) size() int {
	n := 256
	for _, evs := range [][]json.RawMessage{r.State.Events, r.StateAfter.Events, r.Timeline.Events, r.Ephemeral.Events, r.AccountData.Events} {
		for _, e := range evs {
			n += len(e) + 1
		}
	}
	return n
}

// appendJSON appends the room's JSON to b.
func (r *JoinedRoom) appendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"summary":`...)
	b, err := appendJSON(b, r.Summary)
	if err != nil {
		return nil, err
	}
	stateKey, state := "state", r.State
	if r.StateAfterField != "" {
		stateKey, state = r.StateAfterField, r.StateAfter
	}
	b = append(b, ',')
	if b, err = appendJSON(b, stateKey); err != nil {
		return nil, err
	}
	b = append(b, ':')
	b = appendEventList(b, state.Events)
	b = append(b, `,"timeline":{"events":`...)
	b = appendEvents(b, r.Timeline.Events)
	b = append(b, `,"limited":`...)
	b = strconv.AppendBool(b, r.Timeline.Limited)
	if r.Timeline.PrevBatch != "" {
		b = append(b, `,"prev_batch":`...)
		if b, err = appendJSON(b, r.Timeline.PrevBatch); err != nil {
			return nil, err
		}
	}
	b = append(b, `},"ephemeral":`...)
	b = appendEventList(b, r.Ephemeral.Events)
	b = append(b, `,"account_data":`...)
	b = appendEventList(b, r.AccountData.Events)
	if r.UnreadNotifications != nil {
		b = append(b, `,"unread_notifications":`...)
		if b, err = appendJSON(b, r.UnreadNotifications); err != nil {
			return nil, err
		}
	}
	if len(r.UnreadThreadNotifications) > 0 {
		b = append(b, `,"unread_thread_notifications":`...)
		if b, err = appendJSON(b, r.UnreadThreadNotifications); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

// AppendJSON appends the response's JSON to b: what json.Marshal writes,
// without json.Marshal's second pass over the joined rooms' JSON. That pass
// re-read every event already encoded (by this package, from events the
// server stored and checked) to check and compact it again, and was 5.5 %
// of the server's CPU when a message woke a room's 2,000 long-polls
// (issue 24). The answer is the same JSON (TestResponseAppendJSON); only
// '<', '>' and '&' inside events are no longer rewritten as \u003c, \u003e
// and \u0026, which JSON does not require. mxerr.WriteJSON calls it.
func (r *Response) AppendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"next_batch":`...)
	b, err := appendJSON(b, r.NextBatch)
	if err != nil {
		return nil, err
	}
	b = append(b, `,"rooms":{"join":`...)
	if r.Rooms.Join == nil {
		b = append(b, "null"...)
	} else if b, err = appendObject(b, r.Rooms.Join, func(b []byte, room *JoinedRoom) ([]byte, error) {
		if room == nil {
			return append(b, "null"...), nil
		}
		return room.appendJSON(slices.Grow(b, room.size()))
	}); err != nil {
		return nil, err
	}
	for _, f := range []struct {
		key string
		v   any
	}{
		{`,"invite":`, r.Rooms.Invite}, {`,"leave":`, r.Rooms.Leave}, {`,"knock":`, r.Rooms.Knock},
		{`},"presence":`, r.Presence}, {`,"account_data":`, r.AccountData}, {`,"to_device":`, r.ToDevice},
		{`,"device_lists":`, r.DeviceLists}, {`,"device_one_time_keys_count":`, r.DeviceOneTimeKeysCount},
		{`,"device_unused_fallback_key_types":`, r.DeviceUnusedFallbackKeyTypes},
	} {
		b = append(b, f.key...)
		if b, err = appendJSON(b, f.v); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

// appendJSON appends v's JSON encoding to b.
func appendJSON(b []byte, v any) ([]byte, error) {
	j, err := json.Marshal(v)
	return append(b, j...), err
}

// appendEvents appends encoded events as a JSON array (null for a missing
// one, as json.Marshal writes a nil RawMessage).
func appendEvents(b []byte, evs []json.RawMessage) []byte {
	b = append(b, '[')
	for i, e := range evs {
		if i > 0 {
			b = append(b, ',')
		}
		if len(e) == 0 {
			b = append(b, "null"...)
		} else {
			b = append(b, e...)
		}
	}
	return append(b, ']')
}

// appendEventList appends {"events":[...]}.
func appendEventList(b []byte, evs []json.RawMessage) []byte {
	b = append(b, `{"events":`...)
	return append(appendEvents(b, evs), '}')
}

// Summary is a joined room's summary; fields that did not change since the
// token are left out.
type Summary struct {
	Heroes             []string `json:"m.heroes,omitempty"`
	JoinedMemberCount  *int     `json:"m.joined_member_count,omitempty"`
	InvitedMemberCount *int     `json:"m.invited_member_count,omitempty"`
}

// UnreadCounts is unread_notifications.
type UnreadCounts struct {
	NotificationCount int `json:"notification_count"`
	HighlightCount    int `json:"highlight_count"`
}

// Timeline is a room's timeline batch.
type Timeline struct {
	Events    []json.RawMessage `json:"events"`
	Limited   bool              `json:"limited"`
	PrevBatch string            `json:"prev_batch,omitempty"`
}

// MarshalJSON writes a nil event list as [].
func (t Timeline) MarshalJSON() ([]byte, error) {
	type plain Timeline
	if t.Events == nil {
		t.Events = []json.RawMessage{}
	}
	return json.Marshal(plain(t))
}

// InvitedRoom is a room in rooms.invite.
type InvitedRoom struct {
	InviteState EventList `json:"invite_state"`
}

// KnockedRoom is a room in rooms.knock.
type KnockedRoom struct {
	KnockState EventList `json:"knock_state"`
}

// LeftRoom is a room in rooms.leave.
type LeftRoom struct {
	State       EventList `json:"state"`
	Timeline    Timeline  `json:"timeline"`
	AccountData EventList `json:"account_data"`
}

// DeviceLists is device_lists: users whose devices changed, and users who
// no longer share a room with the syncing user.
type DeviceLists struct {
	Changed []string `json:"changed"`
	Left    []string `json:"left"`
}

func newResponse() *Response {
	return &Response{
		Rooms: Rooms{
			Join:   map[string]*JoinedRoom{},
			Invite: map[string]*InvitedRoom{},
			Leave:  map[string]*LeftRoom{},
			Knock:  map[string]*KnockedRoom{},
		},
		DeviceLists:                  DeviceLists{Changed: []string{}, Left: []string{}},
		DeviceOneTimeKeysCount:       map[string]int{"signed_curve25519": 0},
		DeviceUnusedFallbackKeyTypes: []string{},
	}
}

// empty reports whether the response tells the client nothing new.
func (r *Response) empty() bool {
	return len(r.Rooms.Join) == 0 && len(r.Rooms.Invite) == 0 && len(r.Rooms.Leave) == 0 &&
		len(r.Rooms.Knock) == 0 && len(r.AccountData.Events) == 0 && len(r.Presence.Events) == 0 &&
		len(r.ToDevice.Events) == 0 && len(r.DeviceLists.Changed) == 0 && len(r.DeviceLists.Left) == 0
}
