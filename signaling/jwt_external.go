package signaling

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/livekit/protocol/auth"
)

// LiveKit's recommended setup for MatrixRTC turns room auto-creation off
// (livekit.yaml `room: auto_create: false`): only the JWT service creates
// rooms, and a token for a room that does not exist cannot join. So, like
// lk-jwt-service for users of its own homeserver (all of Salon's users),
// the service creates the room through LiveKit's RoomService API before it
// hands out a token for an external deployment. The embedded SFU creates
// rooms on join and needs none of this.

const (
	// Kept like lk-jwt-service's: a room nobody joins goes after five
	// minutes, one everybody left after twenty seconds.
	externalRoomEmptyTimeout     = 5 * 60
	externalRoomDepartureTimeout = 20
	externalRoomTimeout          = 5 * time.Second
	externalAdminTokenTTL        = time.Minute
)

// externalRooms creates rooms on an external LiveKit deployment.
type externalRooms struct {
	endpoint    string // https://HOST/twirp/livekit.RoomService/CreateRoom
	key, secret string
	client      *http.Client
}

func newExternalRooms(cfg JWTConfig) (*externalRooms, error) {
	u, err := url.Parse(cfg.ExternalURL)
	if err != nil {
		return nil, fmt.Errorf("signaling: %s.external_url: %w", JWTConfigSection, err)
	}
	switch u.Scheme {
	case "wss":
		u.Scheme = "https"
	case "ws":
		u.Scheme = "http"
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + "/twirp/livekit.RoomService/CreateRoom"
	return &externalRooms{
		endpoint: u.String(),
		key:      cfg.ExternalKey,
		secret:   string(cfg.ExternalSecret),
		// One request per call join: no idle connections (and no
		// goroutines) kept between them.
		client: &http.Client{
			Timeout:   externalRoomTimeout,
			Transport: &http.Transport{DisableKeepAlives: true, Proxy: http.ProxyFromEnvironment},
		},
	}, nil
}

// create makes sure the room exists; LiveKit answers an existing room
// with that room, so it may be called for every token.
func (e *externalRooms) create(ctx context.Context, room string) error {
	admin, err := auth.NewAccessToken(e.key, e.secret).
		SetVideoGrant(&auth.VideoGrant{RoomCreate: true}).
		SetValidFor(externalAdminTokenTTL).
		ToJWT()
	if err != nil {
		return fmt.Errorf("signing RoomService token: %w", err)
	}
	body, _ := json.Marshal(map[string]any{
		"name":              room,
		"empty_timeout":     externalRoomEmptyTimeout,
		"departure_timeout": externalRoomDepartureTimeout,
	})
	ctx, cancel := context.WithTimeout(ctx, externalRoomTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.endpoint, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+admin)
	resp, err := e.client.Do(req)
	if err != nil {
		return fmt.Errorf("CreateRoom: %w", err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("CreateRoom: %s: %s", resp.Status, bytes.TrimSpace(msg))
	}
	return nil
}
