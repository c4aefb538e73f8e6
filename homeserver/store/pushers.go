package store

import "context"

// Pusher is where a user's notifications go: an HTTP push gateway or an
// email address (POST /pushers/set). One user has at most one pusher per
// (AppID, PushKey).
type Pusher struct {
	UserID            string
	Kind              string // http, email
	AppID             string
	PushKey           string
	AppDisplayName    string
	DeviceDisplayName string
	ProfileTag        string
	Lang              string
	// Data is the pusher's data object as JSON (url, format).
	Data []byte
	// DeviceID is the device whose token set the pusher.
	DeviceID  string
	CreatedTS int64
}

// Pushers stores users' pushers.
type Pushers interface {
	// SetPusher creates or replaces the user's pusher with p's AppID and
	// PushKey. Unless keepOthers, it also removes the pushers with the
	// same AppID and PushKey of other users (the spec's append false).
	SetPusher(ctx context.Context, p Pusher, keepOthers bool) error
	// DeletePusher removes one pusher of a user; no error when none.
	DeletePusher(ctx context.Context, userID, appID, pushKey string) error
	// Pushers lists a user's pushers, oldest first.
	Pushers(ctx context.Context, userID string) ([]Pusher, error)
	// RoomPushers lists the pushers of a kind of the users joined to a
	// room.
	RoomPushers(ctx context.Context, roomID, kind string) ([]Pusher, error)
}
