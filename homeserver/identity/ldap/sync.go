package ldap

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/salonhq/salon/homeserver/rooms"
	"github.com/salonhq/salon/homeserver/store"
	"github.com/salonhq/salon/internal/mxerr"
)

// Run runs the group sync until ctx ends: a full sync at start and every
// sync.interval, and a sync of each user who signs in. A directory that
// cannot be reached is logged and tried again at the next interval.
func (s *Service) Run(ctx context.Context) error {
	t := time.NewTicker(s.cfg.Sync.Interval)
	defer t.Stop()
	for {
		if err := s.Sync(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("LDAP sync", "err", err)
		}
		for waiting := true; waiting; {
			select {
			case <-ctx.Done():
				return nil
			case u := <-s.signins:
				if err := s.SyncUser(ctx, u); err != nil && ctx.Err() == nil {
					s.log.Warn("LDAP sign-in group sync", "user", u, "err", err)
				}
			case <-t.C:
				waiting = false
			}
		}
	}
}

// ensureBot makes the server-owned sync account (no password: nobody
// signs in as it).
func (s *Service) ensureBot(ctx context.Context) error {
	_, err := s.p.Store.Account(ctx, s.cfg.Sync.Account)
	if errors.Is(err, store.ErrNotFound) {
		_, err = s.p.Auth.CreateAccount(ctx, s.cfg.Sync.Account, "", false)
		var me *mxerr.Error
		if errors.As(err, &me) && me.Code == mxerr.UserInUse {
			return nil
		}
		if err == nil {
			err = s.p.Store.SetDisplayName(ctx, s.Bot(), "LDAP group sync")
		}
	}
	return err
}

// Sync runs one full sync now: the group sync's changes, then the check
// for accounts whose entries are gone.
func (s *Service) Sync(ctx context.Context) error {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	start, q0 := time.Now(), s.dir.queries.Load()
	var report SyncReport
	defer func() {
		report.Took, report.Queries = time.Since(start), s.dir.queries.Load()-q0
		s.last = report
	}()
	var snap *directorySnapshot
	if len(s.cfg.Groups) > 0 && s.p.Rooms != nil {
		if err := s.ensureBot(ctx); err != nil {
			return fmt.Errorf("sync account: %w", err)
		}
		plan, sn, err := s.plan(ctx, "")
		if err != nil {
			return err
		}
		snap = sn
		for _, p := range plan.Problems {
			s.log.Warn("LDAP group sync", "problem", p)
		}
		report.Changes, report.Failed = s.apply(ctx, plan.Changes)
		s.markRooms(ctx)
		if report.Changes+report.Failed > 0 {
			s.log.Info("LDAP group sync done", "changes", report.Changes, "failed", report.Failed,
				"ldap_queries", s.dir.queries.Load()-q0, "took", time.Since(start))
		}
	} else {
		c, err := s.dir.dial(ctx)
		if err != nil {
			return err
		}
		snap, err = s.snapshot(ctx, c)
		c.Close()
		if err != nil {
			return err
		}
	}
	return s.checkMissing(ctx, snap)
}

// maxBatch bounds the invites (or removals) sent into one room in one
// write: the room is locked while a batch is stored.
const maxBatch = 200

// apply makes the changes through rooms, paced. Invites and removals in
// one room are sent in batches (one write each), joins one at a time. A
// change that fails is logged and the rest go on.
func (s *Service) apply(ctx context.Context, changes []Change) (applied, failed int) {
	ready := map[string]bool{}
	for i := 0; i < len(changes); {
		if ctx.Err() != nil {
			return applied, failed
		}
		ch := changes[i]
		if !ready[ch.RoomID] {
			if err := s.botJoined(ctx, ch.RoomID); err != nil {
				s.log.Warn("LDAP group sync: the sync account cannot join", "room", ch.Room, "err", err)
				// Every change of the room fails the same way.
				for ; i < len(changes) && changes[i].RoomID == ch.RoomID; i++ {
					failed++
				}
				continue
			}
			ready[ch.RoomID] = true
		}
		if ch.Action == ActionInvite || ch.Action == ActionKick {
			n := 1
			for n < s.batchSize() && i+n < len(changes) && changes[i+n].Action == ch.Action && changes[i+n].RoomID == ch.RoomID {
				n++
			}
			if err := s.pace.wait(ctx, n); err != nil {
				return applied, failed
			}
			ok, bad := s.applyMany(ctx, changes[i:i+n])
			applied, failed, i = applied+ok, failed+bad, i+n
			continue
		}
		if ch.Action != ActionUnlink {
			if err := s.pace.wait(ctx, 1); err != nil {
				return applied, failed
			}
		}
		if err := s.applyOne(ctx, ch); err != nil {
			failed++
			s.log.Warn("LDAP group sync change failed", "change", ch.String(), "err", err)
		} else if ch.Action != ActionUnlink {
			applied++
			s.log.Debug("LDAP group sync", "action", ch.Action.String(), "user", ch.UserID, "room", ch.RoomID, "group", ch.Group)
		}
		i++
	}
	return applied, failed
}

// batchSize is how many invites or removals go in one write: at most a
// second's worth of changes_per_second, so the pace stays even.
func (s *Service) batchSize() int {
	n := int(s.cfg.Sync.ChangesPerSecond)
	return max(1, min(n, maxBatch))
}

// applyMany sends invites (or removals) into one room in one write and
// records them as the sync's own (or forgets them), in one transaction.
func (s *Service) applyMany(ctx context.Context, chs []Change) (applied, failed int) {
	people := make([]rooms.Invitee, len(chs))
	for i, ch := range chs {
		people[i] = rooms.Invitee{UserID: ch.UserID, Reason: ch.Reason}
	}
	room, kick := chs[0].RoomID, chs[0].Action == ActionKick
	var errs []error
	var err error
	if kick {
		errs, err = s.p.Rooms.KickMany(ctx, room, s.Bot(), people)
	} else {
		errs, err = s.p.Rooms.InviteMany(ctx, room, s.Bot(), people, s.profile)
	}
	if err != nil {
		s.log.Warn("LDAP group sync changes failed", "room", chs[0].Room, "action", chs[0].Action.String(), "changes", len(chs), "err", err)
		return 0, len(chs)
	}
	now := s.p.Now().UnixMilli()
	var records []store.LDAPMembership
	var gone []string
	for i, ch := range chs {
		switch {
		case errs[i] == nil && kick:
			gone = append(gone, ch.UserID)
		case errs[i] == nil:
			records = append(records, store.LDAPMembership{RoomID: ch.RoomID, UserID: ch.UserID, Group: ch.Group, AddedTS: now})
		case errors.Is(errs[i], rooms.ErrAlreadyInvited):
			// Invited meanwhile by someone else: theirs, not the sync's.
			continue
		default:
			failed++
			s.log.Warn("LDAP group sync change failed", "change", ch.String(), "err", errs[i])
			continue
		}
		s.log.Debug("LDAP group sync", "action", ch.Action.String(), "user", ch.UserID, "room", ch.RoomID, "group", ch.Group)
	}
	if kick {
		err = s.p.Store.DeleteLDAPMemberships(ctx, room, gone...)
	} else {
		err = s.p.Store.PutLDAPMemberships(ctx, records...)
	}
	if err != nil {
		s.log.Warn("LDAP group sync: recording the changes failed", "room", chs[0].Room, "err", err)
		return 0, failed + len(records) + len(gone)
	}
	return len(records) + len(gone), failed
}

// LastSync reports what the last full sync did.
func (s *Service) LastSync() SyncReport {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	return s.last
}

// botJoined joins the sync account to a room it was invited to.
func (s *Service) botJoined(ctx context.Context, roomID string) error {
	m, err := s.p.Rooms.Membership(ctx, roomID, s.Bot())
	if err != nil || m == "join" {
		return err
	}
	_, err = s.p.Rooms.Join(ctx, roomID, s.Bot(), "", s.profile)
	return err
}

func (s *Service) profile(ctx context.Context, userID string) (string, string) {
	p, _ := s.p.Store.Profile(ctx, userID)
	return p.DisplayName, p.AvatarURL
}

// applyOne makes a join or an unlink (invites and removals go in
// batches, applyMany).
func (s *Service) applyOne(ctx context.Context, ch Change) error {
	now := s.p.Now().UnixMilli()
	record := store.LDAPMembership{RoomID: ch.RoomID, UserID: ch.UserID, Group: ch.Group, AddedTS: now}
	switch ch.Action {
	case ActionJoin:
		m, err := s.p.Rooms.Membership(ctx, ch.RoomID, ch.UserID)
		if err != nil {
			return err
		}
		if m != "invite" {
			// A room anyone may join needs no invite; others do.
			if _, err := s.p.Rooms.Join(ctx, ch.RoomID, ch.UserID, ch.Reason, s.profile); err == nil {
				return s.p.Store.PutLDAPMemberships(ctx, record)
			}
			if err := s.p.Rooms.Invite(ctx, ch.RoomID, s.Bot(), ch.UserID, ch.Reason, s.profile); err != nil {
				return err
			}
		}
		if err := s.p.Store.PutLDAPMemberships(ctx, record); err != nil {
			return err
		}
		_, err = s.p.Rooms.Join(ctx, ch.RoomID, ch.UserID, ch.Reason, s.profile)
		return err
	case ActionUnlink:
		return s.p.Store.DeleteLDAPMemberships(ctx, ch.RoomID, ch.UserID)
	}
	return fmt.Errorf("unknown action %v", ch.Action)
}

// SyncUser syncs one user's group memberships (after they signed in),
// asking the directory only about them.
func (s *Service) SyncUser(ctx context.Context, userID string) error {
	if len(s.cfg.Groups) == 0 || s.p.Rooms == nil {
		return nil
	}
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	lp, ok := s.p.Auth.Localpart(userID)
	if !ok {
		return nil
	}
	link, err := s.p.Store.LDAPUserByLocalpart(ctx, lp)
	if err != nil {
		return err
	}
	c, err := s.dir.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	e, err := s.dir.byID(c, link.EntryID)
	if err != nil {
		return err
	}
	in := make([]bool, len(s.cfg.Groups))
	if e != nil {
		for i, g := range s.cfg.Groups {
			if in[i], err = s.inGroup(c, *e, g); err != nil {
				return err
			}
		}
	}
	var changes []Change
	for _, t := range s.targets() {
		desired := map[string]int{}
		for _, gi := range t.groups {
			if in[gi] {
				if prev, ok := desired[userID]; !ok || (s.cfg.Groups[gi].Mode == "join" && s.cfg.Groups[prev].Mode != "join") {
					desired[userID] = gi
				}
			}
		}
		cs, problem, err := s.planRoom(ctx, t, desired, userID)
		if err != nil {
			return err
		}
		if problem != "" {
			s.log.Warn("LDAP group sync", "problem", problem)
		}
		changes = append(changes, cs...)
	}
	s.apply(ctx, changes)
	return nil
}

// inGroup asks the directory whether one entry is in a group.
func (s *Service) inGroup(c *goldap.Conn, e entry, g GroupConfig) (bool, error) {
	base, filter := g.DN, ""
	switch {
	case g.Filter != "":
		base, filter = e.DN, s.dir.userFilter(g.Filter)
	case strings.EqualFold(g.MemberAttribute, "memberUid"):
		filter = eq(g.MemberAttribute, e.Login)
	default:
		filter = eq(g.MemberAttribute, e.DN)
	}
	req := goldap.NewSearchRequest(base, goldap.ScopeBaseObject, goldap.NeverDerefAliases, 1,
		int(s.cfg.Timeout.Seconds()+0.5), false, filter, []string{"1.1"}, nil)
	res, err := s.dir.query(c, req)
	if goldap.IsErrorWithCode(err, goldap.LDAPResultNoSuchObject) {
		return false, nil
	}
	if err != nil {
		return false, classify(err)
	}
	return len(res.Entries) == 1, nil
}

// checkMissing records the linked entries that are gone from the
// directory (or no longer match the user filter), and in deactivate mode
// deactivates their accounts once deactivate_after has passed. An empty
// directory answer changes nothing: it is more likely a fault than
// everyone leaving.
func (s *Service) checkMissing(ctx context.Context, snap *directorySnapshot) error {
	if len(snap.byID) == 0 && len(snap.links) > 0 {
		s.log.Warn("LDAP search found no users at all; not treating linked accounts as gone")
		return nil
	}
	now := s.p.Now()
	for id, l := range snap.links {
		if _, ok := snap.byID[id]; ok {
			if l.MissingSinceTS != 0 {
				if err := s.p.Store.SetLDAPMissing(ctx, id, 0); err != nil {
					return err
				}
			}
			continue
		}
		if l.MissingSinceTS == 0 {
			s.log.Info("LDAP entry gone or disabled; its account can no longer sign in", "user", l.Localpart, "dn", l.DN)
			if err := s.p.Store.SetLDAPMissing(ctx, id, now.UnixMilli()); err != nil {
				return err
			}
			l.MissingSinceTS = now.UnixMilli()
		}
		if s.cfg.Missing != "deactivate" || now.UnixMilli()-l.MissingSinceTS < s.cfg.DeactivateAfter.Milliseconds() {
			continue
		}
		acc, err := s.p.Store.Account(ctx, l.Localpart)
		if err != nil || acc.Deactivated {
			continue
		}
		if err := s.p.Auth.Deactivate(ctx, l.Localpart); err != nil {
			return err
		}
		s.log.Info("account deactivated: its LDAP entry has been gone for longer than ldap.deactivate_after", "user", acc.UserID, "dn", l.DN)
	}
	return nil
}
