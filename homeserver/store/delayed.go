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
}
