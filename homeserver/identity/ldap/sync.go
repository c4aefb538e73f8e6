package ldap

import (
	"context"
	"errors"
	"fmt"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

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

// apply makes the changes through rooms, paced. A change that fails is
// logged and the rest go on.
func (s *Service) apply(ctx context.Context, changes []Change) (applied, failed int) {
	ready := map[string]bool{}
	for _, ch := range changes {
		if ctx.Err() != nil {
			return applied, failed
		}
		if !ready[ch.RoomID] {
			if err := s.botJoined(ctx, ch.RoomID); err != nil {
				s.log.Warn("LDAP group sync: the sync account cannot join", "room", ch.Room, "err", err)
				failed++
				continue
			}
			ready[ch.RoomID] = true
		}
		if ch.Action != ActionUnlink {
			if err := s.pace.wait(ctx); err != nil {
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
	}
	return applied, failed
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

func (s *Service) applyOne(ctx context.Context, ch Change) error {
	now := s.p.Now().UnixMilli()
	record := store.LDAPMembership{RoomID: ch.RoomID, UserID: ch.UserID, Group: ch.Group, AddedTS: now}
	switch ch.Action {
	case ActionInvite:
		if err := s.p.Rooms.Invite(ctx, ch.RoomID, s.Bot(), ch.UserID, ch.Reason, s.profile); err != nil {
			return err
		}
		return s.p.Store.PutLDAPMembership(ctx, record)
	case ActionJoin:
		m, err := s.p.Rooms.Membership(ctx, ch.RoomID, ch.UserID)
		if err != nil {
			return err
		}
		if m != "invite" {
			// A room anyone may join needs no invite; others do.
			if _, err := s.p.Rooms.Join(ctx, ch.RoomID, ch.UserID, ch.Reason, s.profile); err == nil {
				return s.p.Store.PutLDAPMembership(ctx, record)
			}
			if err := s.p.Rooms.Invite(ctx, ch.RoomID, s.Bot(), ch.UserID, ch.Reason, s.profile); err != nil {
				return err
			}
		}
		if err := s.p.Store.PutLDAPMembership(ctx, record); err != nil {
			return err
		}
		_, err = s.p.Rooms.Join(ctx, ch.RoomID, ch.UserID, ch.Reason, s.profile)
		return err
	case ActionKick:
		if err := s.p.Rooms.Kick(ctx, ch.RoomID, s.Bot(), ch.UserID, ch.Reason); err != nil {
			return err
		}
		return s.p.Store.DeleteLDAPMembership(ctx, ch.RoomID, ch.UserID)
	case ActionUnlink:
		return s.p.Store.DeleteLDAPMembership(ctx, ch.RoomID, ch.UserID)
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
	case equalFold(g.MemberAttribute, "memberUid"):
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
