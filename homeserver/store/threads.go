package store

import "context"

// ThreadRoot is a thread's root event ID and the position of its newest
// reply (an m.thread relation, redacted ones left out).
type ThreadRoot struct {
	RootID    string
	LatestPos int64
}

// Threads lists thread roots.
type Threads interface {
	// ThreadRoots lists a room's threads by their newest reply, newest
	// first, those whose newest reply is before `before` (0: no bound).
	// With participant set, only threads whose root or a reply that user
	// sent.
	ThreadRoots(ctx context.Context, roomID, participant string, before int64, limit int) ([]ThreadRoot, error)
	// WithThreads returns those of eventIDs (events of the room) that
	// have at least one unredacted thread reply.
	WithThreads(ctx context.Context, roomID string, eventIDs []string) ([]string, error)
}
