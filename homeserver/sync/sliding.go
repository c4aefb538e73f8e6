package sync

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/salonhq/salon/internal/mxerr"
)

// Simplified sliding sync (MSC4186), served at
// POST /_matrix/client/unstable/org.matrix.simplified_msc3575/sync.
//
// It is a second view of the same streams /sync reads: the rooms come from
// the same membership cache, their events through the same Visibility
// (history visibility, knocks), timelines and state from the same store
// reads, unread counts from the same CountsFunc, and a long-poll waits on
// the same Notifier. What it adds is the per-connection memory of what
// was already sent (slidingconn.go), the room list with its filters and
// ordering (slidinglist.go), the room results (slidingroom.go) and the
// extensions (slidingext.go).
//
// The wire format is the one clients speak today (matrix-js-sdk's
// SlidingSync, Element X through matrix-rust-sdk): pos and timeout in the
// query string, required_state as [type, state_key] pairs with "*",
// "$LAZY" and "$ME", list "ranges", rooms' "timeline" and "invite_state".
// The MSC's later spellings (pos and timeout in the body,
// required_state.include/exclude/lazy_members, "range", is_invited,
// stripped_state) are read and written too.

// SlidingRequest is one sliding sync request, decoded by
// ParseSlidingRequest; the handler adds the user, device, pos and
// timeout.
type SlidingRequest struct {
	UserID   string `json:"-"`
	DeviceID string `json:"-"`
	// Pos is the position the client resumes from, "" to start the
	// connection afresh.
	Pos     string        `json:"-"`
	Timeout time.Duration `json:"-"`

	ConnID            string                 `json:"conn_id"`
	Lists             map[string]SlidingList `json:"lists"`
	RoomSubscriptions map[string]RoomConfig  `json:"room_subscriptions"`
	UnsubscribeRooms  []string               `json:"unsubscribe_rooms"`
	Extensions        SlidingExtensions      `json:"extensions"`

	// BodyPos and BodyTimeout are the MSC's newer places for pos and
	// timeout (milliseconds); the handler prefers the query string.
	BodyPos     string `json:"pos"`
	BodyTimeout *int64 `json:"timeout"`
}

// RoomConfig is what to send of each room a list or subscription matches.
type RoomConfig struct {
	TimelineLimit int           `json:"timeline_limit"`
	RequiredState RequiredState `json:"required_state"`
}

// SlidingList is one list of the request.
type SlidingList struct {
	RoomConfig
	Ranges  [][2]int        `json:"ranges"`
	Range   *[2]int         `json:"range"`
	Filters *SlidingFilters `json:"filters"`
}

// SlidingFilters narrow a list (MSC4186 SlidingRoomFilter). Unset fields
// do not filter.
type SlidingFilters struct {
	IsDM         *bool     `json:"is_dm"`
	Spaces       []string  `json:"spaces"`
	IsEncrypted  *bool     `json:"is_encrypted"`
	IsInvite     *bool     `json:"is_invite"`
	IsInvited    *bool     `json:"is_invited"`
	RoomTypes    []*string `json:"room_types"`
	NotRoomTypes []*string `json:"not_room_types"`
	Tags         []string  `json:"tags"`
	NotTags      []string  `json:"not_tags"`
}

// SlidingExtensions are the extensions a request asks for.
type SlidingExtensions struct {
	ToDevice    *ToDeviceExtension `json:"to_device"`
	E2EE        *ExtensionToggle   `json:"e2ee"`
	AccountData *RoomsExtension    `json:"account_data"`
	Receipts    *RoomsExtension    `json:"receipts"`
	Typing      *RoomsExtension    `json:"typing"`
	Presence    *ExtensionToggle   `json:"presence"`
}

// ExtensionToggle turns an extension on or off; an omitted enabled keeps
// what the connection had.
type ExtensionToggle struct {
	Enabled *bool `json:"enabled"`
}

// RoomsExtension is an extension about rooms: by default the rooms of all
// lists and subscriptions; Lists and Rooms narrow it ("*" is all).
type RoomsExtension struct {
	Enabled *bool    `json:"enabled"`
	Lists   []string `json:"lists"`
	Rooms   []string `json:"rooms"`
}

// ToDeviceExtension is the to_device extension's request.
type ToDeviceExtension struct {
	Enabled *bool  `json:"enabled"`
	Since   string `json:"since"`
	Limit   int    `json:"limit"`
}

// RequiredState selects the state events to send of a room.
type RequiredState struct {
	include []stateSel
	exclude []stateSel
	lazy    bool
}

// stateSel matches state events; "" with any* set is a wildcard.
type stateSel struct {
	typ, key       string
	anyType, anyKy bool
	me             bool // state_key "$ME"
}

// UnmarshalJSON reads both forms: [[type, state_key], ...] with "*",
// "$LAZY" and "$ME", or {include, exclude, lazy_members}.
func (r *RequiredState) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	*r = RequiredState{}
	if bytes.Equal(b, []byte("null")) {
		return nil
	}
	if len(b) > 0 && b[0] == '[' {
		var pairs [][]string
		if err := json.Unmarshal(b, &pairs); err != nil {
			return mxerr.BadJSONf("required_state must be a list of [type, state_key] pairs")
		}
		for _, p := range pairs {
			if len(p) != 2 {
				return mxerr.BadJSONf("required_state must be a list of [type, state_key] pairs")
			}
			if p[0] == typeMember && p[1] == "$LAZY" {
				r.lazy = true
				continue
			}
			r.include = append(r.include, newStateSel(&p[0], &p[1], "*"))
		}
		return nil
	}
	var obj struct {
		Include []struct {
			Type     *string `json:"type"`
			StateKey *string `json:"state_key"`
		} `json:"include"`
		Exclude []struct {
			Type     *string `json:"type"`
			StateKey *string `json:"state_key"`
		} `json:"exclude"`
		LazyMembers bool `json:"lazy_members"`
	}
	if err := json.Unmarshal(b, &obj); err != nil {
		return mxerr.BadJSONf("required_state must be a list of pairs or an object")
	}
	for _, e := range obj.Include {
		r.include = append(r.include, newStateSel(e.Type, e.StateKey, ""))
	}
	for _, e := range obj.Exclude {
		r.exclude = append(r.exclude, newStateSel(e.Type, e.StateKey, ""))
	}
	r.lazy = obj.LazyMembers
	return nil
}

// newStateSel makes a selector; a nil field, or one equal to wild (the
// pair form's "*"), matches everything.
func newStateSel(typ, key *string, wild string) stateSel {
	s := stateSel{}
	if typ == nil || (wild != "" && *typ == wild) {
		s.anyType = true
	} else {
		s.typ = *typ
	}
	switch {
	case key == nil || (wild != "" && *key == wild):
		s.anyKy = true
	case *key == "$ME":
		s.me = true
	default:
		s.key = *key
	}
	return s
}

func (s stateSel) matches(typ, key, me string) bool {
	if !s.anyType && s.typ != typ {
		return false
	}
	switch {
	case s.anyKy:
		return true
	case s.me:
		return key == me
	}
	return s.key == key
}

// wants reports whether the state event (typ, key) is selected.
func (r *RequiredState) wants(typ, key, me string) bool {
	in := false
	for _, s := range r.include {
		if s.matches(typ, key, me) {
			in = true
			break
		}
	}
	if !in {
		return false
	}
	for _, s := range r.exclude {
		if s.matches(typ, key, me) {
			return false
		}
	}
	return true
}

// key is a canonical text of the selection, to notice a changed config.
func (r *RequiredState) key() string {
	var b strings.Builder
	for _, group := range [][]stateSel{r.include, r.exclude} {
		for _, s := range group {
			fmt.Fprintf(&b, "%t|%s|%t|%s|%t;", s.anyType, s.typ, s.anyKy, s.key, s.me)
		}
		b.WriteByte('/')
	}
	if r.lazy {
		b.WriteString("lazy")
	}
	return b.String()
}

// covers reports whether everything o selects, r selects too (false
// when unsure: the room is then sent again).
func (r *RequiredState) covers(o *RequiredState) bool {
	if r.key() == o.key() {
		return true
	}
	if len(r.exclude) > 0 {
		return false
	}
	if o.lazy && !r.lazy && !slices.ContainsFunc(r.include, func(t stateSel) bool {
		return (t.anyType || t.typ == typeMember) && t.anyKy
	}) {
		return false
	}
	for _, sel := range o.include {
		if !slices.ContainsFunc(r.include, func(t stateSel) bool {
			typeOK := t.anyType || (!sel.anyType && t.typ == sel.typ)
			keyOK := t.anyKy || (!sel.anyKy && sel.me == t.me && t.key == sel.key)
			return typeOK && keyOK
		}) {
			return false
		}
	}
	return true
}

// merge makes r the union of r and o (MSC4186 "Combining room configs").
// Excludes are kept only when both sides have the same ones; otherwise a
// state event excluded by one but included by the other would be lost.
func (r *RequiredState) merge(o *RequiredState) {
	if r.key() == o.key() {
		return
	}
	if len(r.exclude) > 0 || len(o.exclude) > 0 {
		r.exclude = nil
	}
	r.include = append(append([]stateSel(nil), r.include...), o.include...)
	r.lazy = r.lazy || o.lazy
}

// Bounds on what one request may ask for.
const (
	maxSlidingLists  = 100
	maxSlidingRanges = 100
	maxTimelineLimit = 100
	maxSubscriptions = 1000
	maxRequiredState = 200
	maxListKeyLength = 255
	maxConnIDLength  = 255
)

// ParseSlidingRequest decodes and checks a request body. Errors carry an
// *mxerr.Error (M_BAD_JSON, M_INVALID_PARAM).
func ParseSlidingRequest(body []byte) (SlidingRequest, error) {
	var req SlidingRequest
	if len(bytes.TrimSpace(body)) == 0 {
		return req, nil
	}
	if err := json.Unmarshal(body, &req); err != nil {
		var me *mxerr.Error
		if errors.As(err, &me) {
			return req, me
		}
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return req, mxerr.BadJSONf("%s has the wrong type", te.Field)
		}
		return req, mxerr.BadJSONf("Malformed sliding sync request")
	}
	if len(req.ConnID) > maxConnIDLength {
		return req, mxerr.InvalidParamf("conn_id is too long")
	}
	if len(req.Lists) > maxSlidingLists {
		return req, mxerr.InvalidParamf("At most %d lists", maxSlidingLists)
	}
	if len(req.RoomSubscriptions) > maxSubscriptions {
		return req, mxerr.InvalidParamf("At most %d room subscriptions", maxSubscriptions)
	}
	for k, l := range req.Lists {
		if k == "" || len(k) > maxListKeyLength {
			return req, mxerr.InvalidParamf("Invalid list key")
		}
		if l.Range != nil {
			l.Ranges = append(l.Ranges, *l.Range)
		}
		if len(l.Ranges) > maxSlidingRanges {
			return req, mxerr.InvalidParamf("List %q has too many ranges", k)
		}
		for _, r := range l.Ranges {
			if r[0] < 0 || r[1] < r[0] {
				return req, mxerr.InvalidParamf("List %q has an invalid range", k)
			}
		}
		if err := checkRoomConfig(&l.RoomConfig); err != nil {
			return req, err
		}
		req.Lists[k] = l
	}
	for id, c := range req.RoomSubscriptions {
		if err := checkRoomConfig(&c); err != nil {
			return req, err
		}
		req.RoomSubscriptions[id] = c
	}
	if req.BodyTimeout != nil && *req.BodyTimeout < 0 {
		return req, mxerr.InvalidParamf("timeout must not be negative")
	}
	return req, nil
}

func checkRoomConfig(c *RoomConfig) error {
	if c.TimelineLimit < 0 {
		return mxerr.InvalidParamf("timeline_limit must not be negative")
	}
	c.TimelineLimit = min(c.TimelineLimit, maxTimelineLimit)
	if len(c.RequiredState.include)+len(c.RequiredState.exclude) > maxRequiredState {
		return mxerr.InvalidParamf("required_state is too long")
	}
	return nil
}

// SlidingResponse is a sliding sync response body.
type SlidingResponse struct {
	Pos        string                       `json:"pos"`
	Lists      map[string]SlidingListResult `json:"lists"`
	Rooms      map[string]*SlidingRoom      `json:"rooms"`
	Extensions map[string]any               `json:"extensions"`
}

// SlidingListResult is one list's result.
type SlidingListResult struct {
	Count int `json:"count"`
}

// SlidingRoom is one room's result. Omitted fields are unchanged since the
// room was last sent on the connection, unless Initial is set.
type SlidingRoom struct {
	Name              *string           `json:"name,omitempty"`
	Avatar            *string           `json:"avatar,omitempty"`
	Heroes            []Hero            `json:"heroes,omitempty"`
	Initial           bool              `json:"initial,omitempty"`
	Membership        string            `json:"membership,omitempty"`
	IsDM              *bool             `json:"is_dm,omitempty"`
	Lists             []string          `json:"lists,omitempty"`
	RequiredState     []json.RawMessage `json:"required_state,omitempty"`
	Timeline          []json.RawMessage `json:"timeline,omitempty"`
	PrevBatch         string            `json:"prev_batch,omitempty"`
	Limited           bool              `json:"limited,omitempty"`
	NumLive           *int              `json:"num_live,omitempty"`
	BumpStamp         int64             `json:"bump_stamp,omitempty"`
	JoinedCount       *int              `json:"joined_count,omitempty"`
	InvitedCount      *int              `json:"invited_count,omitempty"`
	NotificationCount *int              `json:"notification_count,omitempty"`
	HighlightCount    *int              `json:"highlight_count,omitempty"`
	InviteState       []json.RawMessage `json:"invite_state,omitempty"`
	StrippedState     []json.RawMessage `json:"stripped_state,omitempty"`
}

// Hero is one of the members a nameless room is named after.
type Hero struct {
	UserID      string `json:"user_id"`
	DisplayName string `json:"displayname,omitempty"`
	AvatarURL   string `json:"avatar_url,omitempty"`
}

// empty reports whether the response tells the client nothing new.
func (r *SlidingResponse) empty() bool {
	return len(r.Rooms) == 0 && len(r.Extensions) == 0
}

// SlidingSync answers one sliding sync request. With a pos and a timeout
// it waits until something the connection should see happens, the
// timeout passes, or ctx ends (ctx.Err()). A pos this server does not
// hold (expired, from before a restart, or never handed out) is
// M_UNKNOWN_POS: the client starts a new connection.
func (e *Engine) SlidingSync(ctx context.Context, req SlidingRequest) (*SlidingResponse, error) {
	conn, base, err := e.sliding.begin(e, &req)
	if err != nil {
		return nil, err
	}
	wait := req.Pos != "" && req.Timeout > 0
	var timer *time.Timer
	for {
		var l *Listener
		if wait {
			l = e.p.Notifier.Listen(req.UserID)
		}
		resp, next, err := e.slide(ctx, &req, base)
		if err != nil || !wait || !resp.empty() || !next.sameLists(base) {
			if l != nil {
				l.Stop()
			}
			if err != nil {
				return nil, err
			}
			resp.Pos = e.sliding.commit(conn, next)
			return resp, nil
		}
		if timer == nil {
			timer = time.NewTimer(req.Timeout)
			defer timer.Stop()
		}
		select {
		case <-l.C:
			l.Stop()
		case <-timer.C:
			l.Stop()
			resp.Pos = e.sliding.commit(conn, next)
			return resp, nil
		case <-ctx.Done():
			l.Stop()
			return nil, ctx.Err()
		}
	}
}
