package ldap

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/salonhq/salon/homeserver/store"
)

// Action is what the group sync does to one member of one room.
type Action int

const (
	ActionUnknown Action = iota
	// ActionInvite invites a group member (who may not have signed in yet).
	ActionInvite
	// ActionJoin joins a group member with an account (inviting first
	// when the room's join rule needs it).
	ActionJoin
	// ActionKick removes someone no longer in the group.
	ActionKick
	// ActionUnlink forgets that the sync added someone, who stays.
	ActionUnlink
)

func (a Action) String() string {
	switch a {
	case ActionInvite:
		return "invite"
	case ActionJoin:
		return "join"
	case ActionKick:
		return "remove"
	case ActionUnlink:
		return "unlink"
	}
	return "unknown"
}

// Change is one membership change the sync makes.
type Change struct {
	Action Action
	Room   string // as configured
	RoomID string
	UserID string
	Group  string
	Reason string
}

func (c Change) String() string {
	return fmt.Sprintf("%s %s %s (%s)", c.Action, c.UserID, c.Room, c.Reason)
}

// Plan is what a sync would do.
type Plan struct {
	Changes []Change
	// Problems are rooms the sync cannot manage (and why).
	Problems []string
}

// roomTarget is one configured room and the groups that feed it.
type roomTarget struct {
	room   string
	groups []int
}

func (s *Service) targets() []roomTarget {
	idx := map[string]int{}
	var out []roomTarget
	for gi, g := range s.cfg.Groups {
		for _, r := range g.Rooms {
			i, ok := idx[r]
			if !ok {
				i = len(out)
				idx[r] = i
				out = append(out, roomTarget{room: r})
			}
			out[i].groups = append(out[i].groups, gi)
		}
	}
	return out
}

// roomState is what the sync knows of one room.
type roomState struct {
	joined, invited, banned map[string]bool
	managed                 map[string]store.LDAPMembership
}

// decide is the sync's rule for one room, without I/O. desired maps each
// group member to the index of the group that wants them there; only, if
// set, limits the decision to one user (the sign-in sync).
//
//   - A member not in the room is invited, or joined in join mode when
//     they have an account — unless the sync added them before and they
//     left or declined since: that choice is theirs.
//   - Someone the sync added who left the group is removed when the
//     group says remove_leavers; otherwise only forgotten.
//   - Someone the sync did not add is never touched, unless a group of
//     the room says remove_hand_added.
func decide(t roomTarget, roomID string, groups []GroupConfig, desired map[string]int, st roomState, bot, only string, hasAccount func(string) bool) []Change {
	var out []Change
	users := make([]string, 0, len(desired))
	for u := range desired {
		users = append(users, u)
	}
	sort.Strings(users)
	for _, u := range users {
		if u == bot || (only != "" && u != only) || st.banned[u] || st.joined[u] {
			continue
		}
		g := groups[desired[u]]
		reason := "member of LDAP group " + g.Name()
		join := g.Mode == "join" && hasAccount(u)
		switch {
		case st.invited[u]:
			if join {
				out = append(out, Change{ActionJoin, t.room, roomID, u, g.Name(), reason})
			}
		case st.managed[u].UserID != "":
			// Added before and left or declined since: theirs to decide.
		case join:
			out = append(out, Change{ActionJoin, t.room, roomID, u, g.Name(), reason})
		default:
			out = append(out, Change{ActionInvite, t.room, roomID, u, g.Name(), reason})
		}
	}
	byName := map[string]GroupConfig{}
	handAdded := ""
	for _, gi := range t.groups {
		byName[groups[gi].Name()] = groups[gi]
		if groups[gi].RemoveHandAdded && handAdded == "" {
			handAdded = groups[gi].Name()
		}
	}
	managed := make([]string, 0, len(st.managed))
	for u := range st.managed {
		managed = append(managed, u)
	}
	sort.Strings(managed)
	for _, u := range managed {
		if (only != "" && u != only) || u == bot {
			continue
		}
		if _, ok := desired[u]; ok {
			continue
		}
		m := st.managed[u]
		g, ok := byName[m.Group]
		if ok && g.RemoveLeavers && (st.joined[u] || st.invited[u]) {
			out = append(out, Change{ActionKick, t.room, roomID, u, m.Group, "no longer a member of LDAP group " + m.Group})
		} else {
			out = append(out, Change{ActionUnlink, t.room, roomID, u, m.Group, "no longer a member of LDAP group " + m.Group})
		}
	}
	if handAdded != "" {
		var others []string
		for u := range st.joined {
			others = append(others, u)
		}
		for u := range st.invited {
			others = append(others, u)
		}
		sort.Strings(others)
		for _, u := range others {
			if _, ok := desired[u]; ok || u == bot || st.managed[u].UserID != "" || (only != "" && u != only) {
				continue
			}
			out = append(out, Change{ActionKick, t.room, roomID, u, handAdded, "not a member of LDAP group " + handAdded})
		}
	}
	return out
}

// directorySnapshot is every user entry the sync sees, read with paged
// searches, and the accounts linked to them.
type directorySnapshot struct {
	byDN    map[string]entry
	byLogin map[string]entry
	byID    map[string]entry
	links   map[string]store.LDAPUser // by entry ID
}

func (s *Service) snapshot(ctx context.Context, c *goldap.Conn) (*directorySnapshot, error) {
	es, err := s.dir.pagedSearch(c, s.dir.userFilter(""))
	if err != nil {
		return nil, err
	}
	snap := &directorySnapshot{byDN: map[string]entry{}, byLogin: map[string]entry{}, byID: map[string]entry{}, links: map[string]store.LDAPUser{}}
	for _, e := range es {
		snap.byDN[normaliseDN(e.DN)] = e
		snap.byLogin[strings.ToLower(e.Login)] = e
		if e.ID != "" {
			snap.byID[e.ID] = e
		}
	}
	links, err := s.p.Store.LDAPUsers(ctx)
	if err != nil {
		return nil, err
	}
	for _, l := range links {
		snap.links[l.EntryID] = l
	}
	return snap, nil
}

// userID is the Matrix ID an entry has (linked) or will have ("" if its
// localpart is unusable).
func (s *Service) userID(snap *directorySnapshot, e entry) string {
	if l, ok := snap.links[e.ID]; ok {
		return s.p.Auth.UserID(l.Localpart)
	}
	if s.p.Auth.CheckLocalpart(e.Localpart) != nil || e.Localpart == s.cfg.Sync.Account {
		return ""
	}
	return s.p.Auth.UserID(e.Localpart)
}

// groupMembers lists a group's members as Matrix IDs.
func (s *Service) groupMembers(c *goldap.Conn, snap *directorySnapshot, g GroupConfig) (map[string]bool, error) {
	out := map[string]bool{}
	add := func(e entry, ok bool) {
		if ok {
			if u := s.userID(snap, e); u != "" {
				out[u] = true
			}
		}
	}
	if g.Filter != "" {
		es, err := s.dir.pagedSearch(c, s.dir.userFilter(g.Filter))
		if err != nil {
			return nil, err
		}
		for _, e := range es {
			// Through the snapshot, so IDs agree with the user filter.
			se, ok := snap.byDN[normaliseDN(e.DN)]
			add(se, ok)
		}
		return out, nil
	}
	req := goldap.NewSearchRequest(g.DN, goldap.ScopeBaseObject, goldap.NeverDerefAliases, 1,
		int(s.cfg.Timeout.Seconds()+0.5), false, "(objectClass=*)", []string{g.MemberAttribute}, nil)
	res, err := s.dir.query(c, req)
	if goldap.IsErrorWithCode(err, goldap.LDAPResultNoSuchObject) {
		return nil, fmt.Errorf("group %s does not exist", g.DN)
	}
	if err != nil {
		return nil, classify(err)
	}
	for _, ge := range res.Entries {
		for _, v := range ge.GetAttributeValues(g.MemberAttribute) {
			if strings.EqualFold(g.MemberAttribute, "memberUid") {
				e, ok := snap.byLogin[strings.ToLower(v)]
				add(e, ok)
			} else {
				e, ok := snap.byDN[normaliseDN(v)]
				add(e, ok)
			}
		}
	}
	return out, nil
}

// Bot is the server-owned account that makes the sync's changes.
func (s *Service) Bot() string { return s.p.Auth.UserID(s.cfg.Sync.Account) }

// PlanSync computes a full sync without changing anything. The
// directory's entries are read in pages.
func (s *Service) PlanSync(ctx context.Context) (Plan, error) {
	plan, _, err := s.plan(ctx, "")
	return plan, err
}

func (s *Service) plan(ctx context.Context, only string) (Plan, *directorySnapshot, error) {
	var plan Plan
	c, err := s.dir.dial(ctx)
	if err != nil {
		return plan, nil, err
	}
	defer c.Close()
	snap, err := s.snapshot(ctx, c)
	if err != nil {
		return plan, nil, err
	}
	s.rememberFuture(snap)
	members := make([]map[string]bool, len(s.cfg.Groups))
	for i, g := range s.cfg.Groups {
		m, err := s.groupMembers(c, snap, g)
		if err != nil {
			if errors.Is(err, ErrUnavailable) {
				return plan, nil, err
			}
			plan.Problems = append(plan.Problems, fmt.Sprintf("group %s: %v", g.Name(), err))
			m = nil
		}
		members[i] = m
	}
	for _, t := range s.targets() {
		skip := false
		desired := map[string]int{}
		for _, gi := range t.groups {
			if members[gi] == nil {
				skip = true // a group could not be read: change nothing here
			}
			for u := range members[gi] {
				// A join-mode group wins over an invite-mode one.
				if prev, ok := desired[u]; !ok || (s.cfg.Groups[gi].Mode == "join" && s.cfg.Groups[prev].Mode != "join") {
					desired[u] = gi
				}
			}
		}
		if skip {
			plan.Problems = append(plan.Problems, fmt.Sprintf("room %s: left unchanged, a group it follows could not be read", t.room))
			continue
		}
		changes, problem, err := s.planRoom(ctx, t, desired, only)
		if err != nil {
			return plan, nil, err
		}
		if problem != "" {
			plan.Problems = append(plan.Problems, problem)
		}
		plan.Changes = append(plan.Changes, changes...)
	}
	return plan, snap, nil
}

// planRoom reads a room's memberships and decides.
func (s *Service) planRoom(ctx context.Context, t roomTarget, desired map[string]int, only string) ([]Change, string, error) {
	if s.p.Rooms == nil {
		return nil, "", errors.New("ldap: no rooms service")
	}
	roomID, err := s.p.Rooms.ResolveRoom(ctx, t.room)
	if err != nil {
		return nil, fmt.Sprintf("room %s: %v", t.room, err), nil
	}
	bot := s.Bot()
	m, err := s.p.Rooms.Membership(ctx, roomID, bot)
	if err != nil {
		return nil, fmt.Sprintf("room %s: %v", t.room, err), nil
	}
	if m != "join" && m != "invite" {
		return nil, fmt.Sprintf("room %s: the sync account %s is not in the room; invite it and give it the power level to invite and kick", t.room, bot), nil
	}
	st := roomState{joined: map[string]bool{}, invited: map[string]bool{}, banned: map[string]bool{}, managed: map[string]store.LDAPMembership{}}
	for membership, set := range map[string]map[string]bool{"join": st.joined, "invite": st.invited, "ban": st.banned} {
		us, err := s.p.Rooms.Members(ctx, roomID, membership)
		if err != nil {
			return nil, "", err
		}
		for _, u := range us {
			set[u] = true
		}
	}
	ms, err := s.p.Store.LDAPMemberships(ctx, roomID)
	if err != nil {
		return nil, "", err
	}
	for _, x := range ms {
		st.managed[x.UserID] = x
	}
	hasAccount := func(userID string) bool {
		lp, ok := s.p.Auth.Localpart(userID)
		if !ok {
			return false
		}
		acc, err := s.p.Store.Account(ctx, lp)
		return err == nil && !acc.Deactivated
	}
	return decide(t, roomID, s.cfg.Groups, desired, st, bot, only, hasAccount), "", nil
}

// pacer spaces the sync's writes out to changes_per_second.
type pacer struct {
	every time.Duration
	next  time.Time
}

// wait waits until n more changes may be written.
func (p *pacer) wait(ctx context.Context, n int) error {
	if p.every == 0 {
		return ctx.Err()
	}
	now := time.Now()
	if d := p.next.Sub(now); d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		now = p.next
	}
	p.next = now.Add(time.Duration(n) * p.every)
	return nil
}

// rememberFuture notes the future Matrix IDs of the people in a snapshot
// who have no account yet, for sync.interval.
func (s *Service) rememberFuture(snap *directorySnapshot) {
	future := map[string]bool{}
	for id, e := range snap.byID {
		if _, linked := snap.links[id]; !linked {
			if u := s.userID(snap, e); u != "" {
				future[u] = true
			}
		}
	}
	s.futureMu.Lock()
	s.future, s.futureUntil = future, s.p.Now().Add(s.cfg.Sync.Interval)
	s.futureMu.Unlock()
}
