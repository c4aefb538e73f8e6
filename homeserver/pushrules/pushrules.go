// Package pushrules keeps each user's push rules (the spec's defaults plus
// the user's changes) and computes the unread notification and highlight
// counts /sync reports, by evaluating the rules on the events after the
// user's read receipts: an unthreaded receipt covers every event up to
// it, a "main" receipt the main timeline only, and a receipt in a thread
// that thread only.
package pushrules

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strconv"
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
	// positions caches the positions of events threaded receipts name.
	positions map[posKey]int64
	// names caches display names by member event (displayName).
	names map[nameKey]string
}

type posKey struct{ room, event string }

type countKey struct{ user, room string }

// countState is a room's counts for a user as of position upto, counted
// from position after (their unthreaded read receipt) with the threaded
// receipts fp names: a later sync only evaluates the events since upto.
type countState struct {
	after, upto int64
	fp          string
	main        Count
	threads     map[string]Count
	scanned     int
}

// Count is one timeline's unread counts.
type Count struct {
	Notifications, Highlights int
}

type compiled struct {
	rs push.Ruleset
	c  *push.Compiled
}

// New returns a Service.
func New(st store.Store, rooms RoomInfo) *Service {
	return &Service{st: st, rooms: rooms, compiled: map[string]*compiled{}, counts: map[countKey]countState{},
		positions: map[posKey]int64{}, names: map[nameKey]string{}}
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

// relThread is the relation that puts an event in a thread.
const relThread = "m.thread"

// Counts returns the unread notification and highlight counts of a room
// for a user, the main timeline and every thread together: the events
// after their read receipts that the rules say notify (and highlight).
func (s *Service) Counts(ctx context.Context, userID, roomID string, _ int64) (notifications, highlights int, err error) {
	main, threads, err := s.ThreadedCounts(ctx, userID, roomID)
	if err != nil {
		return 0, 0, err
	}
	notifications, highlights = main.Notifications, main.Highlights
	for _, c := range threads {
		notifications += c.Notifications
		highlights += c.Highlights
	}
	return notifications, highlights, nil
}

// receiptPositions returns the position the user's unthreaded receipts
// (m.read and m.read.private) reach, 0 without one, and for each thread
// ("main" for the main timeline) the position its threaded receipts reach
// when that is further.
func (s *Service) receiptPositions(ctx context.Context, userID, roomID string) (int64, map[string]int64, error) {
	var after int64
	var threaded []store.Receipt
	for _, typ := range []string{"m.read", "m.read.private"} {
		r, err := s.st.UserReceipt(ctx, roomID, userID, typ)
		switch {
		case err == nil:
			if ev, err := s.st.Event(ctx, r.EventID); err == nil {
				after = max(after, ev.Pos)
			}
		case !errors.Is(err, store.ErrNotFound):
			return 0, nil, err
		}
		rs, err := s.st.UserThreadReceipts(ctx, roomID, userID, typ)
		if err != nil {
			return 0, nil, err
		}
		threaded = append(threaded, rs...)
	}
	var byThread map[string]int64
	for _, r := range threaded {
		if r.Pos <= after {
			// Written before the unthreaded receipt's event, so its
			// event is older still: covered.
			continue
		}
		pos, ok := s.eventPos(ctx, roomID, r.EventID)
		if !ok || pos <= after {
			continue
		}
		if byThread == nil {
			byThread = map[string]int64{}
		}
		byThread[r.ThreadID] = max(byThread[r.ThreadID], pos)
	}
	return after, byThread, nil
}

// eventPos returns the position of an event of the room that a threaded
// receipt names; positions never change, so they are kept.
func (s *Service) eventPos(ctx context.Context, roomID, eventID string) (int64, bool) {
	s.mu.Lock()
	k := posKey{roomID, eventID}
	pos, ok := s.positions[k]
	s.mu.Unlock()
	if ok {
		return pos, true
	}
	ev, err := s.st.Event(ctx, eventID)
	if err != nil || ev.RoomID != roomID {
		return 0, false
	}
	s.mu.Lock()
	if len(s.positions) > 100_000 {
		clear(s.positions)
	}
	s.positions[k] = ev.Pos
	s.mu.Unlock()
	return ev.Pos, true
}

// fingerprint names the threaded receipt positions, for the count cache.
func fingerprint(byThread map[string]int64) string {
	if len(byThread) == 0 {
		return ""
	}
	keys := make([]string, 0, len(byThread))
	for k := range byThread {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(strconv.FormatInt(byThread[k], 10))
		b.WriteByte(';')
	}
	return b.String()
}

// threadHops bounds how many relations threadOf follows from an event to
// find its thread (the spec recommends 3).
const threadHops = 3

// threadOf returns the root of the thread an event of the room belongs
// to, "" for the main timeline: an event with an m.thread relation is in
// its root's thread (the root itself is not), and an event relating to a
// threaded event otherwise (a reaction, an edit, a reference), directly or
// through up to threadHops relations, is in that event's thread.
func (s *Service) threadOf(ctx context.Context, row store.EventRow) string {
	cur := row
	for hop := 0; ; hop++ {
		if cur.RelatesTo == "" {
			return ""
		}
		if cur.RelType == relThread {
			return cur.RelatesTo
		}
		if hop == threadHops {
			return ""
		}
		target, err := s.st.Event(ctx, cur.RelatesTo)
		if err != nil || target.RoomID != row.RoomID {
			return ""
		}
		cur = target
	}
}

// ThreadedCounts returns the unread counts of a room's main timeline for
// a user and those of each thread with unread notifications (by thread
// root), honouring threaded read receipts.
func (s *Service) ThreadedCounts(ctx context.Context, userID, roomID string) (main Count, threads map[string]Count, err error) {
	after, byThread, err := s.receiptPositions(ctx, userID, roomID)
	if err != nil {
		return Count{}, nil, err
	}
	if after == 0 {
		// Never read anything: count from when the user joined.
		hist, err := s.st.StateHistory(ctx, roomID, "m.room.member", userID)
		if err != nil {
			return Count{}, nil, err
		}
		for i := len(hist) - 1; i >= 0; i-- {
			if hist[i].Membership == "join" {
				after = hist[i].Pos
				break
			}
		}
		for k, p := range byThread {
			if p <= after {
				delete(byThread, k)
			}
		}
	}
	fp := fingerprint(byThread)
	key := countKey{userID, roomID}
	s.mu.Lock()
	prev, ok := s.counts[key]
	s.mu.Unlock()
	from := after
	if ok && prev.after == after && prev.fp == fp {
		from = prev.upto // only the events since the last count
		main, threads = prev.main, maps.Clone(prev.threads)
	} else {
		prev = countState{after: after, fp: fp}
	}
	head := s.st.CurrentPos()
	if prev.scanned >= countScan {
		return main, threads, nil
	}
	rows, err := s.st.RoomEvents(ctx, roomID, from, head+1, countScan-prev.scanned, false)
	if err != nil {
		return Count{}, nil, err
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
			s.counts[key] = countState{after: after, upto: upto, fp: fp, main: main, threads: maps.Clone(threads),
				scanned: prev.scanned + len(rows)}
			s.mu.Unlock()
		}
	}()
	if len(rows) == 0 {
		return main, threads, nil
	}
	c, err := s.get(ctx, userID)
	if err != nil {
		return Count{}, nil, err
	}
	members, err := s.rooms.MemberCount(ctx, roomID)
	if err != nil {
		return Count{}, nil, err
	}
	userPL, notifPL, err := s.rooms.PowerLevels(ctx, roomID)
	if err != nil {
		return Count{}, nil, err
	}
	ec := push.EvalContext{UserID: userID, DisplayName: s.displayName(ctx, roomID, userID), MemberCount: members,
		PowerLevelOf: userPL, NotificationLevel: notifPL}
	for _, row := range rows {
		if row.RedactedBy != "" {
			continue
		}
		n, h, _ := c.c.Evaluate(row.JSON, ec)
		if !n {
			continue
		}
		thread := s.threadOf(ctx, row)
		receiptKey := thread
		if thread == "" {
			receiptKey = "main"
		}
		if row.Pos <= byThread[receiptKey] {
			continue // read by a threaded receipt
		}
		add := func(c *Count) {
			c.Notifications++
			if h {
				c.Highlights++
			}
		}
		if thread == "" {
			add(&main)
			continue
		}
		if threads == nil {
			threads = map[string]Count{}
		}
		tc := threads[thread]
		add(&tc)
		threads[thread] = tc
	}
	return main, threads, nil
}
