package store

import "context"

// Full-text search over room events (POST /search). The store indexes
// the searchable text of each event as it is written: content.body of
// m.room.message, content.name of m.room.name and content.topic of
// m.room.topic. Encrypted events have no readable text and are not
// indexed; a redaction takes its event out of the index.

// SearchQuery is one full-text query.
type SearchQuery struct {
	// RoomIDs are the rooms searched; none means no results.
	RoomIDs []string
	// Terms are lower-case words; an event matches when it holds every
	// term, each as a word or the start of a word.
	Terms []string
	// Keys restrict the search to some of content.body, content.name and
	// content.topic; nil searches all three.
	Keys []string
	// ByRank orders the matches best first (equal ranks oldest first);
	// otherwise newest first.
	ByRank bool
	// Limit caps the number of matches returned.
	Limit int
}

// SearchMatch is one event that matched a query.
type SearchMatch struct {
	Pos     int64
	EventID string
	RoomID  string
	Sender  string
	Type    string
	// Rank is how well the event matched: higher is better.
	Rank float64
}

// Search finds events by their text.
type Search interface {
	SearchEvents(ctx context.Context, q SearchQuery) ([]SearchMatch, error)
}
