package auth

import (
	"context"
	"errors"
	"time"

	"github.com/salonhq/salon/homeserver/store"
	"github.com/salonhq/salon/internal/mxerr"
)

// Refresh tokens (https://spec.matrix.org/latest/client-server-api/#refreshing-access-tokens):
// a client that asks for one at login gets an access token that expires
// after Params.RefreshableAccessTokenLifetime and a refresh token that
// trades for a new pair. An expired access token answers M_UNKNOWN_TOKEN
// with soft_logout true, so the client refreshes instead of logging out.

// DefaultRefreshableAccessTokenLifetime is Synapse's default too.
const DefaultRefreshableAccessTokenLifetime = 5 * time.Minute

func (s *Service) accessLifetime() time.Duration {
	if s.p.RefreshableAccessTokenLifetime > 0 {
		return s.p.RefreshableAccessTokenLifetime
	}
	return DefaultRefreshableAccessTokenLifetime
}

// WithRefreshToken gives a new session a refresh token; its access token
// then expires.
func (s *Service) WithRefreshToken(ctx context.Context, sess Session) (Session, error) {
	rt := newToken("salon_rt_")
	life := s.accessLifetime()
	err := s.p.Store.AddRefreshToken(ctx, store.RefreshToken{
		TokenHash: HashToken(rt), UserID: sess.UserID, DeviceID: sess.DeviceID,
		AccessHash: HashToken(sess.AccessToken), AccessExpiresTS: s.p.Now().Add(life).UnixMilli(),
	})
	if err != nil {
		return Session{}, err
	}
	sess.RefreshToken, sess.ExpiresInMS = rt, life.Milliseconds()
	return sess, nil
}

// Refresh trades a refresh token for a new access token and refresh
// token. The old access token stops working at once; the old refresh
// token works until the new tokens are first used, so a client that lost
// the answer can ask again.
func (s *Service) Refresh(ctx context.Context, refreshToken string) (Session, error) {
	if refreshToken == "" {
		return Session{}, mxerr.New(mxerr.MissingParam, "Missing parameter refresh_token")
	}
	at, rt := newToken("salon_"), newToken("salon_rt_")
	life := s.accessLifetime()
	next, err := s.p.Store.RotateRefreshToken(ctx, HashToken(refreshToken), store.RefreshToken{
		TokenHash: HashToken(rt), AccessHash: HashToken(at), AccessExpiresTS: s.p.Now().Add(life).UnixMilli(),
	})
	if errors.Is(err, store.ErrNotFound) {
		return Session{}, mxerr.New(mxerr.UnknownToken, "Unknown or already used refresh token").With("soft_logout", false)
	}
	if err != nil {
		return Session{}, err
	}
	// The device's previous access token is no longer its token.
	s.forgetUser(next.UserID)
	return Session{UserID: next.UserID, DeviceID: next.DeviceID, AccessToken: at, RefreshToken: rt, ExpiresInMS: life.Milliseconds()}, nil
}

// accessExpiry tells the store an access token is in use and returns
// when it expires (zero: never).
func (s *Service) accessExpiry(ctx context.Context, tokenHash []byte) (time.Time, error) {
	ms, err := s.p.Store.UseAccessToken(ctx, tokenHash)
	if errors.Is(err, store.ErrNotFound) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, err
	}
	return time.UnixMilli(ms), nil
}
