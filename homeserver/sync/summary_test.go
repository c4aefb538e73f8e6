package sync

import (
	"fmt"
	"testing"
)

// TestSummaryAfterJoins: the member counts of the summaries that members'
// incremental syncs get after each join (now shared between the syncs of
// one snapshot) are the room's counts at that join, for every member, as
// members join, are invited and leave, on both backends.
func TestSummaryAfterJoins(t *testing.T) {
	backends(t, func(t *testing.T, h *harness) {
		r := h.createRoom("!big:test", alice)
		users := []string{alice}
		tokens := map[string]string{}
		first, _ := h.sync(Request{UserID: alice})
		tokens[alice] = first.NextBatch
		// expect checks the members whose token predates the change (a
		// summary is only sent when the membership changed since it).
		expect := func(step string, joined, invited int, skip string) {
			t.Helper()
			for _, u := range users {
				if u == skip {
					resp, _ := h.sync(Request{UserID: u, Since: tokens[u]})
					tokens[u] = resp.NextBatch
					continue
				}
				resp, js := h.sync(Request{UserID: u, Since: tokens[u]})
				tokens[u] = resp.NextBatch
				room, ok := js.Rooms.Join[r.id]
				if !ok {
					t.Fatalf("%s: %s's sync has no room", step, u)
				}
				want := map[string]string{
					"m.joined_member_count":  fmt.Sprint(joined),
					"m.invited_member_count": fmt.Sprint(invited),
				}
				for k, v := range want {
					if got := string(room.Summary[k]); got != v {
						t.Errorf("%s: %s's %s = %s, want %s", step, u, k, got, v)
					}
				}
			}
		}
		for i := range 6 {
			u := fmt.Sprintf("@m%d:test", i)
			h.join(r.id, u)
			resp, _ := h.sync(Request{UserID: u})
			tokens[u] = resp.NextBatch
			users = append(users, u)
			h.msg(r.id, alice, "hello "+u) // so every member has something new
			expect(fmt.Sprintf("after %d joined", i+1), i+2, 0, u)
		}
		h.member(r.id, alice, "@guest:test", invite)
		expect("after an invite", 7, 1, "")
		h.member(r.id, "@m0:test", "@m0:test", leave)
		users = []string{alice, "@m1:test", "@m5:test"}
		expect("after a leave", 6, 1, "")
	})
}
