package rooms

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/salonhq/salon/internal/mxerr"
)

// recordingNotifier counts the wake-ups and remembers who was woken.
type recordingNotifier struct {
	calls int
	woken map[string]bool
}

func (n *recordingNotifier) Forgotten(string) {}

func (n *recordingNotifier) NotifyRange(first, last int64, roomID string, userIDs []string) {
	n.calls++
	for _, u := range userIDs {
		n.woken[u] = true
	}
}

// TestInviteMany: a batch of invites is one write and one wake-up; each
// invitee gets Invite's answer (joined, already invited, a bad or unknown
// user ID each refused alone, the rest invited with their reason); a
// sender who may not invite gets nothing done.
func TestInviteMany(t *testing.T) {
	ctx := context.Background()
	base := newTestService(t, nil)
	n := &recordingNotifier{woken: map[string]bool{}}
	p := base.p
	p.Notifier = n
	p.UserExists = func(_ context.Context, u string) bool { return u != "@ghost:hs" }
	s := New(p)
	noProfile := func(context.Context, string) (string, string) { return "", "" }
	room, _, err := s.Create(ctx, "@alice:hs", CreateRequest{Preset: "private_chat", Invite: []string{"@bob:hs", "@carol:hs"}}, noProfile)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Join(ctx, room, "@bob:hs", "", noProfile); err != nil {
		t.Fatal(err)
	}
	calls := n.calls
	errs, err := s.InviteMany(ctx, room, "@alice:hs", []Invitee{
		{UserID: "@dave:hs", Reason: "member of LDAP group cn=x"},
		{UserID: "@bob:hs"},     // joined
		{UserID: "@carol:hs"},   // invited already
		{UserID: "not a user"},  // bad
		{UserID: "@ghost:hs"},   // unknown
		{UserID: "@erin:other"}, // remote
		{UserID: "@frank:hs"},
	}, func(_ context.Context, u string) (string, string) { return "Name of " + u, "" })
	if err != nil {
		t.Fatal(err)
	}
	var me *mxerr.Error
	switch {
	case errs[0] != nil || errs[6] != nil:
		t.Fatalf("dave, frank: %v, %v", errs[0], errs[6])
	case !errors.As(errs[1], &me) || me.Code != mxerr.Forbidden:
		t.Fatalf("bob (joined): %v", errs[1])
	case !errors.Is(errs[2], ErrAlreadyInvited):
		t.Fatalf("carol (invited): %v", errs[2])
	case !errors.As(errs[3], &me) || me.Code != mxerr.InvalidParam:
		t.Fatalf("bad user ID: %v", errs[3])
	case !errors.As(errs[4], &me) || me.Code != mxerr.NotFound:
		t.Fatalf("ghost: %v", errs[4])
	case !errors.As(errs[5], &me) || me.Code != mxerr.Forbidden:
		t.Fatalf("remote: %v", errs[5])
	}
	if n.calls != calls+1 || !n.woken["@dave:hs"] || !n.woken["@frank:hs"] || !n.woken["@bob:hs"] {
		t.Fatalf("%d wake-ups, woken %v", n.calls-calls, n.woken)
	}
	for u, reason := range map[string]string{"@dave:hs": "member of LDAP group cn=x", "@frank:hs": ""} {
		m, err := s.Membership(ctx, room, u)
		if err != nil || m != "invite" {
			t.Fatalf("%s: %q %v", u, m, err)
		}
		rows, err := s.p.Store.StateHistory(ctx, room, "m.room.member", u)
		if err != nil || len(rows) != 1 {
			t.Fatalf("%s: %d member events, %v", u, len(rows), err)
		}
		var ev struct {
			Sender  string
			Content map[string]any
		}
		if err := json.Unmarshal(rows[0].JSON, &ev); err != nil {
			t.Fatal(err)
		}
		if r, _ := ev.Content["reason"].(string); r != reason || ev.Content["displayname"] != "Name of "+u || ev.Sender != "@alice:hs" {
			t.Fatalf("%s: %s", u, rows[0].JSON)
		}
	}

	// Someone not in the room may not invite: nothing is sent.
	if _, err := s.InviteMany(ctx, room, "@mallory:hs", []Invitee{{UserID: "@grace:hs"}}, noProfile); err == nil {
		t.Fatal("an outsider's batch was accepted")
	}
	if m, _ := s.Membership(ctx, room, "@grace:hs"); m != "" {
		t.Fatalf("grace: %q", m)
	}
}

// TestKickMany: removals in one write; someone not in the room is refused
// alone, the rest leave with their reason; an outsider's batch does
// nothing.
func TestKickMany(t *testing.T) {
	ctx := context.Background()
	s := newTestService(t, nil)
	noProfile := func(context.Context, string) (string, string) { return "", "" }
	room, _, err := s.Create(ctx, "@alice:hs", CreateRequest{Preset: "private_chat", Invite: []string{"@bob:hs", "@carol:hs", "@dave:hs"}}, noProfile)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Join(ctx, room, "@bob:hs", "", noProfile); err != nil {
		t.Fatal(err)
	}
	if _, err := s.KickMany(ctx, room, "@dave:hs", []Invitee{{UserID: "@bob:hs"}}); err == nil {
		t.Fatal("an invitee's batch was accepted")
	}
	errs, err := s.KickMany(ctx, room, "@alice:hs", []Invitee{
		{UserID: "@bob:hs", Reason: "no longer a member of LDAP group cn=x"}, // joined
		{UserID: "@carol:hs"},  // invited
		{UserID: "@nobody:hs"}, // never there
	})
	if err != nil {
		t.Fatal(err)
	}
	var me *mxerr.Error
	if errs[0] != nil || errs[1] != nil || !errors.As(errs[2], &me) || me.Code != mxerr.Forbidden {
		t.Fatalf("errors: %v", errs)
	}
	for _, u := range []string{"@bob:hs", "@carol:hs"} {
		if m, _ := s.Membership(ctx, room, u); m != "leave" {
			t.Fatalf("%s: %q", u, m)
		}
	}
	rows, _ := s.p.Store.StateHistory(ctx, room, "m.room.member", "@bob:hs")
	var ev struct {
		Sender  string
		Content map[string]any
	}
	if err := json.Unmarshal(rows[len(rows)-1].JSON, &ev); err != nil || ev.Sender != "@alice:hs" || ev.Content["reason"] != "no longer a member of LDAP group cn=x" {
		t.Fatalf("bob's removal: %s", rows[len(rows)-1].JSON)
	}
	if m, _ := s.Membership(ctx, room, "@dave:hs"); m != "invite" {
		t.Fatalf("dave: %q", m)
	}
}
