package sync

import (
	"errors"
	"strings"
	"testing"

	"github.com/salonhq/salon/homeserver/store"
	"github.com/salonhq/salon/internal/mxerr"
)

// matrixErr fails t unless err is nil or carries an *mxerr.Error: a bad
// token, filter or body from a client is the client's Matrix error, never
// an M_UNKNOWN 500.
func matrixErr(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	var me *mxerr.Error
	if !errors.As(err, &me) {
		t.Fatalf("non-Matrix error %T %v", err, err)
	}
	if me.Code == mxerr.Unknown {
		t.Fatalf("M_UNKNOWN for client input: %v", err)
	}
}

// FuzzStreamToken: any since/from token is refused with M_INVALID_PARAM or
// read; a token read is written back as a token that reads the same.
func FuzzStreamToken(f *testing.F) {
	for _, s := range []string{"s0_0", "s12_3", "s12_3_4", "s12_3_4_5", "t1", "t0", "s", "s_", "s1__", "s-1_0",
		"s999999999999999999_0", "t", "s1_2_3_4_5", "x1", "s1 _2", "s١_0", "s01_0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := ParseStreamToken(s)
		matrixErr(t, err)
		if err == nil {
			if tok.Pos < 0 || tok.Typing < 0 || tok.Presence < 0 || tok.ToDevice < 0 {
				t.Fatalf("%q read as negative %+v", s, tok)
			}
			again, err := ParseStreamToken(tok.String())
			if err != nil || again != tok {
				t.Fatalf("%q -> %+v -> %q -> %+v, %v", s, tok, tok.String(), again, err)
			}
		} else if !errors.Is(err, ErrBadToken) {
			t.Fatalf("%q: %v is not ErrBadToken", s, err)
		}
		b, err := MessagesBound(s)
		matrixErr(t, err)
		if err == nil && (b == 0 || (b < 0) != strings.HasPrefix(s, "t-")) {
			t.Fatalf("%q: bound %d", s, b)
		}
	})
}

// FuzzFilter: any filter JSON (inline in /sync's filter parameter or
// stored by POST /filter) is a Matrix error or a filter whose matchers
// answer without panicking.
func FuzzFilter(f *testing.F) {
	for _, s := range []string{`{}`, `{"room":{"timeline":{"limit":10,"types":["m.room.*"],"not_senders":["@a:x"]}}}`,
		`{"room":{"rooms":["!a:x"],"not_rooms":["!b:x"],"state":{"lazy_load_members":true},"include_leave":true}}`,
		`{"presence":{"not_types":["*"]},"account_data":{"limit":-1},"event_fields":["content.body"],"event_format":"federation"}`,
		`{"room":{"timeline":{"limit":1e99}}}`, `{"room":{"rooms":"!a:x"}}`, `{"room":{"timeline":{"contains_url":true,"types":["*.*"]}}}`,
		`{"org.matrix.x":1}`, `{"room":{"ephemeral":{"types":null}}}`, `[]`, `null`, `"x"`, `{"room":{"rooms":["not a room"]}}`,
		`{"room":{"timeline":{"unread_thread_notifications":true,"limit":"3"}}}`} {
		f.Add([]byte(s))
	}
	row := &store.EventRow{Type: "m.room.message", Sender: "@a:x", RoomID: "!a:x",
		JSON: []byte(`{"type":"m.room.message","content":{"url":"mxc://x/y"}}`)}
	f.Fuzz(func(t *testing.T, raw []byte) {
		matrixErr(t, ValidateFilterJSON(raw))
		_, err := ParseFilter(raw)
		matrixErr(t, err)
		flt, err := ParseStoredFilter(raw)
		matrixErr(t, err)
		if err != nil {
			return
		}
		flt.Room.Timeline.allowsEvent(row)
		flt.Room.Timeline.AllowsRoom(row.RoomID)
		flt.Room.AllowsRoom(row.RoomID)
		flt.Room.State.Allows(row.Type, row.Sender)
		flt.Presence.Allows("m.presence", "@b:x")
		if l := flt.Room.Timeline.limit(10); l < 0 || l > MaxTimelineLimit {
			t.Fatalf("timeline limit %d", l)
		}
	})
}

// FuzzSlidingRequest: any sliding sync body is a Matrix error or a request
// whose required_state selections answer without panicking.
func FuzzSlidingRequest(f *testing.F) {
	for _, s := range []string{``, `{}`, `{"conn_id":"c","lists":{"a":{"ranges":[[0,10]],"timeline_limit":5,"required_state":[["*","*"],["m.room.member","$LAZY"],["m.room.member","$ME"]]}}}`,
		`{"lists":{"a":{"range":[5,1],"filters":{"is_dm":true,"spaces":["!s:x"],"room_types":[null,"m.space"]}}}}`,
		`{"room_subscriptions":{"!a:x":{"timeline_limit":-1,"required_state":{"include":[["m.room.name",""]],"exclude":[],"lazy_members":true}}}}`,
		`{"extensions":{"to_device":{"enabled":true,"since":"x","limit":-5},"e2ee":{"enabled":false},"receipts":{"lists":["*"],"rooms":["!a:x"]}}}`,
		`{"lists":{"a":{"ranges":[[0,9223372036854775807]]}}}`, `{"lists":{"":{}}}`, `{"lists":[]}`, `{"conn_id":1}`,
		`{"lists":{"a":{"required_state":[["*"]]}}}`, `{"lists":{"a":{"required_state":[[1,2]]}}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := ParseSlidingRequest(body)
		matrixErr(t, err)
		if err != nil {
			return
		}
		for _, l := range req.Lists {
			l.RequiredState.wants("m.room.member", "@a:x", "@a:x")
			l.RequiredState.key()
			for _, o := range req.Lists {
				if l.RequiredState.covers(&o.RequiredState) {
					l.RequiredState.merge(&o.RequiredState)
				}
			}
		}
		for _, rc := range req.RoomSubscriptions {
			rc.RequiredState.wants("m.room.name", "", "@a:x")
		}
	})
}
