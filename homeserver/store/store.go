// Package store declares Salon's storage: the interfaces the homeserver's
// components call, the row types they exchange, and the sentinel errors.
// Backends live in store/sqlite and store/postgres; store/storetest is the
// conformance suite both must pass.
package store

import (
	"context"
	"errors"
)

var (
	// ErrNotFound is returned when the row asked for does not exist.
	ErrNotFound = errors.New("store: not found")
	// ErrExists is returned when a row with the same key exists already.
	ErrExists = errors.New("store: already exists")
)

// Account is a local user.
type Account struct {
	Localpart    string
	UserID       string
	PasswordHash string // "" for accounts that can only log in through SSO
	Admin        bool
	Deactivated  bool
	CreatedTS    int64 // ms since the epoch
}

// Profile is a user's public profile.
type Profile struct {
	DisplayName string
	AvatarURL   string
}

// Device is one login of a user. TokenHash is the SHA-256 of the access
// token: the token itself is never stored.
type Device struct {
	UserID      string
	DeviceID    string
	DisplayName string
	TokenHash   []byte
	LastSeenIP  string
	LastSeenTS  int64
	CreatedTS   int64
}

// Accounts stores local users and their profiles.
type Accounts interface {
	// CreateAccount stores a new account and its empty profile; ErrExists
	// when the localpart is taken (also by a deactivated account).
	CreateAccount(ctx context.Context, a Account, displayName string) error
	Account(ctx context.Context, localpart string) (Account, error)
	SetPasswordHash(ctx context.Context, localpart, hash string) error
	// DeactivateAccount marks the account deactivated, clears its password
	// and profile, and deletes all its devices in one transaction.
	// Its key backups go in the same transaction.
	DeactivateAccount(ctx context.Context, localpart string) error
	// DeactivatedMembers lists deactivated users still joined to, invited
	// to or knocking on a room (the server makes them leave).
	DeactivatedMembers(ctx context.Context) ([]string, error)
	Profile(ctx context.Context, userID string) (Profile, error)
	SetDisplayName(ctx context.Context, userID, name string) error
	SetAvatarURL(ctx context.Context, userID, url string) error
}

// Devices stores logins and their access tokens.
type Devices interface {
	// UpsertDevice creates the device, or replaces the token of an existing
	// device with the same user and device ID (a re-login keeps the ID).
	UpsertDevice(ctx context.Context, d Device) error
	DeviceByToken(ctx context.Context, tokenHash []byte) (Device, error)
	// DevicesByTokens returns the devices that hold any of the token
	// hashes, in no particular order: a hash no device holds (logged
	// out, replaced) is left out. One query answers many, for the access
	// token cache's re-checks.
	DevicesByTokens(ctx context.Context, tokenHashes [][]byte) ([]Device, error)
	Device(ctx context.Context, userID, deviceID string) (Device, error)
	Devices(ctx context.Context, userID string) ([]Device, error)
	SetDeviceName(ctx context.Context, userID, deviceID, name string) error
	// TouchDevice records when and from where a device was last seen.
	TouchDevice(ctx context.Context, userID, deviceID, ip string, ts int64) error
	// DeleteDevices deletes the listed devices (and so their tokens); with
	// ids nil it deletes every device of the user except keep ("" for none).
	// It returns the IDs it deleted.
	DeleteDevices(ctx context.Context, userID string, ids []string, keep string) ([]string, error)
}

// LoginTokens stores the short-lived m.login.token tokens (used by SSO).
type LoginTokens interface {
	CreateLoginToken(ctx context.Context, tokenHash []byte, userID string, expiresTS int64) error
	// ConsumeLoginToken deletes the token and returns its user; ErrNotFound
	// when it does not exist or expired before nowTS. A token works once.
	ConsumeLoginToken(ctx context.Context, tokenHash []byte, nowTS int64) (string, error)
	// CreateOpenIDToken stores an OpenID token (hashed) for a user.
	CreateOpenIDToken(ctx context.Context, tokenHash []byte, userID string, expiresTS int64) error
	// OpenIDToken returns the user of an unexpired OpenID token.
	OpenIDToken(ctx context.Context, tokenHash []byte, nowTS int64) (string, error)
}

// Store is everything the homeserver keeps.
type Store interface {
	Accounts
	Devices
	LoginTokens
	Rooms
	UserData
	Delayed
	Media
	Keys
	Search
	Pushers
	RefreshTokens
	Threads
	KeyBackups
	SSOIdentities
	Identity
	Federation
	RoomDAG
	// Ping checks that the database answers.
	Ping(ctx context.Context) error
	Close() error
}
