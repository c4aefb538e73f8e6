package sync

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/salonhq/salon/internal/mxerr"
)

func TestRequiredStateSelection(t *testing.T) {
	const me = "@me:test"
	type q struct {
		typ, key string
		want     bool
	}
	for _, tc := range []struct {
		name string
		json string
		lazy bool
		qs   []q
	}{
		{"pairs", `[["m.room.name",""],["m.room.member","$ME"]]`, false, []q{
			{"m.room.name", "", true}, {"m.room.topic", "", false},
			{"m.room.member", me, true}, {"m.room.member", "@other:test", false},
		}},
		{"wildcards", `[["*","*"]]`, false, []q{{"m.room.create", "", true}, {"m.room.member", "@x:test", true}}},
		{"any type, one key", `[["*",""]]`, false, []q{{"m.room.name", "", true}, {"m.room.member", me, false}}},
		{"lazy", `[["m.room.member","$LAZY"],["m.room.create",""]]`, true, []q{
			{"m.room.create", "", true}, {"m.room.member", me, false},
		}},
		{"include and exclude", `{"include":[{}],"exclude":[{"type":"m.room.create","state_key":""}],"lazy_members":true}`, true, []q{
			{"m.room.create", "", false}, {"m.room.name", "", true}, {"m.room.member", "@x:test", true},
		}},
		{"key for any type", `{"include":[{"state_key":"$ME"}]}`, false, []q{
			{"m.room.member", me, true}, {"org.example", me, true}, {"m.room.member", "@x:test", false},
		}},
		{"null", `null`, false, []q{{"m.room.name", "", false}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var rs RequiredState
			if err := rs.UnmarshalJSON([]byte(tc.json)); err != nil {
				t.Fatal(err)
			}
			if rs.lazy != tc.lazy {
				t.Fatalf("lazy = %v", rs.lazy)
			}
			for _, c := range tc.qs {
				if got := rs.wants(c.typ, c.key, me); got != c.want {
					t.Errorf("wants(%s, %q) = %v", c.typ, c.key, got)
				}
			}
		})
	}
}

// Combining configs (MSC4186) gives a superset: what either selects.
func TestRequiredStateMerge(t *testing.T) {
	var a, b RequiredState
	_ = a.UnmarshalJSON([]byte(`{"include":[{}],"exclude":[{"type":"m.room.create","state_key":""}]}`))
	_ = b.UnmarshalJSON([]byte(`[["m.room.create",""],["m.room.member","$LAZY"]]`))
	a.merge(&b)
	if !a.wants("m.room.create", "", "@me:test") || !a.wants("m.room.topic", "", "@me:test") || !a.lazy {
		t.Fatalf("merged: %+v", a)
	}
}

func TestParseSlidingRequestErrors(t *testing.T) {
	for _, tc := range []struct {
		body string
		code mxerr.Code
	}{
		{`{"lists":{"a":{"ranges":[[3,1]]}}}`, mxerr.InvalidParam},
		{`{"lists":{"a":{"range":[-1,1]}}}`, mxerr.InvalidParam},
		{`{"lists":{"a":{"timeline_limit":"ten"}}}`, mxerr.BadJSON},
		{`{"lists":{"a":{"required_state":[["a"]]}}}`, mxerr.BadJSON},
		{`{"room_subscriptions":{"!r:test":{"timeline_limit":-2}}}`, mxerr.InvalidParam},
		{`{"timeout":-1}`, mxerr.InvalidParam},
	} {
		_, err := ParseSlidingRequest([]byte(tc.body))
		var me *mxerr.Error
		if !errors.As(err, &me) || me.Code != tc.code {
			t.Errorf("%s: %v, want %s", tc.body, err, tc.code)
		}
	}
	req, err := ParseSlidingRequest([]byte(`{"lists":{"a":{"range":[0,4],"timeline_limit":500}}}`))
	if err != nil || len(req.Lists["a"].Ranges) != 1 || req.Lists["a"].TimelineLimit != maxTimelineLimit {
		t.Fatalf("range and capped limit: %+v %v", req.Lists["a"], err)
	}
}

// A device keeps at most maxConnsPerDevice connections (the least recently
// used goes), and a connection idle past the TTL is forgotten.
func TestSlidingConnectionsBounded(t *testing.T) {
	h := newHarness(t, openSQLite(t))
	h.createRoom("!a:test", alice)
	now := time.Unix(1_800_000_000, 0)
	h.e.p.Now = func() time.Time { return now }
	var pos []string
	for i := range maxConnsPerDevice + 1 {
		now = now.Add(time.Second)
		resp, err := h.e.SlidingSync(h.ctx, SlidingRequest{UserID: alice, DeviceID: "D", ConnID: fmt.Sprint("c", i)})
		if err != nil {
			t.Fatal(err)
		}
		pos = append(pos, resp.Pos)
	}
	resume := func(i int) error {
		_, err := h.e.SlidingSync(h.ctx, SlidingRequest{UserID: alice, DeviceID: "D", ConnID: fmt.Sprint("c", i), Pos: pos[i]})
		return err
	}
	var me *mxerr.Error
	if err := resume(0); !errors.As(err, &me) || me.Code != mxerr.UnknownPos {
		t.Fatalf("the oldest connection: %v", err)
	}
	if err := resume(1); err != nil {
		t.Fatalf("a kept connection: %v", err)
	}
	// Another device's connections are not counted against this one.
	if _, err := h.e.SlidingSync(h.ctx, SlidingRequest{UserID: alice, DeviceID: "E"}); err != nil {
		t.Fatal(err)
	}
	now = now.Add(DefaultSlidingConnTTL + time.Minute)
	if err := resume(maxConnsPerDevice); !errors.As(err, &me) || me.Code != mxerr.UnknownPos {
		t.Fatalf("an expired connection: %v", err)
	}
	// The same pos on another device or conn_id is unknown too.
	if _, err := h.e.SlidingSync(h.ctx, SlidingRequest{UserID: alice, DeviceID: "E", Pos: pos[1]}); !errors.As(err, &me) || me.Code != mxerr.UnknownPos {
		t.Fatalf("a pos of another device: %v", err)
	}
}

func TestRequiredStateCovers(t *testing.T) {
	parse := func(s string) *RequiredState {
		var rs RequiredState
		if err := rs.UnmarshalJSON([]byte(s)); err != nil {
			t.Fatal(err)
		}
		return &rs
	}
	for _, tc := range []struct {
		r, o string
		want bool
	}{
		{`[["*","*"]]`, `[["m.room.name",""],["m.room.member","$ME"]]`, true},
		{`[["*","*"]]`, `[["m.room.member","$LAZY"]]`, true},
		{`[["m.room.name",""]]`, `[["m.room.name",""],["m.room.topic",""]]`, false},
		{`[["m.room.name",""],["m.room.topic",""]]`, `[["m.room.name",""]]`, true},
		{`[["m.room.member","$LAZY"]]`, `[["m.room.member","$LAZY"],["m.room.create",""]]`, false},
		{`[["m.room.member","*"]]`, `[["m.room.member","$ME"],["m.room.member","$LAZY"]]`, true},
		{`[["m.room.member","$ME"]]`, `[["m.room.member","@a:test"]]`, false},
		{`{"include":[{}],"exclude":[{"type":"m.room.create"}]}`, `[["m.room.name",""]]`, false},
	} {
		if got := parse(tc.r).covers(parse(tc.o)); got != tc.want {
			t.Errorf("%s covers %s = %v", tc.r, tc.o, got)
		}
	}
}
