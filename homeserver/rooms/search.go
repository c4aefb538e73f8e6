package rooms

import (
	"context"
	"slices"
	"strings"
	"unicode"

	"github.com/salonhq/salon/homeserver/store"
	"github.com/salonhq/salon/internal/mxerr"
)

// SearchCap bounds the matches one search considers (before the
// history-visibility filter); /search reports an approximate count past
// it, as the spec allows.
const SearchCap = 5000

// SearchParams is one room-event search of a user.
type SearchParams struct {
	// Terms are the words searched for (see SearchTerms).
	Terms []string
	// Keys restrict which text is searched (nil: all).
	Keys []string
	// ByRank orders best first; otherwise newest first.
	ByRank bool
	// Rooms restricts the search to these rooms (nil: every room the
	// user has a membership in); NotRooms leaves rooms out.
	Rooms, NotRooms []string
	// Keep, if set, drops matches the caller's filter does not want.
	Keep func(m store.SearchMatch) bool
}

// SearchTerms splits a search text into the lower-case words the index
// holds: letters and digits only, so no query syntax reaches the
// database; at most 32 distinct words.
func SearchTerms(text string) []string {
	var out []string
	seen := map[string]bool{}
	for _, w := range strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsNumber(r)
	}) {
		if seen[w] || len(out) == 32 {
			continue
		}
		seen[w] = true
		out = append(out, w)
	}
	return out
}

// Search finds the events matching p that the user may read, by the same
// history-visibility rules as /messages: only rooms the user has (or had)
// a membership in and has not forgotten, and in each only the events
// their Reader allows — so a later joiner of a "joined" room does not
// find what came before, a former member nothing after leaving.
func (s *Service) Search(ctx context.Context, userID string, p SearchParams) ([]store.SearchMatch, error) {
	if len(p.Terms) == 0 {
		return nil, nil
	}
	mems, err := s.p.Store.UserMemberships(ctx, userID)
	if err != nil {
		return nil, err
	}
	want := func(roomID string) bool {
		if p.Rooms != nil && !slices.Contains(p.Rooms, roomID) {
			return false
		}
		return !slices.Contains(p.NotRooms, roomID)
	}
	readers := map[string]*Reader{}
	var roomIDs []string
	for _, m := range mems {
		if m.Forgotten || !want(m.RoomID) {
			continue
		}
		rd, err := s.NewReader(ctx, m.RoomID, userID)
		if err != nil {
			if me, ok := err.(*mxerr.Error); ok && me.Code == mxerr.Forbidden {
				continue // nothing readable there
			}
			return nil, err
		}
		readers[m.RoomID] = rd
		roomIDs = append(roomIDs, m.RoomID)
	}
	matches, err := s.p.Store.SearchEvents(ctx, store.SearchQuery{
		RoomIDs: roomIDs, Terms: p.Terms, Keys: p.Keys, ByRank: p.ByRank, Limit: SearchCap,
	})
	if err != nil {
		return nil, err
	}
	out := matches[:0]
	for _, m := range matches {
		rd := readers[m.RoomID]
		if rd == nil || !rd.CanRead(matchRow(m)) || (p.Keep != nil && !p.Keep(m)) {
			continue
		}
		out = append(out, m)
	}
	return out, nil
}

// matchRow is what a Reader needs of a match: indexed events are
// messages (no state key) or the room's name and topic (state key "").
func matchRow(m store.SearchMatch) store.EventRow {
	row := store.EventRow{Pos: m.Pos, EventID: m.EventID, RoomID: m.RoomID, Type: m.Type, Sender: m.Sender}
	if m.Type != "m.room.message" {
		empty := ""
		row.StateKey = &empty
	}
	return row
}
