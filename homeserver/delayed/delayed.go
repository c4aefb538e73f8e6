// Package delayed runs MSC4140 delayed events: events a user schedules to
// be sent after a delay unless they restart (heartbeat) or cancel it. A
// MatrixRTC client schedules its own "leave the call" this way, so a
// crashed client drops out of the call. Delayed events are stored, so they
// survive a restart and fire on time after it (those whose time passed
// while the server was down fire at start).
package delayed

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/salonhq/salon/homeserver/rooms"
	"github.com/salonhq/salon/homeserver/store"
	"github.com/salonhq/salon/internal/mxerr"
)

// Sender sends an event as a user (the rooms service).
type Sender interface {
	Send(ctx context.Context, roomID, sender string, e rooms.Event) (string, error)
	// CheckEvent refuses an event Send would refuse for its form (bad
	// JSON, too large), with the same error.
	CheckEvent(ctx context.Context, roomID, sender string, e rooms.Event) error
	Membership(ctx context.Context, roomID, userID string) (string, error)
}

// Params configure a Scheduler.
type Params struct {
	Store    store.Store
	Rooms    Sender
	MaxDelay time.Duration // longest delay accepted
	PerUser  int           // most delayed events one user may have pending
	Now      func() time.Time
	Logger   *slog.Logger
}

// Scheduler keeps delayed events and sends them when due.
type Scheduler struct {
	p    Params
	wake chan struct{}

	// txns remembers the delay_id given for a transaction ID, so that a
	// retried PUT /send/{type}/{txnId}?delay= schedules nothing new
	// (transaction identifiers, spec section "Transaction identifiers").
	txnMu sync.Mutex
	txns  map[txnKey]txnEntry
	// txnOne serialises scheduling with a transaction ID.
	txnOne sync.Mutex
}

type txnKey struct{ user, device, room, txn string }

type txnEntry struct {
	delayID string
	at      time.Time
}

// txnMemory is how long a transaction ID is remembered: retries come
// within seconds or minutes.
const txnMemory = 30 * time.Minute

// New returns a Scheduler; Run must run for events to fire.
func New(p Params) *Scheduler {
	if p.Now == nil {
		p.Now = time.Now
	}
	if p.Logger == nil {
		p.Logger = slog.New(slog.DiscardHandler)
	}
	return &Scheduler{p: p, wake: make(chan struct{}, 1), txns: map[txnKey]txnEntry{}}
}

func (s *Scheduler) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Request is one event to schedule.
type Request struct {
	UserID, DeviceID, RoomID, Type string
	StateKey                       *string
	Content                        json.RawMessage
	DelayMS                        int64
	// TxnID is the client's transaction ID (message events); a second
	// request with the same one gets the first one's delay_id.
	TxnID string
}

// Replayed returns the delay_id already given for a transaction of the
// user's device in the room, if any.
func (s *Scheduler) Replayed(userID, deviceID, roomID, txnID string) (string, bool) {
	if txnID == "" {
		return "", false
	}
	s.txnMu.Lock()
	defer s.txnMu.Unlock()
	e, ok := s.txns[txnKey{userID, deviceID, roomID, txnID}]
	if !ok || s.p.Now().Sub(e.at) > txnMemory {
		return "", false
	}
	return e.delayID, true
}

func (s *Scheduler) remember(r Request, delayID string) {
	now := s.p.Now()
	s.txnMu.Lock()
	defer s.txnMu.Unlock()
	for k, e := range s.txns {
		if now.Sub(e.at) > txnMemory {
			delete(s.txns, k)
		}
	}
	s.txns[txnKey{r.UserID, r.DeviceID, r.RoomID, r.TxnID}] = txnEntry{delayID: delayID, at: now}
}

// event is the event r sends.
func (r Request) event() rooms.Event {
	return rooms.Event{Type: r.Type, StateKey: r.StateKey, Content: r.Content, Device: r.DeviceID}
}

// Schedule stores a delayed event and returns its delay_id. A request
// repeating a transaction ID gets the delay_id it got the first time.
func (s *Scheduler) Schedule(ctx context.Context, r Request) (string, error) {
	if r.TxnID == "" {
		return s.schedule(ctx, r)
	}
	// One transaction at a time, so that two concurrent retries cannot
	// both schedule.
	s.txnOne.Lock()
	defer s.txnOne.Unlock()
	s.txnMu.Lock()
	e, ok := s.txns[txnKey{r.UserID, r.DeviceID, r.RoomID, r.TxnID}]
	s.txnMu.Unlock()
	if ok && s.p.Now().Sub(e.at) <= txnMemory {
		return e.delayID, nil
	}
	id, err := s.schedule(ctx, r)
	if err != nil {
		return "", err
	}
	s.remember(r, id)
	return id, nil
}

func (s *Scheduler) schedule(ctx context.Context, r Request) (string, error) {
	max := s.p.MaxDelay.Milliseconds()
	if r.DelayMS <= 0 {
		return "", mxerr.InvalidParamf("org.matrix.msc4140.delay must be a positive number of milliseconds")
	}
	if r.DelayMS > max {
		return "", mxerr.New(mxerr.MaxDelayExceeded, "The requested delay exceeds the allowed maximum").
			With("max_delay", max).With("org.matrix.msc4140.max_delay", max)
	}
	if m, err := s.p.Rooms.Membership(ctx, r.RoomID, r.UserID); err != nil || m != "join" {
		return "", mxerr.Forbid("You are not joined to this room")
	}
	// What is accepted now must be sendable later: the content is checked
	// by the rule an immediate send applies, not found bad when it fires.
	if err := s.p.Rooms.CheckEvent(ctx, r.RoomID, r.UserID, r.event()); err != nil {
		return "", err
	}
	n, err := s.p.Store.CountUserDelayed(ctx, r.UserID)
	if err != nil {
		return "", err
	}
	if n >= s.p.PerUser {
		e := mxerr.RateLimited(1000)
		e.Message = "The maximum number of delayed events has been reached"
		return "", e
	}
	b := make([]byte, 18)
	_, _ = rand.Read(b)
	now := s.p.Now().UnixMilli()
	d := store.DelayedEvent{
		DelayID: "syd_" + base64.RawURLEncoding.EncodeToString(b), UserID: r.UserID, DeviceID: r.DeviceID,
		RoomID: r.RoomID, Type: r.Type, StateKey: r.StateKey, Content: r.Content,
		DelayMS: r.DelayMS, RunningSince: now, FireTS: now + r.DelayMS,
	}
	if err := s.p.Store.AddDelayed(ctx, d); err != nil {
		return "", err
	}
	s.poke()
	return d.DelayID, nil
}

var errUnknownDelay = mxerr.NotFoundf("Unknown delayed event")

// ErrFinalised marks the answer to an action on a delayed event that was
// already finalised otherwise (a restart or send of a cancelled one, a
// cancel or restart of a sent one): MSC4140's 409 M_UNKNOWN.
var ErrFinalised = errors.New("delayed: the delayed event was already finalised")

// Act restarts, cancels or sends now one of the user's delayed events.
// Another user's delayed event answers as if it did not exist.
func (s *Scheduler) Act(ctx context.Context, userID, delayID, action string) error {
	return s.act(ctx, &userID, delayID, action)
}

// ActByID acts on a delayed event for whoever holds its delay ID, which
// is the capability: MSC4140's unauthenticated management endpoints, and
// a service acting for the client (MSC4195's delegated leave).
func (s *Scheduler) ActByID(ctx context.Context, delayID, action string) error {
	return s.act(ctx, nil, delayID, action)
}

func (s *Scheduler) act(ctx context.Context, userID *string, delayID, action string) error {
	switch action {
	case "restart", "cancel", "send":
	default:
		return mxerr.InvalidParamf("action must be restart, cancel or send")
	}
	d, err := s.p.Store.DelayedEvent(ctx, delayID)
	if errors.Is(err, store.ErrNotFound) {
		return s.finalisedAnswer(ctx, userID, delayID, action)
	}
	if err != nil {
		return err
	}
	if userID != nil && d.UserID != *userID {
		return errUnknownDelay
	}
	switch action {
	case "restart":
		now := s.p.Now().UnixMilli()
		if err := s.p.Store.RestartDelayed(ctx, delayID, now, now+d.DelayMS); errors.Is(err, store.ErrNotFound) {
			return s.finalisedAnswer(ctx, userID, delayID, action)
		} else if err != nil {
			return err
		}
		s.poke()
		return nil
	case "cancel":
		_, err := s.p.Store.FinaliseDelayed(ctx, delayID, store.DelayedOutcomeCancel, store.DelayedReasonAction, s.p.Now().UnixMilli())
		if errors.Is(err, store.ErrNotFound) {
			return s.finalisedAnswer(ctx, userID, delayID, action)
		} else if err != nil {
			return err
		}
		s.poke()
		return nil
	default: // send
		return s.fire(ctx, d, store.DelayedReasonAction)
	}
}

// finalisedAnswer answers an action on a delayed event that is no longer
// scheduled. MSC4140 lets a client retry safely: a send of a sent event
// and a cancel of a cancelled (or failed) one succeed; any other action on
// a finalised event is a conflict (ErrFinalised); an event never
// scheduled, long gone or another user's is unknown (404).
func (s *Scheduler) finalisedAnswer(ctx context.Context, userID *string, delayID, action string) error {
	f, err := s.p.Store.FinalisedDelayed(ctx, delayID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && userID != nil && f.UserID != *userID) {
		return errUnknownDelay
	}
	if err != nil {
		return err
	}
	switch {
	case action == "send" && f.Outcome == store.DelayedOutcomeSend:
		return nil
	case action == "cancel" && f.Outcome != store.DelayedOutcomeSend:
		return nil
	}
	what := "sent"
	if f.Outcome != store.DelayedOutcomeSend {
		what = "cancelled"
	}
	return fmt.Errorf("%w: %w", ErrFinalised,
		mxerr.New(mxerr.Unknown, "The delayed event was already %s", what).WithStatus(http.StatusConflict))
}

// Delay is the delay of one of the user's pending delayed events (MSC4195
// delegation paces its restarts by it).
func (s *Scheduler) Delay(ctx context.Context, userID, delayID string) (time.Duration, error) {
	d, err := s.p.Store.DelayedEvent(ctx, delayID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && d.UserID != userID) {
		return 0, errUnknownDelay
	}
	if err != nil {
		return 0, err
	}
	return time.Duration(d.DelayMS) * time.Millisecond, nil
}

// IsUnknownDelay reports whether err says a delayed event is not (or no
// longer) scheduled: unknown, or finalised otherwise (for its caller).
func IsUnknownDelay(err error) bool {
	return errors.Is(err, errUnknownDelay) || errors.Is(err, ErrFinalised)
}

// fire claims a delayed event (finalising it, so it is sent once) and
// sends it. reason is DelayedReasonAction for a send the client asked
// for: then a failure is the answer and the event goes back in the
// schedule so the client may retry (MSC4140); one whose time came is kept
// finalised with the error.
func (s *Scheduler) fire(ctx context.Context, d store.DelayedEvent, reason string) error {
	_, err := s.p.Store.FinaliseDelayed(ctx, d.DelayID, store.DelayedOutcomeSend, reason, s.p.Now().UnixMilli())
	if errors.Is(err, store.ErrNotFound) {
		if reason == store.DelayedReasonAction {
			return s.finalisedAnswer(ctx, nil, d.DelayID, "send")
		}
		return errUnknownDelay
	} else if err != nil {
		return err
	}
	ev := Request{Type: d.Type, StateKey: d.StateKey, Content: d.Content, DeviceID: d.DeviceID}.event()
	ev.DelayID = d.DelayID
	eventID, err := s.p.Rooms.Send(ctx, d.RoomID, d.UserID, ev)
	if err != nil {
		s.p.Logger.Info("delayed event could not be sent", "delay_id", d.DelayID, "room", d.RoomID, "err", err)
		if reason == store.DelayedReasonAction {
			if rerr := s.p.Store.RescheduleDelayed(context.WithoutCancel(ctx), d); rerr != nil {
				s.p.Logger.Warn("delayed event: put back after a failed send", "delay_id", d.DelayID, "err", rerr)
			}
			s.poke()
			return err
		}
		s.result(ctx, d.DelayID, store.DelayedOutcomeError, "", errorResponse(err))
		return err
	}
	s.result(ctx, d.DelayID, store.DelayedOutcomeSend, eventID, nil)
	return nil
}

func (s *Scheduler) result(ctx context.Context, delayID, outcome, eventID string, errJSON []byte) {
	if err := s.p.Store.SetFinalisedResult(context.WithoutCancel(ctx), delayID, outcome, eventID, errJSON); err != nil && !errors.Is(err, store.ErrNotFound) {
		s.p.Logger.Warn("delayed event: record the result", "delay_id", delayID, "err", err)
	}
}

// errorResponse is err as the standard error response a finalised
// delayed event's "error" holds.
func errorResponse(err error) []byte {
	body := map[string]string{"errcode": string(mxerr.Unknown), "error": "The event could not be sent"}
	var me *mxerr.Error
	if errors.As(err, &me) {
		body["errcode"], body["error"] = string(me.Code), me.Message
	}
	b, _ := json.Marshal(body)
	return b
}

// Run sends delayed events when they are due, until ctx ends.
func (s *Scheduler) Run(ctx context.Context) error {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		wait := s.fireDue(ctx)
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return nil
		case <-s.wake:
		case <-timer.C:
		}
	}
}

// fireDue sends every due event and returns how long until the next.
func (s *Scheduler) fireDue(ctx context.Context) time.Duration {
	for ctx.Err() == nil {
		next, err := s.p.Store.NextDelayed(ctx, 32)
		if err != nil {
			s.p.Logger.Warn("delayed events: read", "err", err)
			return 5 * time.Second
		}
		if len(next) == 0 {
			return time.Hour
		}
		now := s.p.Now().UnixMilli()
		fired := 0
		for _, d := range next {
			if d.FireTS > now {
				if fired == 0 {
					return time.Duration(d.FireTS-now) * time.Millisecond
				}
				break
			}
			_ = s.fire(ctx, d, store.DelayedReasonDelay)
			fired++
		}
	}
	return time.Hour
}
