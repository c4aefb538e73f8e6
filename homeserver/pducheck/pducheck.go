package pducheck

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/salonhq/salon/homeserver/authrules"
	"github.com/salonhq/salon/homeserver/events"
)

// Outcome is what becomes of a received PDU.
type Outcome int

const (
	OutcomeUnknown Outcome = iota
	// Accepted: the event passed every check; store it and apply it.
	Accepted
	// Dropped: not a valid event, or not signed as it must be; forget it
	// (the spec's "dropped": it is not stored at all).
	Dropped
	// Rejected: it fails the authorization rules against its auth events
	// or the state before it; store it as rejected (so that events citing
	// it are rejected too) and do not apply it.
	Rejected
	// SoftFailed: allowed by its history but not by the room's current
	// state; store it, keep it out of clients' timelines and out of the
	// forward extremities.
	SoftFailed
)

func (o Outcome) String() string {
	switch o {
	case Accepted:
		return "accepted"
	case Dropped:
		return "dropped"
	case Rejected:
		return "rejected"
	case SoftFailed:
		return "soft-failed"
	}
	return "unknown"
}

// Verdict is the result of Check.
type Verdict struct {
	Outcome Outcome
	// Event is the event as it is to be kept: the redacted copy when
	// Redacted. Nil when Dropped before the event could be parsed.
	Event *events.Event
	// Redacted is set when the content hash did not match (step 3): the
	// event goes on, and is kept, only in its redacted form. It combines
	// with any outcome but Dropped before step 3.
	Redacted bool
	// Reason says why the event was not Accepted; it wraps ErrInvalid,
	// ErrSignature, ErrAuthEvents, ErrStateBefore or ErrCurrentState, and
	// the underlying error (events' or authrules' sentinels).
	Reason error
}

// Sentinel reasons, one per failed step.
var (
	ErrInvalid      = errors.New("pdu: not a valid event of the room version")
	ErrSignature    = errors.New("pdu: signature check failed")
	ErrAuthEvents   = errors.New("pdu: not allowed by its auth events")
	ErrStateBefore  = errors.New("pdu: not allowed by the state before it")
	ErrCurrentState = errors.New("pdu: not allowed by the current state")
)

// Verifier finds the key a server signed with. federation.Keyring
// implements it: server's key keyID if it was valid at atMS.
type Verifier interface {
	VerifyKey(ctx context.Context, server, keyID string, atMS int64) (ed25519.PublicKey, error)
}

// Room is what the checks read about the room the event claims to be in.
// Errors from it (a missing event, the store) are returned by Check as
// they are, not as a verdict: the caller decides whether to fetch and try
// again.
type Room interface {
	// AuthEvents returns the events ev.AuthEvents names, in any order.
	AuthEvents(ctx context.Context, ev *events.Event) ([]*events.Event, error)
	// Rejected reports whether the event with this ID was rejected.
	Rejected(id string) bool
	// Create returns the room's m.room.create event: in v12 the event the
	// room ID names, which auth_events do not cite. Nil if unknown.
	Create(ctx context.Context) (*events.Event, error)
	// StateBefore is the room state before ev: the resolution of the
	// states after its prev_events.
	StateBefore(ctx context.Context, ev *events.Event) (authrules.AuthState, error)
	// CurrentState is the room's current state.
	CurrentState(ctx context.Context) (authrules.AuthState, error)
}

// Check runs the six checks on a PDU received for a room of version v and
// returns the verdict. It returns an error, and no verdict, only when
// verifier or room fail (a key or an event cannot be had, the context
// ends); the caller may retry later.
func Check(ctx context.Context, v events.RoomVersion, pdu []byte, verifier Verifier, room Room) (Verdict, error) {
	// 1. A valid event of the room version.
	ev, err := ParseEvent(v, pdu)
	if err != nil {
		return Verdict{Outcome: Dropped, Reason: err}, nil
	}

	// 2. Signed by every server that must sign it.
	if err := CheckSignatures(ctx, ev, verifier); err != nil {
		if !errors.Is(err, ErrSignature) {
			return Verdict{}, err
		}
		return Verdict{Outcome: Dropped, Event: ev, Reason: err}, nil
	}

	// 3. The content hash; a mismatch keeps only the redacted event.
	ev, redacted, err := CheckHash(ev)
	if err != nil {
		return Verdict{Outcome: Dropped, Reason: err}, nil
	}
	verdict := func(o Outcome, reason error) Verdict {
		return Verdict{Outcome: o, Event: ev, Redacted: redacted, Reason: reason}
	}

	// 4. Its own auth events.
	authEvents, err := room.AuthEvents(ctx, ev)
	if err != nil {
		return Verdict{}, err
	}
	var create *events.Event
	if authrules.HasPrivilegedCreators(v) && ev.Type != typeCreate {
		if create, err = room.Create(ctx); err != nil {
			return Verdict{}, err
		}
	}
	if err := CheckAuthEvents(ev, authEvents, room.Rejected, create); err != nil {
		return verdict(Rejected, err), nil
	}
	if ev.Type == typeCreate {
		return verdict(Accepted, nil), nil // it has no state before it
	}

	// 5. The state before it.
	before, err := room.StateBefore(ctx, ev)
	if err != nil {
		return Verdict{}, err
	}
	if err := authrules.Allowed(ev, before); err != nil {
		return verdict(Rejected, fmt.Errorf("%w: %w", ErrStateBefore, err)), nil
	}

	// 6. The current state.
	current, err := room.CurrentState(ctx)
	if err != nil {
		return Verdict{}, err
	}
	if err := authrules.Allowed(ev, current); err != nil {
		return verdict(SoftFailed, fmt.Errorf("%w: %w", ErrCurrentState, err)), nil
	}
	return verdict(Accepted, nil), nil
}

const typeCreate = "m.room.create"

// ParseEvent is step 1: the PDU parsed as an event of room version v, or an
// error wrapping ErrInvalid (and events' own sentinel: ErrBadJSON,
// ErrBadEvent, ErrTooLarge, ErrUnsupportedVersion).
func ParseEvent(v events.RoomVersion, pdu []byte) (*events.Event, error) {
	ev, err := events.Parse(v, pdu)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return ev, nil
}

// CheckSignatures is step 2: every server authrules.RequiredSigners names
// must have signed the (redacted) event with at least one ed25519 key the
// verifier knows, and every ed25519 signature of those servers must hold.
// A failure wraps ErrSignature; an error of the verifier that is not about
// the signature (the context, for instance) comes back as it is.
func CheckSignatures(ctx context.Context, ev *events.Event, verifier Verifier) error {
	var s struct {
		Signatures map[string]map[string]json.RawMessage `json:"signatures"`
	}
	if err := json.Unmarshal(ev.JSON, &s); err != nil {
		return fmt.Errorf("%w: signatures: %v", ErrSignature, err)
	}
	for _, server := range authrules.RequiredSigners(ev) {
		n := 0
		for keyID := range s.Signatures[server] {
			if !strings.HasPrefix(keyID, "ed25519:") {
				continue
			}
			pub, err := verifier.VerifyKey(ctx, server, keyID, ev.OriginServerTS)
			if err != nil {
				if ctx.Err() != nil {
					return err
				}
				return fmt.Errorf("%w: key %s of %s: %w", ErrSignature, keyID, server, err)
			}
			if err := events.VerifyEvent(ev, server, keyID, pub); err != nil {
				return fmt.Errorf("%w: %s: %w", ErrSignature, server, err)
			}
			n++
		}
		if n == 0 {
			return fmt.Errorf("%w: no signature by %s", ErrSignature, server)
		}
	}
	return nil
}

// CheckHash is step 3: the event as it is to be processed from here on,
// and whether it had to be redacted because its content hash does not
// match. An error means the redaction itself failed (an event that parsed
// always redacts).
func CheckHash(ev *events.Event) (*events.Event, bool, error) {
	err := events.CheckContentHash(ev)
	if err == nil {
		return ev, false, nil
	}
	if !errors.Is(err, events.ErrBadHash) {
		return nil, false, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	red, rerr := ev.Redacted()
	if rerr != nil {
		return nil, false, fmt.Errorf("%w: %w", ErrInvalid, rerr)
	}
	return red, true, nil
}

// CheckAuthEvents is step 4: the auth events ev cites, none rejected
// (rule 2.3), make up a valid auth state for ev (rules 2.1 and 2.2, and
// 2.4 or in v12 rule 2, with roomCreate), and the rules allow ev against
// it. A failure wraps ErrAuthEvents.
func CheckAuthEvents(ev *events.Event, authEvents []*events.Event, rejected func(id string) bool, roomCreate *events.Event) error {
	for _, ae := range authEvents {
		if ae != nil && rejected(ae.ID) {
			return fmt.Errorf("%w: auth event %s was rejected", ErrAuthEvents, ae.ID)
		}
	}
	st, err := authrules.CheckAuthEvents(ev, authEvents, roomCreate)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrAuthEvents, err)
	}
	if err := authrules.Allowed(ev, st); err != nil {
		return fmt.Errorf("%w: %w", ErrAuthEvents, err)
	}
	return nil
}
