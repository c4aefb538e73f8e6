package rooms

import (
	"context"
	"errors"

	"github.com/salonhq/salon/homeserver/mxerr"
	"github.com/salonhq/salon/homeserver/store"
)

// Invitee is one person of an InviteMany batch, with the reason their
// invite carries.
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
	if err := s.mayChangeOthers(ctx, roomID, sender, "invite"); err != nil {
		return nil, err
	}
	// What needs a lookup of its own (the invitee exists, their profile)
	// is read before the room is locked.
	errs := make([]error, len(invitees))
	extras := make([]map[string]any, len(invitees))
	for i, in := range invitees {
		if err := s.checkInvitee(ctx, in.UserID); err != nil {
			errs[i] = err
			continue
		}
		if len(in.Reason) > 1024 {
			errs[i] = mxerr.InvalidParamf("reason is too long")
			continue
		}
		extras[i] = s.profileFields(ctx, profile, in.UserID)
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
	for i, in := range invitees {
		if errs[i] != nil {
			continue
		}
		switch r.membership(in.UserID) {
		case "join":
			errs[i] = mxerr.Forbid("%s is already in the room", in.UserID)
			continue
		case "invite":
			errs[i] = ErrAlreadyInvited
			continue
		}
		c := extras[i]
		c["membership"] = "invite"
		if in.Reason != "" {
			c["reason"] = in.Reason
		}
		target := in.UserID
		// build changes nothing when it fails: the batch goes on.
		if _, err := s.build(r, sender, Event{Type: "m.room.member", StateKey: &target, Content: mustJSON(c)}, batch); err != nil {
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
