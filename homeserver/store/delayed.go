package store

import "context"

// DelayedEvent is an event a user scheduled to be sent later (MSC4140):
// what Element Call uses to leave a call when the client vanishes.
type DelayedEvent struct {
	DelayID      string
	UserID       string
	DeviceID     string
	RoomID       string
	Type         string
	StateKey     *string
	Content      []byte
	DelayMS      int64
	RunningSince int64 // ms: when scheduled or last restarted
	FireTS       int64 // ms: RunningSince + DelayMS
}

// Delayed stores scheduled delayed events until they fire or are
// cancelled, so they survive a restart.
type Delayed interface {
	AddDelayed(ctx context.Context, d DelayedEvent) error
	DelayedEvent(ctx context.Context, delayID string) (DelayedEvent, error)
	UserDelayed(ctx context.Context, userID string) ([]DelayedEvent, error)
	CountUserDelayed(ctx context.Context, userID string) (int, error)
	// NextDelayed returns up to limit events due first (smallest FireTS).
	NextDelayed(ctx context.Context, limit int) ([]DelayedEvent, error)
	// RestartDelayed moves a delayed event's send time; ErrNotFound if gone.
	RestartDelayed(ctx context.Context, delayID string, runningSince, fireTS int64) error
	// DeleteDelayed removes a delayed event; ErrNotFound if it was gone
	// (so two racing finishers cannot both send it).
	DeleteDelayed(ctx context.Context, delayID string) error

	// FinaliseDelayed takes a scheduled delayed event out of the schedule
	// and keeps it as finalised with its outcome and reason; ErrNotFound
	// if it was not scheduled (so two racing finishers cannot both send
	// it). Finalised events past FinalisedRetention or beyond
	// FinalisedPerUser for the user are dropped.
	FinaliseDelayed(ctx context.Context, delayID, outcome, reason string, finalisedTS int64) (DelayedEvent, error)
	// SetFinalisedResult records what sending a finalised delayed event
	// gave: its event ID, or outcome "error" and the error.
	SetFinalisedResult(ctx context.Context, delayID, outcome, eventID string, errJSON []byte) error
	// RescheduleDelayed puts a finalised delayed event back in the
	// schedule as d (a send the client asked for failed: it may retry).
	RescheduleDelayed(ctx context.Context, d DelayedEvent) error
	// FinalisedDelayed is one finalised delayed event; ErrNotFound if none.
	FinalisedDelayed(ctx context.Context, delayID string) (FinalisedDelayed, error)
	// UserFinalisedDelayed is the user's finalised delayed events.
	UserFinalisedDelayed(ctx context.Context, userID string) ([]FinalisedDelayed, error)
}

// Outcomes and reasons of finalised delayed events (MSC4140).
const (
	DelayedOutcomeSend   = "send"   // sent
	DelayedOutcomeCancel = "cancel" // cancelled by the user
	DelayedOutcomeError  = "error"  // not sent: the send failed
	DelayedReasonAction  = "action" // by /send or /cancel
	DelayedReasonDelay   = "delay"  // its time came
)

// How long, and how many per user, finalised delayed events are kept
// (MSC4140's recommended retention).
const (
	FinalisedRetention = 7 * 24 * 3600 * 1000 // ms
	FinalisedPerUser   = 1000
)

// FinalisedDelayed is a delayed event that was sent or cancelled.
type FinalisedDelayed struct {
	DelayedEvent
	FinalisedTS int64  // ms
	Outcome     string // DelayedOutcome*
	Reason      string // DelayedReason*
	EventID     string // when sent
	Error       []byte // the standard error response, for outcome "error"
}
