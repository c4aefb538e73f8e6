package sync

import (
	"errors"
	"strings"
	"testing"

	"github.com/salonhq/salon/internal/mxerr"
)

func errCode(err error) mxerr.Code {
	var me *mxerr.Error
	if errors.As(err, &me) {
		return me.Code
	}
	return ""
}

func TestParseFilter(t *testing.T) {
	tests := []struct {
		name string
		json string
		code mxerr.Code // "" for success
		path string     // the error names this
	}{
		{"empty", `{}`, "", ""},
		{"full", `{"event_fields":["type","content.body"],"event_format":"client","presence":{"not_types":["*"]},
			"account_data":{"types":["m.*"],"limit":5},
			"room":{"rooms":["!a:t"],"not_rooms":["!b:t"],"include_leave":true,
			"ephemeral":{"types":["m.receipt"]},"state":{"lazy_load_members":true,"include_redundant_members":false},
			"timeline":{"limit":20,"senders":["@a:t"],"not_senders":[],"contains_url":false,"unread_thread_notifications":true},
			"account_data":{"not_types":["m.tag"]}}}`, "", ""},
		{"namespaced top level", `{"org.matrix.msc3773.unread_thread_notifications":true}`, "", ""},
		{"unknown nested ignored", `{"room":{"timeline":{"org.matrix.labels":["x"],"whatever":1}}}`, "", ""},
		{"unknown top level", `{"rom":{}}`, mxerr.BadJSON, "rom"},
		{"not an object", `[]`, mxerr.BadJSON, ""},
		{"not JSON", `{`, mxerr.BadJSON, ""},
		{"trailing data", `{} {}`, mxerr.BadJSON, ""},
		{"negative limit", `{"room":{"timeline":{"limit":-1}}}`, mxerr.InvalidParam, "room.timeline.limit"},
		{"fractional limit", `{"room":{"timeline":{"limit":1.5}}}`, mxerr.BadJSON, "room.timeline.limit"},
		{"string limit", `{"room":{"timeline":{"limit":"10"}}}`, mxerr.BadJSON, "room.timeline.limit"},
		{"bad format", `{"event_format":"xml"}`, mxerr.BadJSON, "event_format"},
		{"types not strings", `{"room":{"state":{"types":[1]}}}`, mxerr.BadJSON, "room.state.types"},
		{"bool as string", `{"room":{"include_leave":"yes"}}`, mxerr.BadJSON, "room.include_leave"},
		{"room not object", `{"room":[]}`, mxerr.BadJSON, "room"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseFilter([]byte(tc.json))
			if errCode(err) != tc.code {
				t.Fatalf("err %v, want code %q", err, tc.code)
			}
			if err != nil && !errors.Is(err, ErrBadFilter) {
				t.Fatalf("err %v does not wrap ErrBadFilter", err)
			}
			if tc.path != "" && (err == nil || !strings.Contains(err.Error(), tc.path)) {
				t.Fatalf("err %v does not name %s", err, tc.path)
			}
			if (ValidateFilterJSON([]byte(tc.json)) == nil) != (tc.code == "") {
				t.Fatal("ValidateFilterJSON disagrees")
			}
		})
	}
}

func TestFilterLimits(t *testing.T) {
	for _, tc := range []struct {
		json string
		want int
	}{
		{`{"room":{"timeline":{"limit":0}}}`, 0},
		{`{"room":{"timeline":{"limit":7}}}`, 7},
		{`{"room":{"timeline":{"limit":1000000}}}`, MaxTimelineLimit},
		{`{"room":{"timeline":{"limit":100000000000000000000000}}}`, MaxTimelineLimit},
		{`{"room":{"timeline":{"limit":1e3}}}`, MaxTimelineLimit},
	} {
		f, err := ParseFilter([]byte(tc.json))
		if err != nil {
			t.Fatalf("%s: %v", tc.json, err)
		}
		if got := f.Room.Timeline.limit(DefaultTimelineLimit); got != tc.want {
			t.Fatalf("%s: limit %d, want %d", tc.json, got, tc.want)
		}
	}
	f, _ := ParseFilter([]byte(`{}`))
	if f.Room.Timeline.limit(DefaultTimelineLimit) != DefaultTimelineLimit {
		t.Fatal("default limit")
	}
}

func TestFilterMatching(t *testing.T) {
	f, err := ParseFilter([]byte(`{"room":{"timeline":{"types":["m.room.*","m.call.invite"],"not_types":["m.room.member"],
		"senders":["@a:t","@b:t"],"not_senders":["@b:t"]}}}`))
	if err != nil {
		t.Fatal(err)
	}
	tf := &f.Room.Timeline
	for _, tc := range []struct {
		typ, sender string
		want        bool
	}{
		{"m.room.message", "@a:t", true},
		{"m.room.member", "@a:t", false},  // not_types wins
		{"m.room.message", "@b:t", false}, // not_senders wins
		{"m.room.message", "@c:t", false}, // not in senders
		{"m.call.invite", "@a:t", true},
		{"m.call.answer", "@a:t", false},
		{"m.roomx", "@a:t", false},
	} {
		if got := tf.Allows(tc.typ, tc.sender); got != tc.want {
			t.Errorf("%s from %s: %v, want %v", tc.typ, tc.sender, got, tc.want)
		}
	}
	// An empty list matches nothing; an absent one everything.
	f, _ = ParseFilter([]byte(`{"presence":{"types":[]}}`))
	if f.Presence.AllowsType("m.presence") || !f.AccountData.AllowsType("x") {
		t.Fatal("empty vs absent list")
	}
}

// TestGlobMatch: types match as Matrix globs (package glob), exactly.
func TestGlobMatch(t *testing.T) {
	for _, tc := range []struct {
		p, s string
		want bool
	}{
		{"*", "", true},
		{"*", "anything", true},
		{"m.*", "m.room.message", true},
		{"m.*", "x.m.room", false},
		{"*.message", "m.room.message", true},
		{"m.*.message", "m.room.message", true},
		{"m.*.message", "m.room.messages", false},
		{"a*b*c", "aXXbYYc", true},
		{"a*b*c", "aXXbYY", false},
		{"a**", "a", true},
		{"exact", "exact", true},
		{"exact", "exactly", false},
		{"m.room.message", "M.ROOM.MESSAGE", false},
		{"m.room.?ember", "m.room.member", true},
	} {
		f := EventFilter{Types: []string{tc.p}}
		if got := f.AllowsType(tc.s); got != tc.want {
			t.Errorf("types [%q] allows %q = %v", tc.p, tc.s, got)
		}
		f = EventFilter{NotTypes: []string{tc.p}}
		if got := f.AllowsType(tc.s); got == tc.want {
			t.Errorf("not_types [%q] allows %q = %v", tc.p, tc.s, got)
		}
	}
}

func TestStreamToken(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want StreamToken
	}{
		{"s0_0", StreamToken{}},
		{"s12_34", StreamToken{Pos: 12, Typing: 34}},
		{"s12_34_56", StreamToken{12, 34, 56, 0}},
		{"s12_34_0_9", StreamToken{Pos: 12, Typing: 34, ToDevice: 9}},
		{"s12", StreamToken{Pos: 12}},
		{"t13", StreamToken{Pos: 12}},
	} {
		got, err := ParseStreamToken(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseStreamToken(%q) = %v, %v", tc.in, got, err)
		}
	}
	if s := (StreamToken{Pos: 5, Typing: 6}).String(); s != "s5_6" {
		t.Fatal(s)
	}
	if s := (StreamToken{Pos: 5, Typing: 6, Presence: 7}).String(); s != "s5_6_7" {
		t.Fatal(s)
	}
	if s := (StreamToken{Pos: 5, Typing: 6, ToDevice: 3}).String(); s != "s5_6_0_3" {
		t.Fatal(s)
	}
	for _, bad := range []string{"", "s", "x1_2", "s-1_2", "s1_-2", "s1_2_3_4_5", "s1_2_3_", "s1_2_", "s1__3", "s1_2_-3", "s+1", "s 1", "t0", "t", "s1_", "s_1",
		"s99999999999999999999_1", "s1.5", "ｓ1_2"} {
		_, err := ParseStreamToken(bad)
		if errCode(err) != mxerr.InvalidParam || !errors.Is(err, ErrBadToken) {
			t.Errorf("ParseStreamToken(%q) = %v", bad, err)
		}
	}
	for _, tc := range []struct {
		in   string
		want int64
	}{{"t7", 7}, {"s7_3", 8}, {"s7", 8}} {
		if got, err := MessagesBound(tc.in); err != nil || got != tc.want {
			t.Errorf("MessagesBound(%q) = %d, %v", tc.in, got, err)
		}
	}
	if _, err := MessagesBound("t0"); errCode(err) != mxerr.InvalidParam {
		t.Fatal("t0 accepted")
	}
}

// TestFilterIDs: a filter naming an invalid room or user ID anywhere is
// M_INVALID_PARAM (Complement's TestFilter); a stored filter is read
// without that check, so one stored before it keeps working.
func TestFilterIDs(t *testing.T) {
	for _, raw := range []string{
		`{"room":{"rooms":["not_a_room_id"]}}`,
		`{"room":{"not_rooms":["#alias:example.org"]}}`,
		`{"room":{"timeline":{"rooms":["!"]}}}`,
		`{"room":{"state":{"not_rooms":["room"]}}}`,
		`{"room":{"ephemeral":{"senders":["bob"]}}}`,
		`{"room":{"account_data":{"not_senders":["@bob"]}}}`,
		`{"room":{"timeline":{"senders":["not_a_sender_id"]}}}`,
		`{"presence":{"senders":["example.org"]}}`,
		`{"account_data":{"not_senders":[""]}}`,
	} {
		_, err := ParseFilter([]byte(raw))
		var me *mxerr.Error
		if !errors.As(err, &me) || me.Code != mxerr.InvalidParam {
			t.Errorf("%s: %v, want M_INVALID_PARAM", raw, err)
		}
		if _, err := ParseStoredFilter([]byte(raw)); err != nil {
			t.Errorf("stored %s: %v", raw, err)
		}
	}
	ok := `{"presence":{"senders":["@a:example.org"]},"room":{"rooms":["!r:example.org"],"timeline":{"not_senders":["@b:example.org"],"rooms":["!31hneApxJ_1o-63DmFrpeqnkFfWppnzWso1JvH3ogLM"]}}}`
	if _, err := ParseFilter([]byte(ok)); err != nil {
		t.Fatalf("valid IDs refused: %v", err)
	}
}
