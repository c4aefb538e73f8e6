package sync_test

import (
	"fmt"

	"github.com/salonhq/salon/homeserver/sync"
)

func ExampleParseStreamToken() {
	tok, err := sync.ParseStreamToken("s42_7")
	fmt.Println(tok.Pos, tok.Typing, err)
	// A prev_batch works as a since too: it sits just before position 43.
	tok, _ = sync.ParseStreamToken(sync.PrevBatchToken(43))
	fmt.Println(tok)
	_, err = sync.ParseStreamToken("garbage")
	fmt.Println(err)
	// Output:
	// 42 7 <nil>
	// s42_0
	// sync: malformed stream token: M_INVALID_PARAM: Malformed token "garbage"
}

func ExampleParseFilter() {
	f, err := sync.ParseFilter([]byte(`{"room":{"timeline":{"limit":1000,"not_types":["m.call.*"]},
		"state":{"lazy_load_members":true}},"org.example.custom":1}`))
	fmt.Println(*f.Room.Timeline.Limit, f.Room.Timeline.AllowsType("m.call.invite"), f.Room.State.LazyLoadMembers, err)
	_, err = sync.ParseFilter([]byte(`{"rooms":{}}`))
	fmt.Println(err)
	// Output:
	// 100 false true <nil>
	// sync: invalid filter: M_BAD_JSON: Unknown filter field "rooms"
}

func ExampleMessagesBound() {
	// Backwards from a prev_batch "t10": events with position < 10.
	b, _ := sync.MessagesBound("t10")
	fmt.Println(b)
	// From a next_batch "s10_3": everything up to 10 is before it.
	b, _ = sync.MessagesBound("s10_3")
	fmt.Println(b)
	// In the past, history backfilled from another server: "t-10".
	b, _ = sync.MessagesBound("t-10")
	fmt.Println(b)
	// "t0", "t-0" and "t--1" are not tokens.
	for _, bad := range []string{"t0", "t-0", "t--1", "t-"} {
		_, err := sync.MessagesBound(bad)
		fmt.Println(err != nil)
	}
	// Output:
	// 10
	// 11
	// -10
	// true
	// true
	// true
	// true
}
