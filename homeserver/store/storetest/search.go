package storetest

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/salonhq/salon/homeserver/store"
)

func textEvent(room, id, typ string, stateKey *string, key, text string) store.EventRow {
	e := ev(room, id, typ, stateKey, "@a:test")
	b, _ := json.Marshal(map[string]any{"event_id": id, "type": typ, "content": map[string]any{key: text}})
	e.JSON = b
	return e
}

func searchIDs(t *testing.T, s store.Store, q store.SearchQuery) []string {
	t.Helper()
	if q.Limit == 0 {
		q.Limit = 100
	}
	got, err := s.SearchEvents(ctx, q)
	if err != nil {
		t.Fatalf("search %+v: %v", q, err)
	}
	var ids []string
	for _, m := range got {
		ids = append(ids, m.EventID)
		if m.Pos == 0 || m.RoomID == "" || m.Sender != "@a:test" || m.Type == "" {
			t.Fatalf("incomplete match %+v", m)
		}
	}
	return ids
}

// testSearch: the full-text index holds message bodies, room names and
// topics, matches every term as a word or a word's start, keeps to the
// rooms and keys asked, orders by recency or rank, and loses redacted
// events. Encrypted events are never indexed.
func testSearch(t *testing.T, s store.Store) {
	r1, r2 := "!s1:test", "!s2:test"
	for _, r := range []string{r1, r2} {
		if _, err := s.PersistEvents(ctx, &store.EventBatch{NewRoom: &store.Room{RoomID: r, Version: "10", Creator: "@a:test", CreatedTS: 1}}); err != nil {
			t.Fatal(err)
		}
	}
	enc := ev(r1, "$enc", "m.room.encrypted", nil, "@a:test")
	enc.JSON = []byte(`{"type":"m.room.encrypted","content":{"algorithm":"m.megolm.v1.aes-sha2","ciphertext":"apple","body":"apple"}}`)
	batch := &store.EventBatch{Events: []store.EventRow{
		textEvent(r1, "$m1", "m.room.message", nil, "body", "I like apple pie"),
		textEvent(r1, "$m2", "m.room.message", nil, "body", "Apple apple APPLE"),
		textEvent(r1, "$name", "m.room.name", sk(""), "name", "Apple lovers"),
		textEvent(r1, "$topic", "m.room.topic", sk(""), "topic", "We talk about pineapples and apples"),
		textEvent(r2, "$m3", "m.room.message", nil, "body", "Banana bread, then an apple turnover, a long list of many other words"),
		textEvent(r2, "$m4", "m.room.message", nil, "body", "nothing here"),
		textEvent(r2, "$state", "m.room.message", sk("x"), "body", "apple as state"),
		enc,
	}}
	if _, err := s.PersistEvents(ctx, batch); err != nil {
		t.Fatal(err)
	}
	both := []string{r1, r2}
	if got := searchIDs(t, s, store.SearchQuery{RoomIDs: both, Terms: []string{"apple"}}); !slices.Equal(got, []string{"$m3", "$topic", "$name", "$m2", "$m1"}) {
		t.Fatalf("newest first = %v", got)
	}
	if got := searchIDs(t, s, store.SearchQuery{RoomIDs: []string{r2}, Terms: []string{"apple"}}); !slices.Equal(got, []string{"$m3"}) {
		t.Fatalf("one room = %v", got)
	}
	if got := searchIDs(t, s, store.SearchQuery{RoomIDs: both, Terms: []string{"apple"}, Keys: []string{"content.name", "content.topic"}}); !slices.Equal(got, []string{"$topic", "$name"}) {
		t.Fatalf("name and topic keys = %v", got)
	}
	if got := searchIDs(t, s, store.SearchQuery{RoomIDs: both, Terms: []string{"apple", "pie"}}); !slices.Equal(got, []string{"$m1"}) {
		t.Fatalf("every term must match = %v", got)
	}
	if got := searchIDs(t, s, store.SearchQuery{RoomIDs: both, Terms: []string{"pinea"}}); !slices.Equal(got, []string{"$topic"}) {
		t.Fatalf("prefix = %v", got)
	}
	if got := searchIDs(t, s, store.SearchQuery{RoomIDs: both, Terms: []string{"ciphertext"}}); len(got) != 0 {
		t.Fatalf("encrypted event indexed: %v", got)
	}
	if got := searchIDs(t, s, store.SearchQuery{RoomIDs: []string{"!other:test"}, Terms: []string{"apple"}}); len(got) != 0 {
		t.Fatalf("other room = %v", got)
	}
	if got := searchIDs(t, s, store.SearchQuery{RoomIDs: both, Terms: []string{"apple"}, Limit: 2}); !slices.Equal(got, []string{"$m3", "$topic"}) {
		t.Fatalf("limit = %v", got)
	}
	ranked, err := s.SearchEvents(ctx, store.SearchQuery{RoomIDs: both, Terms: []string{"apple"}, ByRank: true, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(ranked) != 5 || ranked[0].EventID != "$m2" {
		t.Fatalf("by rank: %+v", ranked)
	}
	for i := 1; i < len(ranked); i++ {
		if ranked[i].Rank > ranked[i-1].Rank {
			t.Fatalf("not best first: %+v", ranked)
		}
	}
	// Quotes and operators in terms are words, not syntax.
	for _, term := range []string{`"`, `'`, `apple" OR "x`, `a:*`, `NEAR`, `!`, `\`, `a\`, `{body}`, `room : x`} {
		if _, err := s.SearchEvents(ctx, store.SearchQuery{RoomIDs: both, Terms: []string{term}, Limit: 10}); err != nil {
			t.Fatalf("term %q: %v", term, err)
		}
	}

	red := ev(r1, "$redact", "m.room.redaction", nil, "@a:test")
	if _, err := s.PersistEvents(ctx, &store.EventBatch{Events: []store.EventRow{red},
		Redactions: []store.Redaction{{EventID: "$m2", RedactedJSON: []byte(`{"type":"m.room.message","content":{}}`), By: "$redact"}}}); err != nil {
		t.Fatal(err)
	}
	if got := searchIDs(t, s, store.SearchQuery{RoomIDs: []string{r1}, Terms: []string{"apple"}}); !slices.Equal(got, []string{"$topic", "$name", "$m1"}) {
		t.Fatalf("after redaction = %v", got)
	}
}

// Exec runs one SQL statement on a database that is not yet a store.
type Exec func(q string, args ...any) error

// RunSearchBackfill checks the migration that builds the search index
// from the events already stored. exec writes to a database migrated up
// to, not including, that migration; open finishes the migrations and
// opens the store.
func RunSearchBackfill(t *testing.T, exec Exec, open func(t *testing.T) store.Store) {
	rows := []struct {
		pos              int64
		id, typ          string
		stateKey         *string
		json, redactedBy string
	}{
		{1, "$old1", "m.room.message", nil, `{"type":"m.room.message","content":{"body":"archived orchard notes"}}`, ""},
		{2, "$old2", "m.room.name", sk(""), `{"type":"m.room.name","content":{"name":"Orchard"}}`, ""},
		{3, "$old3", "m.room.topic", sk(""), `{"type":"m.room.topic","content":{"topic":"orchards"}}`, ""},
		{4, "$old4", "m.room.message", nil, `{"type":"m.room.message","content":{}}`, "$red"},
		{5, "$old5", "m.room.encrypted", nil, `{"type":"m.room.encrypted","content":{"body":"orchard"}}`, ""},
		{6, "$old6", "m.room.message", nil, `{"type":"m.room.message","content":{"body":42}}`, ""},
	}
	for _, r := range rows {
		if err := exec(`INSERT INTO events (stream_pos, event_id, room_id, type, state_key, sender, json, redacted_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			r.pos, r.id, "!old:test", r.typ, r.stateKey, "@a:test", r.json, r.redactedBy); err != nil {
			t.Fatal(err)
		}
	}
	s := open(t)
	if got := searchIDs(t, s, store.SearchQuery{RoomIDs: []string{"!old:test"}, Terms: []string{"orchard"}}); !slices.Equal(got, []string{"$old3", "$old2", "$old1"}) {
		t.Fatalf("backfilled index = %v", got)
	}
}

// SearchCorpus fills s with rooms×perRoom messages of 8 to 15 words
// drawn (Zipf, seeded, so every run is the same) from a vocabulary of
// pseudo-words, and returns the room IDs and the vocabulary, most common
// word first.
func SearchCorpus(tb testing.TB, s store.Store, rooms, perRoom int) ([]string, []string) {
	syll := []string{"ka", "lo", "mi", "ru", "te", "na", "si", "po", "de", "fu", "gar", "vel", "zon", "bri", "tus"}
	var vocab []string
	for _, a := range syll {
		for _, b := range syll {
			for _, c := range syll {
				vocab = append(vocab, a+b+c)
			}
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	zipf := rand.NewZipf(rng, 1.1, 1, uint64(len(vocab)-1))
	var roomIDs []string
	for r := 0; r < rooms; r++ {
		id := fmt.Sprintf("!bench%d:test", r)
		roomIDs = append(roomIDs, id)
		if _, err := s.PersistEvents(ctx, &store.EventBatch{NewRoom: &store.Room{RoomID: id, Version: "10", Creator: "@a:test", CreatedTS: 1}}); err != nil {
			tb.Fatal(err)
		}
	}
	const batch = 500
	for r, id := range roomIDs {
		for done := 0; done < perRoom; done += batch {
			b := &store.EventBatch{}
			for i := done; i < min(done+batch, perRoom); i++ {
				n := 8 + rng.IntN(8)
				words := make([]string, n)
				for w := range words {
					words[w] = vocab[zipf.Uint64()]
				}
				b.Events = append(b.Events, textEvent(id, fmt.Sprintf("$b%d_%d", r, i), "m.room.message", nil, "body", strings.Join(words, " ")))
			}
			if _, err := s.PersistEvents(ctx, b); err != nil {
				tb.Fatal(err)
			}
		}
	}
	return roomIDs, vocab
}

// BenchSearch measures SearchEvents over a corpus (see SearchCorpus) for
// a user in `member` of its rooms: a rare word, a common one (more
// matches than the cap of one search), two words, by recency and by rank.
func BenchSearch(b *testing.B, s store.Store, roomIDs, vocab []string, member int, limit int) {
	cases := []struct {
		name  string
		terms []string
	}{
		{"rare", []string{vocab[2000]}},
		{"common", []string{vocab[0]}},
		{"two_words", []string{vocab[3], vocab[40]}},
	}
	for _, tc := range cases {
		for _, byRank := range []bool{false, true} {
			name := tc.name + "/recent"
			if byRank {
				name = tc.name + "/rank"
			}
			b.Run(name, func(b *testing.B) {
				q := store.SearchQuery{RoomIDs: roomIDs[:member], Terms: tc.terms, ByRank: byRank, Limit: limit}
				var hits int
				for b.Loop() {
					got, err := s.SearchEvents(ctx, q)
					if err != nil {
						b.Fatal(err)
					}
					hits = len(got)
				}
				b.ReportMetric(float64(hits), "hits")
			})
		}
	}
}
