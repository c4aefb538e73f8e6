package delayed

import (
	"fmt"
	"testing"

	"github.com/salonhq/salon/homeserver/store"
)

func ev(id string, since, delay, finalised int64, outcome string) store.FinalisedDelayed {
	return store.FinalisedDelayed{
		DelayedEvent: store.DelayedEvent{DelayID: id, RunningSince: since, DelayMS: delay},
		FinalisedTS:  finalised, Outcome: outcome,
	}
}

func pageIDs(p Page) string {
	out := ""
	for _, e := range p.Events {
		out += e.DelayID
	}
	return out
}

// TestPage: order, ties by delay ID, where a page starts, and tokens that
// resume exactly after the last event of a page, forward and backward.
func TestPage(t *testing.T) {
	// send_ts: a 110, b 110, c 120, d 130; d finalised at 50.
	all := []store.FinalisedDelayed{ev("c", 20, 100, 0, ""), ev("b", 10, 100, 0, ""), ev("a", 10, 100, 0, ""), ev("d", 30, 100, 50, "send")}
	for _, tc := range []struct {
		name string
		q    Query
		want string
		next string
		prev string
	}{
		{"from now, forward by send time", Query{Since: 115, Limit: 10}, "cd", "", ""},
		{"all, ties by id", Query{SinceAll: true, Limit: 10}, "abcd", "", ""},
		{"a page of two", Query{SinceAll: true, Limit: 2}, "ab", "110.b", ""},
		{"after a token", Query{From: "110.b", Limit: 2}, "cd", "", ""},
		{"after a token in a tie", Query{From: "110.a", Limit: 1}, "b", "110.b", ""},
		{"backward from the end", Query{SinceEnd: true, Backward: true, Limit: 3}, "dcb", "", "110.b"},
		{"backward after a token", Query{From: "110.b", Backward: true, Limit: 3}, "a", "", ""},
		{"backward from a time", Query{Since: 115, Backward: true, Limit: 10}, "ba", "", ""},
		{"forward from the end", Query{SinceEnd: true, Limit: 10}, "", "", ""},
		{"finalised by origin_server_ts", Query{SinceAll: true, OrderBy: OrderOriginServerTS, Limit: 10}, "dabc", "", ""},
		{"running_since", Query{SinceAll: true, OrderBy: OrderRunningSince, Backward: true, Limit: 10}, "dcba", "", ""},
		{"scheduled only", Query{SinceAll: true, Status: "scheduled", Limit: 10}, "abc", "", ""},
		{"sent only", Query{SinceAll: true, Outcome: "send", Limit: 10}, "d", "", ""},
		{"by delay id", Query{SinceAll: true, DelayIDs: []string{"c", "a"}, Limit: 10}, "ac", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := page(all, tc.q)
			if got := pageIDs(p); got != tc.want || p.Next != tc.next || p.Prev != tc.prev {
				t.Fatalf("page = %q next %q prev %q, want %q next %q prev %q", got, p.Next, p.Prev, tc.want, tc.next, tc.prev)
			}
		})
	}
}

func TestParseQuery(t *testing.T) {
	get := func(m map[string][]string) func(string) []string { return func(k string) []string { return m[k] } }
	q, err := ParseQuery(get(map[string][]string{"dir": {"b"}, "since_ts": {"end"}, "order_by": {"running_since"}, "delay_id": {"x", "y"}}), 1)
	if err != nil || !q.Backward || !q.SinceEnd || q.OrderBy != OrderRunningSince || fmt.Sprint(q.DelayIDs) != "[x y]" {
		t.Fatalf("q = %+v %v", q, err)
	}
	if q, _ := ParseQuery(get(nil), 42); q.Since != 42 || q.Backward {
		t.Fatalf("default q = %+v", q)
	}
	for _, bad := range []map[string][]string{
		{"dir": {"x"}}, {"order_by": {"x"}}, {"status": {"x"}}, {"outcome": {"x"}}, {"reason": {"x"}},
		{"since_ts": {"-1"}}, {"since_ts": {"x"}}, {"from": {"nodot"}}, {"from": {"x.y"}}, {"room_id": {"a", "b"}},
	} {
		if _, err := ParseQuery(get(bad), 1); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}
