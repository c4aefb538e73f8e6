package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/livekit/protocol/livekit"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/salonhq/salon/homeserver"
	"github.com/salonhq/salon/homeserver/delayed"
	"github.com/salonhq/salon/homeserver/store"
	"github.com/salonhq/salon/internal/mxerr"
	"github.com/salonhq/salon/sfu"
	"github.com/salonhq/salon/signaling"
)

// callAuthority answers the JWT service's questions from the homeserver:
// who an OpenID token belongs to, and what a user may do in a room's call.
type callAuthority struct{ hs *homeserver.Homeserver }

func (a callAuthority) OpenIDUser(ctx context.Context, token string) (string, error) {
	u, err := a.hs.Auth.OpenIDUser(ctx, token)
	var me *mxerr.Error
	if errors.As(err, &me) && me.Code == mxerr.UnknownToken {
		return "", fmt.Errorf("%w: %v", signaling.ErrBadOpenIDToken, err)
	}
	return u, err
}

func (a callAuthority) CallPermissions(ctx context.Context, userID, roomID string) (signaling.CallPermissions, error) {
	p, err := a.hs.Rooms.CallPermissions(ctx, userID, roomID)
	if err != nil {
		return signaling.CallPermissions{}, err
	}
	return signaling.CallPermissions{
		Joined: p.Joined, PublishAudio: p.PublishAudio, PublishVideo: p.PublishVideo,
		PublishScreen: p.PublishScreen, PublishData: p.PublishData, Moderate: p.Moderate,
	}, nil
}

func (a callAuthority) JoinedRooms(ctx context.Context, userID string) ([]string, error) {
	return a.hs.Rooms.JoinedRooms(ctx, userID)
}

// turnHolders answers the TURN relay's question — is a credential's holder
// still logged in? — from the homeserver's accounts and devices.
type turnHolders struct {
	st         store.Store
	serverName string
}

func (h turnHolders) Live(ctx context.Context, userID, deviceID string) (bool, error) {
	localpart, server, ok := strings.Cut(strings.TrimPrefix(userID, "@"), ":")
	if !ok || server != h.serverName {
		return false, nil // only this server's users get credentials
	}
	if deviceID != "" {
		// Logout and deactivation delete the device.
		_, err := h.st.Device(ctx, userID, deviceID)
		if errors.Is(err, store.ErrNotFound) {
			return false, nil
		}
		return err == nil, err
	}
	acc, err := h.st.Account(ctx, localpart)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return !acc.Deactivated, nil
}

// liveGrants hears from the homeserver of rooms whose call permissions
// may have changed and applies them to the embedded SFU's participants
// (the homeserver imports nothing of signaling).
type liveGrants struct{ s *server }

func (g liveGrants) CallGrantsChanged(ctx context.Context, roomID string) {
	// s.rtc is set while the server is wired, before the homeserver runs
	// (and calls this); nil with an external LiveKit.
	if rtc := g.s.rtc; rtc != nil {
		rtc.RoomChanged(ctx, roomID)
	}
}

// delayedLeaves gives the SFU's delegations (MSC4195) the homeserver's
// delayed events.
type delayedLeaves struct{ hs *homeserver.Homeserver }

func (d delayedLeaves) Delay(ctx context.Context, userID, delayID string) (time.Duration, error) {
	t, err := d.hs.Delayed.Delay(ctx, userID, delayID)
	if delayed.IsUnknownDelay(err) {
		return 0, fmt.Errorf("%w: %v", signaling.ErrUnknownDelay, err)
	}
	return t, err
}

func (d delayedLeaves) Act(ctx context.Context, delayID, action string) error {
	err := d.hs.Delayed.ActByID(ctx, delayID, action)
	if delayed.IsUnknownDelay(err) {
		return fmt.Errorf("%w: %v", signaling.ErrUnknownDelay, err)
	}
	return err
}

// rtcDelegation is the client-server API's way to the SFU's delegations
// (set once the SFU runs; without one the endpoint answers 404).
type rtcDelegation struct{ s *server }

func (r rtcDelegation) DelegateDelayedLeave(ctx context.Context, userID, roomID, slotID, deviceID, memberID, delayID string) error {
	d := r.s.delegations
	if d == nil {
		return mxerr.New(mxerr.Unrecognized, "Delegation needs the embedded SFU")
	}
	err := d.Delegate(ctx, signaling.DelegatedLeave{
		UserID: userID, RoomID: roomID, SlotID: slotID, DeviceID: deviceID, MemberID: memberID, DelayID: delayID,
	})
	switch {
	case errors.Is(err, signaling.ErrUnknownDelay):
		return mxerr.NotFoundf("Unknown delayed event")
	case errors.Is(err, signaling.ErrNotJoined):
		return mxerr.Forbid("You are not joined to this room")
	case errors.Is(err, signaling.ErrBadDelegation):
		return mxerr.New(mxerr.BadJSON, "Incomplete delegation")
	}
	return err
}

// delegationFor is the homeserver's way to delegated leaves: only the
// embedded SFU keeps them.
func delegationFor(cfg Config, s *server) homeserver.RTCDelegation {
	if cfg.LiveKit.External() {
		return nil
	}
	return rtcDelegation{s}
}

// jwtPath is where the MatrixRTC JWT service is mounted; sfuPath is the
// embedded SFU's WebSocket.
const (
	jwtPath = "/livekit/jwt"
	sfuPath = "/livekit/sfu"
)

// sfuURL is the SFU's WebSocket URL as clients reach it.
func sfuURL(base string) string {
	u, err := url.Parse(base)
	if err != nil {
		return ""
	}
	switch u.Scheme {
	case "https":
		u.Scheme = "wss"
	default:
		u.Scheme = "ws"
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + sfuPath
	return u.String()
}

// startJWT builds the MatrixRTC JWT service and mounts it.
func (s *server) startJWT(cfg Config, base string, log *slog.Logger, reg prometheus.Registerer, mux *http.ServeMux) error {
	var keys *signaling.KeySet
	if !cfg.LiveKit.External() {
		var err error
		if keys, err = signaling.LoadOrCreateKeys(cfg.LiveKit.KeysPath(cfg.DataDir)); err != nil {
			return fmt.Errorf("livekit keys: %w", err)
		}
	}
	s.livekitKeys = keys
	svc, err := signaling.NewJWTService(signaling.JWTParams{
		Config: cfg.LiveKit, Keys: keys, Authority: callAuthority{s.hs},
		SFUURL:     func() string { return sfuURL(base) },
		ServerName: cfg.ServerName, Logger: log, Registerer: reg,
	})
	if err != nil {
		return fmt.Errorf("livekit: %w", err)
	}
	mux.Handle(jwtPath+"/", livekitAccessLog(s.access, http.StripPrefix(jwtPath, svc.Handler())))
	if cfg.LiveKit.External() {
		return nil
	}
	return s.startSFU(cfg, svc, log, reg, mux)
}

// startSFU starts the embedded SFU and mounts its signalling WebSocket at
// sfuPath; participants are told about Salon's TURN relay.
func (s *server) startSFU(cfg Config, jwt *signaling.JWTService, log *slog.Logger, reg prometheus.Registerer, mux *http.ServeMux) error {
	media, err := sfu.New(sfu.Params{Config: cfg.SFU, Logger: log, Registerer: reg})
	if err != nil {
		return fmt.Errorf("sfu: %w", err)
	}
	s.close = append(s.close, media.Close)
	turnCreds := s.turnCreds
	rtc := signaling.NewRTC(signaling.RTCParams{
		SFU: media, Keys: s.livekitKeys, Logger: log, Registerer: reg,
		// Only members of a call's Matrix room connect and resume, and
		// changes of the room reach its call's participants live.
		Authority: callAuthority{s.hs},
		ICEServers: func(identity, name string) []*livekit.ICEServer {
			if turnCreds == nil {
				return nil
			}
			// The relay's credential names the Matrix user the token
			// names, so that it ends with the account; tokens that name
			// none (salon loadtest) get one for the identity.
			who := identity
			if strings.HasPrefix(name, "@") {
				who = name
			}
			t, ok := turnCreds(who, "")
			if !ok {
				return nil
			}
			return []*livekit.ICEServer{{Urls: t.URIs, Username: t.Username, Credential: t.Password}}
		},
	})
	s.rtc = rtc
	mux.Handle(sfuPath+"/", livekitAccessLog(s.access, http.StripPrefix(sfuPath, rtc.Handler())))

	// Delegated delayed leaves (MSC4195), kept while the SFU runs.
	d := signaling.NewDelegations(signaling.DelegationParams{
		SFU: media, Delayed: delayedLeaves{s.hs}, Authority: callAuthority{s.hs}, Logger: log,
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.Run(ctx)
	}()
	s.close = append(s.close, func() error {
		cancel()
		<-done
		return nil
	})
	s.delegations = d
	jwt.DelegateTo(d)
	return nil
}
