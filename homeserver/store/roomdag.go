package store

import "context"

// Event statuses outside the timeline (RoomDAG).
const (
	// StatusOutlier: an event known only as part of a room's state or an
	// auth chain (what a join brought), not seen in order.
	StatusOutlier = "outlier"
	// StatusRejected: it failed the authorization rules; events citing it
	// are rejected too.
	StatusRejected = "rejected"
	// StatusSoftFailed: allowed by its history but not by the room's
	// current state when it arrived; kept, never shown.
	StatusSoftFailed = "soft_failed"
)

// OutlierRow is an event kept outside a room's timeline.
type OutlierRow struct {
	EventID string
	RoomID  string
	Status  string
	JSON    []byte
}

// StateRef sets one tuple of a room's current state to a timeline event
// (after a state resolution); an empty EventID takes the tuple out of the
// current state (a resolution can keep none of a tuple's events), and a
// member tuple out of the memberships too.
type StateRef struct {
	Type, StateKey, EventID string
}

// RoomDAG keeps what shared rooms need beyond the timeline: each room's
// forward extremities and the events that are not in the timeline. Writes
// that go with a send go in its EventBatch (Extremities, Outliers, State).
type RoomDAG interface {
	// Extremities lists a room's forward extremities (none recorded:
	// empty, and the newest timeline event stands for them).
	Extremities(ctx context.Context, roomID string) ([]string, error)
	// Outlier returns an event kept outside the timeline; ErrNotFound
	// when there is none with that ID.
	Outlier(ctx context.Context, eventID string) (OutlierRow, error)
	// PutOutliers stores events outside the timeline; an event already
	// stored (outside or in the timeline) keeps what it has.
	PutOutliers(ctx context.Context, rows []OutlierRow) error
	// CreateRoom records a room this server learnt of from another (an
	// invite, a join); an existing one is left as it is.
	CreateRoom(ctx context.Context, r Room) error
}
