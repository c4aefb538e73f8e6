package auth

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/salonhq/salon/internal/mxerr"
)

// User-interactive authentication (Client-Server API, "User-Interactive
// Authentication API"): a request that needs it is answered 401 with the
// flows and a session until the client has completed every stage of one
// flow in that session.

// AuthDict is the "auth" member of a UIA request.
type AuthDict struct {
	Type       string          `json:"type"`
	Session    string          `json:"session"`
	Password   string          `json:"password"`
	Token      string          `json:"token"`
	Identifier json.RawMessage `json:"identifier"`
	User       string          `json:"user"` // deprecated form of identifier
}

// StageChecker checks one stage's credentials; it returns an mxerr error
// (M_FORBIDDEN, ...) when they are wrong. An error with an explicit 403
// status is returned as is; others become the 401 that asks again.
type StageChecker func(ctx context.Context, a AuthDict) error

type uiaSession struct {
	completed []string
	// bound is what the session was started for (a request's path and
	// user), so a session completed for one request cannot authorise
	// another.
	bound string
	// user is the logged-in user the session authenticates (InteractiveAs),
	// so a stage completed out of band (m.login.sso through its fallback
	// page) counts only for that user.
	user    string
	expires time.Time
}

type uiaStore struct {
	mu       sync.Mutex
	sessions map[string]*uiaSession
}

const uiaTTL = 15 * time.Minute

// Interactive runs one step of user-interactive auth for a request bound to
// bind (e.g. "register" or "delete_devices:@alice:hs"). It returns nil when
// a flow is complete, and otherwise the 401 answer to send.
func (s *Service) Interactive(ctx context.Context, raw json.RawMessage, bind string, flows [][]string, stages map[string]StageChecker) error {
	return s.InteractiveAs(ctx, raw, bind, "", flows, stages)
}

// InteractiveAs is Interactive for a request of the logged-in userID: its
// session can also be completed out of band by CompleteStage (the
// m.login.sso fallback page).
func (s *Service) InteractiveAs(ctx context.Context, raw json.RawMessage, bind, userID string, flows [][]string, stages map[string]StageChecker) error {
	var a AuthDict
	if len(raw) > 0 && string(raw) != "null" {
		if err := json.Unmarshal(raw, &a); err != nil {
			return mxerr.BadJSONf("auth must be an object")
		}
	}
	now := s.p.Now()
	s.uiaMu().Lock()
	st := s.uia.sessions
	for id, ss := range st {
		if now.After(ss.expires) {
			delete(st, id)
		}
	}
	sess, ok := st[a.Session]
	if !ok || sess.bound != bind {
		a.Session = newSessionID()
		sess = &uiaSession{bound: bind, user: userID, expires: now.Add(uiaTTL)}
		if len(st) < 100_000 {
			st[a.Session] = sess
		}
	}
	completed := slices.Clone(sess.completed)
	s.uia.mu.Unlock()

	var stageErr error
	if a.Type != "" {
		check, known := stages[a.Type]
		switch {
		case !known:
			stageErr = mxerr.New(mxerr.Unrecognized, "Unknown auth stage %q", a.Type).WithStatus(http.StatusUnauthorized)
		case slices.Contains(completed, a.Type):
			// Done already in this session (m.login.sso through its
			// fallback page): naming it again proves nothing new.
		default:
			if err := check(ctx, a); err != nil {
				stageErr = err
			} else if !slices.Contains(completed, a.Type) {
				completed = append(completed, a.Type)
				s.uia.mu.Lock()
				sess.completed = completed
				s.uia.mu.Unlock()
			}
		}
	}
	for _, f := range flows {
		done := true
		for _, stage := range f {
			if !slices.Contains(completed, stage) {
				done = false
				break
			}
		}
		if done && stageErr == nil {
			s.uia.mu.Lock()
			delete(s.uia.sessions, a.Session)
			s.uia.mu.Unlock()
			return nil
		}
	}
	flowList := make([]map[string]any, len(flows))
	for i, f := range flows {
		flowList[i] = map[string]any{"stages": f}
	}
	e := &mxerr.Error{Status: http.StatusUnauthorized, Fields: map[string]any{
		"flows": flowList, "params": map[string]any{}, "session": a.Session,
	}}
	if len(completed) > 0 {
		e.Fields["completed"] = completed
	}
	if me, ok := stageErr.(*mxerr.Error); ok && me.Status == http.StatusForbidden {
		// A stage that names its own 403 (credentials of another user)
		// ends the attempt instead of asking for the stage again.
		return me
	} else if ok {
		e.Code, e.Message = me.Code, me.Message
	} else if stageErr != nil {
		return stageErr
	}
	return e
}

func (s *Service) uiaMu() *sync.Mutex {
	s.uiaOnce.Do(func() { s.uia.sessions = map[string]*uiaSession{} })
	return &s.uia.mu
}

func newSessionID() string {
	b := make([]byte, 18)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// ErrNoUIASession is CompleteStage's answer for a session that does not
// exist, has expired, or belongs to another user.
var ErrNoUIASession = errors.New("auth: no such user-interactive auth session for this user")

// CompleteStage marks stage done in a UIA session of userID, for a stage
// whose proof arrives outside the API request (m.login.sso: the user
// signed in again at the identity provider). The client then retries its
// request with the session and the flow completes.
func (s *Service) CompleteStage(session, userID, stage string) error {
	now := s.p.Now()
	s.uiaMu().Lock()
	defer s.uia.mu.Unlock()
	sess, ok := s.uia.sessions[session]
	if !ok || now.After(sess.expires) || sess.user == "" || sess.user != userID {
		return ErrNoUIASession
	}
	if !slices.Contains(sess.completed, stage) {
		sess.completed = append(sess.completed, stage)
	}
	return nil
}

// UIASessionUser returns the user a live UIA session authenticates ("" when
// the session is unknown, expired or not bound to a user).
func (s *Service) UIASessionUser(session string) string {
	now := s.p.Now()
	s.uiaMu().Lock()
	defer s.uia.mu.Unlock()
	sess, ok := s.uia.sessions[session]
	if !ok || now.After(sess.expires) {
		return ""
	}
	return sess.user
}
