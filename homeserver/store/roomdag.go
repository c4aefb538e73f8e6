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
	// KeepState keeps the state before and after the event (EventState;
	// Type and StateKey are the event's) for a soft-failed event: events
	// citing it see the state after it, as the spec has soft-failed
	// events take part in state resolution as usual. The state before it
	// is StateBefore, or the room's current state when nil (shared, not
	// copied).
	KeepState   bool
	StateBefore *StateSpec
	Type        string
	StateKey    *string
}

// StateRef sets one tuple of a room's current state to a timeline event
// (after a state resolution); an empty EventID takes the tuple out of the
// current state (a resolution can keep none of a tuple's events), and a
// member tuple out of the memberships too.
type StateRef struct {
	Type, StateKey, EventID string
}

// StateSpec is a room state given as the changes to a stored snapshot
// (Base), or whole (Base 0).
type StateSpec struct {
	Base  int64
	Delta []StateRef
}

// EventState names the snapshots of the room state before and after a
// timeline event (the same one for an event that is not state).
type EventState struct {
	Before, After int64
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
	// EventState returns the snapshots of the state before and after a
	// timeline event; ErrNotFound for an event stored before snapshots
	// were kept, or none of this server's timeline.
	EventState(ctx context.Context, eventID string) (EventState, error)
	// Snapshot returns a stored state, its tuples sorted by type and state
	// key; ErrNotFound when there is none with that ID.
	Snapshot(ctx context.Context, id int64) ([]StateRef, error)
	// CreateRoom records a room this server learnt of from another (an
	// invite, a join); an existing one is left as it is.
	CreateRoom(ctx context.Context, r Room) error
}
