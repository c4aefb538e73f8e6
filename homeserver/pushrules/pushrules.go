// Package pushrules keeps each user's push rules (the spec's defaults plus
// the user's changes) and computes the unread notification and highlight
// counts /sync reports, by evaluating the rules on the events after the
// user's read receipt.
package pushrules

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"

	"github.com/salonhq/salon/homeserver/push"
	"github.com/salonhq/salon/homeserver/store"
)

// overridesType is the account data type that holds a user's changes. The
// effective rules are also written as m.push_rules, which clients read
// from /sync.
const overridesType = "org.salonhq.push_rules_overrides"

// RoomInfo is what counting needs to know of a room.
type RoomInfo interface {
	// MemberCount is the number of joined members.
	MemberCount(ctx context.Context, roomID string) (int, error)
	// PowerLevel returns a user's power level and a notification level.
	PowerLevels(ctx context.Context, roomID string) (user func(string) int64, notification func(string) int64, err error)
}

// Service is the push rules authority.
type Service struct {
	st    store.Store
	rooms RoomInfo
	// Notify wakes the user's /sync after their rules change.
	Notify func(pos int64, userID string)

	mu       sync.Mutex
	compiled map[string]*compiled
	counts   map[countKey]countState
}

type countKey struct{ user, room string }

// countState is a room's counts for a user as of position upto, counted
// from position after (their read receipt): a later sync only evaluates
// the events since upto.
type countState struct {
	after, upto      int64
	notif, highlight int
	scanned          int
}

type compiled struct {
	rs push.Ruleset
	c  *push.Compiled
}

// New returns a Service.
func New(st store.Store, rooms RoomInfo) *Service {
	return &Service{st: st, rooms: rooms, compiled: map[string]*compiled{}, counts: map[countKey]countState{}}
}

func localpart(userID string) string {
	lp, _, _ := strings.Cut(strings.TrimPrefix(userID, "@"), ":")
	return lp
}

func (s *Service) overrides(ctx context.Context, userID string) (push.Overrides, error) {
	var o push.Overrides
	b, err := s.st.AccountData(ctx, userID, "", overridesType)
	if errors.Is(err, store.ErrNotFound) {
		return o, nil
	}
	if err != nil {
		return o, err
	}
	return o, json.Unmarshal(b, &o)
}

// Rules returns a user's effective rules.
func (s *Service) Rules(ctx context.Context, userID string) (push.Ruleset, error) {
	c, err := s.get(ctx, userID)
	if err != nil {
		return push.Ruleset{}, err
	}
	return c.rs, nil
}

func (s *Service) get(ctx context.Context, userID string) (*compiled, error) {
	s.mu.Lock()
	c, ok := s.compiled[userID]
	s.mu.Unlock()
	if ok {
		return c, nil
	}
	o, err := s.overrides(ctx, userID)
	if err != nil {
		return nil, err
	}
	rs := push.Apply(push.Defaults(userID, localpart(userID)), o)
	c = &compiled{rs: rs, c: push.Compile(rs)}
	s.mu.Lock()
	if len(s.compiled) > 50_000 {
		clear(s.compiled)
	}
	s.compiled[userID] = c
	s.mu.Unlock()
	return c, nil
}

// Update applies a change to a user's rules and stores them.
func (s *Service) Update(ctx context.Context, userID string, change func(*push.Overrides) error) error {
	o, err := s.overrides(ctx, userID)
	if err != nil {
		return err
	}
	if err := change(&o); err != nil {
		return err
	}
	b, err := json.Marshal(o)
	if err != nil {
		return err
	}
	// The overrides and the m.push_rules clients read are one write at one
	// position, and one wake: a /sync woken by the change sees both (two
	// writes each waking /sync let a sync answer between them, without
	// m.push_rules).
	rs := push.Apply(push.Defaults(userID, localpart(userID)), o)
	all, err := json.Marshal(map[string]any{"global": rs})
	if err != nil {
		return err
	}
	pos, err := s.st.PutAccountDataBatch(ctx, userID, "", map[string][]byte{overridesType: b, "m.push_rules": all})
	if err != nil {
		return err
	}
	s.mu.Lock()
	delete(s.compiled, userID)
	for k := range s.counts {
		if k.user == userID {
			delete(s.counts, k)
		}
	}
	s.mu.Unlock()
	if s.Notify != nil {
		s.Notify(pos, userID)
	}
	return nil
}

// countScan bounds how many unread events are evaluated per room: beyond
// it the counts are a floor ("99+" in a client).
const countScan = 500

// Counts returns the unread notification and highlight counts of a room
// for a user: the events after their latest read receipt that the rules
// say notify (and highlight).
func (s *Service) Counts(ctx context.Context, userID, roomID string, _ int64) (notifications, highlights int, err error) {
	var after int64
	for _, typ := range []string{"m.read", "m.read.private"} {
		r, err := s.st.UserReceipt(ctx, roomID, userID, typ)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return 0, 0, err
		}
		if ev, err := s.st.Event(ctx, r.EventID); err == nil {
			after = max(after, ev.Pos)
		}
	}
	if after == 0 {
		// Never read anything: count from when the user joined.
		hist, err := s.st.StateHistory(ctx, roomID, "m.room.member", userID)
		if err != nil {
			return 0, 0, err
		}
		for i := len(hist) - 1; i >= 0; i-- {
			if hist[i].Membership == "join" {
				after = hist[i].Pos
				break
			}
		}
	}
	key := countKey{userID, roomID}
	s.mu.Lock()
	prev, ok := s.counts[key]
	s.mu.Unlock()
	from := after
	if ok && prev.after == after {
		from = prev.upto // only the events since the last count
		notifications, highlights = prev.notif, prev.highlight
	} else {
		prev = countState{after: after}
	}
	head := s.st.CurrentPos()
	if prev.scanned >= countScan {
		return notifications, highlights, nil
	}
	rows, err := s.st.RoomEvents(ctx, roomID, from, head+1, countScan-prev.scanned, false)
	if err != nil {
		return 0, 0, err
	}
	defer func() {
		if err == nil {
			upto := from
			if len(rows) > 0 {
				upto = rows[len(rows)-1].Pos
			}
			s.mu.Lock()
			if len(s.counts) > 200_000 {
				clear(s.counts)
			}
			s.counts[key] = countState{after: after, upto: upto, notif: notifications, highlight: highlights, scanned: prev.scanned + len(rows)}
			s.mu.Unlock()
		}
	}()
	if len(rows) == 0 {
		return notifications, highlights, nil
	}
	c, err := s.get(ctx, userID)
	if err != nil {
		return 0, 0, err
	}
	members, err := s.rooms.MemberCount(ctx, roomID)
	if err != nil {
		return 0, 0, err
	}
	userPL, notifPL, err := s.rooms.PowerLevels(ctx, roomID)
	if err != nil {
		return 0, 0, err
	}
	p, _ := s.st.Profile(ctx, userID)
	ec := push.EvalContext{UserID: userID, DisplayName: p.DisplayName, MemberCount: members,
		PowerLevelOf: userPL, NotificationLevel: notifPL}
	for _, row := range rows {
		if row.RedactedBy != "" {
			continue
		}
		n, h, _ := c.c.Evaluate(row.JSON, ec)
		if n {
			notifications++
		}
		if h {
			highlights++
		}
	}
	return notifications, highlights, nil
}
