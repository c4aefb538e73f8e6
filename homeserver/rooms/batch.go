package rooms

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/salonhq/salon/homeserver/events"
	"github.com/salonhq/salon/homeserver/store"
)

// Invitee is one person of an InviteMany or KickMany batch, with the
// reason their membership event carries.
type Invitee struct {
	UserID string
	Reason string
}

// ErrAlreadyInvited answers an InviteMany invitee who is invited already:
// nothing was sent for them.
var ErrAlreadyInvited = errors.New("rooms: already invited")

// InviteMany invites several people into one room as sender, in one
// write: each invite is checked as Invite checks it and authorised
// against the state the one before it left, all are stored in one
// transaction, and the room's members and the invitees are woken once.
// It is for a server-side service inviting many at a time (the LDAP group
// sync); the room stays locked while the batch is built and stored, so
// keep batches to a few hundred.
//
// The answer has one error per invitee, in order: nil (invited),
// ErrAlreadyInvited, or why they could not be invited. The second return
// is an error that stopped the whole batch (the sender may not invite,
// or the store failed): nothing was invited then.
func (s *Service) InviteMany(ctx context.Context, roomID, sender string, invitees []Invitee, profile Profile) ([]error, error) {
	return s.changeMany(ctx, roomID, sender, "invite", invitees, profile)
}

// KickMany removes several people from one room as sender, in one write,
// as InviteMany invites: one error per person (nil: removed; someone not
// joined, invited or knocking is refused alone), and an error that
// stopped the whole batch.
func (s *Service) KickMany(ctx context.Context, roomID, sender string, people []Invitee) ([]error, error) {
	return s.changeMany(ctx, roomID, sender, "kick", people, nil)
}

// changeMany is InviteMany and KickMany: op is "invite" or "kick".
func (s *Service) changeMany(ctx context.Context, roomID, sender, op string, people []Invitee, profile Profile) ([]error, error) {
	if err := s.mayChangeOthers(ctx, roomID, sender, op); err != nil {
		return nil, err
	}
	// What needs a lookup of its own (the invitee exists, their profile)
	// is read before the room is locked.
	errs := make([]error, len(people))
	content := make([]json.RawMessage, len(people))
	for i, p := range people {
		var extra map[string]any
		membership := "leave"
		if op == "invite" && events.ValidUserID(p.UserID) {
			if err := s.checkInvitee(ctx, p.UserID); err != nil {
				errs[i] = err
				continue
			}
			extra, membership = s.profileFields(ctx, profile, p.UserID), "invite"
		}
		content[i], errs[i] = memberContent(p.UserID, membership, p.Reason, extra)
	}
	r, err := s.lockRoom(ctx, roomID)
	if err == errUnknownRoom {
		return nil, errNotJoined
	}
	if err != nil {
		return nil, err
	}
	defer r.mu.Unlock()
	batch := &store.EventBatch{}
	var wake []string
	for i, p := range people {
		if errs[i] != nil {
			continue
		}
		m := r.membership(p.UserID)
		if err := targetRefusal(op, p.UserID, m); err != nil {
			errs[i] = err
			continue
		}
		if op == "invite" && m == "invite" {
			errs[i] = ErrAlreadyInvited
			continue
		}
		target := p.UserID
		// build changes nothing when it fails: the batch goes on.
		if _, err := s.build(r, sender, Event{Type: "m.room.member", StateKey: &target, Content: content[i]}, batch); err != nil {
			errs[i] = err
			continue
		}
		wake = append(wake, target)
	}
	if len(batch.Events) == 0 {
		return errs, nil
	}
	if _, err := s.commit(ctx, r, batch, wake...); err != nil {
		return nil, err
	}
	return errs, nil
}
