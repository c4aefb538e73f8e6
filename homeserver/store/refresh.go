package store

import "context"

// RefreshToken is one issue of a refresh token: it goes with the access
// token issued beside it (by login, registration or a refresh), which
// expires at AccessExpiresTS. A device has at most two: the newest, and
// the one it replaced until the new tokens are first used (so a client
// that lost the answer to a refresh can repeat it).
type RefreshToken struct {
	TokenHash       []byte
	UserID          string
	DeviceID        string
	AccessHash      []byte
	AccessExpiresTS int64
}

// RefreshTokens stores refresh tokens and the expiry of the access tokens
// issued with them (hashes only; tokens are never stored).
type RefreshTokens interface {
	// AddRefreshToken records the refresh token of a fresh login: the
	// device's earlier refresh tokens stop working.
	AddRefreshToken(ctx context.Context, r RefreshToken) error
	// RotateRefreshToken redeems the refresh token oldHash for next: next
	// becomes the device's access and refresh token; every refresh token of
	// the device but oldHash and next's stops working; the old access token
	// too. ErrNotFound when oldHash is unknown, was revoked, or its device
	// has since logged in afresh or out. It returns next with its user
	// and device.
	RotateRefreshToken(ctx context.Context, oldHash []byte, next RefreshToken) (RefreshToken, error)
	// UseAccessToken is told of a use of an access token: when it came
	// with a refresh token, the device's older refresh tokens stop working
	// and its expiry is returned (0, ErrNotFound for tokens that do not
	// expire).
	UseAccessToken(ctx context.Context, accessHash []byte) (expiresTS int64, err error)
}
