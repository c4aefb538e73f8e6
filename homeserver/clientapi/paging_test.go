package clientapi

import (
	"net/url"
	"strings"
	"testing"
)

// bodies lists the "body" of each event of a chunk, in order.
func bodies(a answer, key string) []string {
	var out []string
	chunk, _ := a.body[key].([]any)
	for _, e := range chunk {
		m, _ := e.(map[string]any)
		c, _ := m["content"].(map[string]any)
		s, _ := c["body"].(string)
		out = append(out, s)
	}
	return out
}

// TestPagingTokens: the tokens /messages, /context, /relations and
// /threads hand out page through every event once, in order, and the
// /context tokens continue in /messages.
func TestPagingTokens(t *testing.T) {
	ts := newTestServer(t)
	a := ts.alice
	room := ts.createRoom(a, `{}`)
	var ids []string
	for i := range 7 {
		ids = append(ids, ts.send(a, room, "p"+string(rune('a'+i)), `{"msgtype":"m.text","body":"m`+string(rune('0'+i))+`"}`))
	}
	root := ids[0]
	for i := range 5 {
		ts.send(a, room, "r"+string(rune('a'+i)), `{"msgtype":"m.text","body":"r`+string(rune('0'+i))+`","m.relates_to":{"rel_type":"m.thread","event_id":"`+root+`"}}`)
	}
	msgs := "/rooms/" + room + "/messages"

	t.Run("messages forward", func(t *testing.T) {
		var got []string
		from := ""
		for range 20 {
			p := ts.must(ts.v3(a, "GET", msgs+"?dir=f&limit=4&filter="+url.QueryEscape(`{"types":["m.room.message"]}`)+"&from="+url.QueryEscape(from), ""))
			got = append(got, bodies(p, "chunk")...)
			if from = p.str("end"); from == "" {
				break
			}
		}
		want := "m0 m1 m2 m3 m4 m5 m6 r0 r1 r2 r3 r4"
		if strings.Join(got, " ") != want {
			t.Fatalf("forward pages %v, want %s", got, want)
		}
	})
	t.Run("context tokens continue in messages", func(t *testing.T) {
		c := ts.must(ts.v3(a, "GET", "/rooms/"+room+"/context/"+url.PathEscape(ids[3])+"?limit=2", ""))
		if b := bodies(c, "events_before"); strings.Join(b, " ") != "m2" {
			t.Fatalf("events_before %v", b)
		}
		if b := bodies(c, "events_after"); strings.Join(b, " ") != "m4" {
			t.Fatalf("events_after %v", b)
		}
		back := ts.must(ts.v3(a, "GET", msgs+"?dir=b&limit=1&from="+url.QueryEscape(c.str("start")), ""))
		if b := bodies(back, "chunk"); strings.Join(b, " ") != "m1" {
			t.Fatalf("back from context start: %v", b)
		}
		fwd := ts.must(ts.v3(a, "GET", msgs+"?dir=f&limit=1&from="+url.QueryEscape(c.str("end")), ""))
		if b := bodies(fwd, "chunk"); strings.Join(b, " ") != "m5" {
			t.Fatalf("forward from context end: %v", b)
		}
	})
	t.Run("relations", func(t *testing.T) {
		var got []string
		from := ""
		for range 20 {
			p := ts.must(ts.do(a, "GET", v1+"/rooms/"+room+"/relations/"+url.PathEscape(root)+"?limit=2&from="+url.QueryEscape(from), ""))
			got = append(got, bodies(p, "chunk")...)
			if from = p.str("next_batch"); from == "" {
				break
			}
		}
		if strings.Join(got, " ") != "r4 r3 r2 r1 r0" {
			t.Fatalf("relation pages %v", got)
		}
	})
	t.Run("threads", func(t *testing.T) {
		p := ts.must(ts.do(a, "GET", v1+"/rooms/"+room+"/threads?limit=1", ""))
		if b := bodies(p, "chunk"); strings.Join(b, " ") != "m0" || !strings.Contains(p.raw, `"count":5`) {
			t.Fatalf("threads %s", p.raw)
		}
		if next := p.str("next_batch"); next != "" {
			q := ts.must(ts.do(a, "GET", v1+"/rooms/"+room+"/threads?limit=1&from="+url.QueryEscape(next), ""))
			if len(bodies(q, "chunk")) != 0 {
				t.Fatalf("second page of one thread: %s", q.raw)
			}
		}
	})
	t.Run("search", func(t *testing.T) {
		for i := range 5 {
			ts.send(a, room, "q"+string(rune('a'+i)), `{"msgtype":"m.text","body":"quince `+string(rune('0'+i))+`"}`)
		}
		seen := map[string]bool{}
		next := ""
		for range 10 {
			path := "/search"
			if next != "" {
				path += "?next_batch=" + url.QueryEscape(next)
			}
			p := ts.must(ts.v3(a, "POST", path, `{"search_categories":{"room_events":{"search_term":"quince","order_by":"recent","filter":{"limit":2}}}}`))
			cats, _ := p.body["search_categories"].(map[string]any)
			re, _ := cats["room_events"].(map[string]any)
			results, _ := re["results"].([]any)
			for _, r := range results {
				ev, _ := r.(map[string]any)["result"].(map[string]any)
				c, _ := ev["content"].(map[string]any)
				b, _ := c["body"].(string)
				if seen[b] {
					t.Fatalf("%q found twice", b)
				}
				seen[b] = true
			}
			if next, _ = re["next_batch"].(string); next == "" {
				break
			}
		}
		if len(seen) != 5 {
			t.Fatalf("search pages found %v", seen)
		}
	})
}
