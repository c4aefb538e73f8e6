package signaling

import "errors"

var (
	// ErrBadOpenIDToken is what Authority.OpenIDUser wraps when the token
	// is unknown to the homeserver or has expired. The JWT service answers
	// it with 401 M_UNAUTHORIZED, as lk-jwt-service does for a token the
	// homeserver's /openid/userinfo refuses.
	ErrBadOpenIDToken = errors.New("signaling: OpenID token unknown or expired")

	// ErrNoKeys: the embedded SFU is the focus but JWTParams.Keys is nil.
	ErrNoKeys = errors.New("signaling: no LiveKit API keys")
	// ErrNoSFUURL: the embedded SFU is the focus but JWTParams.SFUURL is nil.
	ErrNoSFUURL = errors.New("signaling: no SFU URL")
	// ErrNoAuthority: JWTParams.Authority is nil.
	ErrNoAuthority = errors.New("signaling: no Authority")
)
