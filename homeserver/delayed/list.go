package delayed

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"

	"github.com/salonhq/salon/homeserver/store"
	"github.com/salonhq/salon/internal/mxerr"
)

// Getting delayed events (MSC4140, "Getting delayed events"): a user's
// scheduled and finalised delayed events, filtered, ordered by a time and
// paged with tokens.

// Orders of a listing (order_by).
const (
	OrderSendTS         = "send_ts"          // running_since + delay (default)
	OrderOriginServerTS = "origin_server_ts" // finalised at, or send_ts while scheduled
	OrderRunningSince   = "running_since"
)

// Query selects and orders a user's delayed events.
type Query struct {
	OrderBy  string // Order*; "" is send_ts
	Backward bool   // dir=b
	// From is a token from a previous page; it wins over Since.
	From string
	// Since is where the first page starts (ms); SinceEnd starts from the
	// latest possible; SinceAll from the earliest (the unstable listing,
	// which clients read whole).
	Since              int64
	SinceEnd, SinceAll bool
	// Filters; empty matches all.
	Status   string // "scheduled" or "finalised"
	RoomID   string
	Type     string
	Outcome  string   // store.DelayedOutcome*
	Reason   string   // store.DelayedReason*
	DelayIDs []string // the older MSC text's delay_id filter
	Limit    int
}

// Page is one page of a listing. Scheduled events have Outcome "".
type Page struct {
	Events     []store.FinalisedDelayed
	Next, Prev string // tokens: Next when going forward, Prev backward
}

// ParseQuery reads and checks a listing's query parameters; an unknown
// value is 400 M_INVALID_PARAM.
func ParseQuery(get func(string) []string, now int64) (Query, error) {
	one := func(k string) (string, error) {
		v := get(k)
		if len(v) > 1 {
			return "", mxerr.InvalidParamf("%s given more than once", k)
		}
		if len(v) == 0 {
			return "", nil
		}
		return v[0], nil
	}
	q := Query{Since: now}
	var err error
	check := func(k string, dst *string, allowed ...string) {
		if err != nil {
			return
		}
		var v string
		if v, err = one(k); err == nil && v != "" && !slices.Contains(allowed, v) {
			err = mxerr.InvalidParamf("%s must be one of %s", k, strings.Join(allowed, ", "))
		}
		*dst = v
	}
	var dir, since string
	check("order_by", &q.OrderBy, OrderSendTS, OrderOriginServerTS, OrderRunningSince)
	check("dir", &dir, "f", "b")
	check("status", &q.Status, "scheduled", "finalised")
	check("outcome", &q.Outcome, store.DelayedOutcomeSend, store.DelayedOutcomeCancel, store.DelayedOutcomeError)
	check("reason", &q.Reason, store.DelayedReasonAction, store.DelayedReasonDelay)
	if err != nil {
		return Query{}, err
	}
	q.Backward = dir == "b"
	if q.RoomID, err = one("room_id"); err != nil {
		return Query{}, err
	}
	if q.Type, err = one("type"); err != nil {
		return Query{}, err
	}
	if q.From, err = one("from"); err != nil {
		return Query{}, err
	}
	if q.From != "" {
		if _, _, ok := parseToken(q.From); !ok {
			return Query{}, mxerr.InvalidParamf("from is not a token this server gave")
		}
	}
	if since, err = one("since_ts"); err != nil {
		return Query{}, err
	}
	switch since {
	case "":
	case "end":
		q.SinceEnd = true
	default:
		n, perr := strconv.ParseInt(since, 10, 64)
		if perr != nil || n < 0 {
			return Query{}, mxerr.InvalidParamf("since_ts must be a timestamp in milliseconds or \"end\"")
		}
		q.Since = n
	}
	q.DelayIDs = get("delay_id")
	return q, nil
}

// List is a page of the user's delayed events.
func (s *Scheduler) List(ctx context.Context, userID string, q Query) (Page, error) {
	scheduled, err := s.p.Store.UserDelayed(ctx, userID)
	if err != nil {
		return Page{}, err
	}
	finalised, err := s.p.Store.UserFinalisedDelayed(ctx, userID)
	if err != nil {
		return Page{}, err
	}
	all := make([]store.FinalisedDelayed, 0, len(scheduled)+len(finalised))
	for _, d := range scheduled {
		all = append(all, store.FinalisedDelayed{DelayedEvent: d})
	}
	return page(append(all, finalised...), q), nil
}

// Get is one of the user's delayed events, scheduled or finalised;
// another user's answers as unknown.
func (s *Scheduler) Get(ctx context.Context, userID, delayID string) (store.FinalisedDelayed, error) {
	d, err := s.p.Store.DelayedEvent(ctx, delayID)
	if err == nil && d.UserID == userID {
		return store.FinalisedDelayed{DelayedEvent: d}, nil
	}
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return store.FinalisedDelayed{}, err
	}
	f, err := s.p.Store.FinalisedDelayed(ctx, delayID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && f.UserID != userID) {
		return store.FinalisedDelayed{}, errUnknownDelay
	}
	return f, err
}

// orderKey is the time an event sorts by.
func orderKey(e store.FinalisedDelayed, orderBy string) int64 {
	send := e.RunningSince + e.DelayMS
	switch orderBy {
	case OrderRunningSince:
		return e.RunningSince
	case OrderOriginServerTS:
		if e.Outcome != "" {
			return e.FinalisedTS
		}
		return send
	default:
		return send
	}
}

func (q Query) matches(e store.FinalisedDelayed) bool {
	finalised := e.Outcome != ""
	switch {
	case q.Status == "scheduled" && finalised, q.Status == "finalised" && !finalised:
		return false
	case q.RoomID != "" && e.RoomID != q.RoomID, q.Type != "" && e.Type != q.Type:
		return false
	case q.Outcome != "" && e.Outcome != q.Outcome, q.Reason != "" && (!finalised || e.Reason != q.Reason):
		return false
	case len(q.DelayIDs) > 0 && !slices.Contains(q.DelayIDs, e.DelayID):
		return false
	}
	return true
}

// page filters, orders and cuts one page. Ties in time go by delay ID,
// so a token (the last event's time and ID) resumes exactly after it.
func page(all []store.FinalisedDelayed, q Query) Page {
	limit := q.Limit
	if limit <= 0 {
		limit = 10 // MSC4140's recommended batch size
	}
	type item struct {
		key int64
		e   store.FinalisedDelayed
	}
	var items []item
	for _, e := range all {
		if q.matches(e) {
			items = append(items, item{orderKey(e, q.OrderBy), e})
		}
	}
	less := func(a, b item) int {
		return cmp.Or(cmp.Compare(a.key, b.key), strings.Compare(a.e.DelayID, b.e.DelayID))
	}
	slices.SortFunc(items, func(a, b item) int {
		if q.Backward {
			return less(b, a)
		}
		return less(a, b)
	})
	// Where the page starts: after the token's event, or at Since. The
	// token is read once, not for each event.
	fromKey, fromID, fromOK := parseToken(q.From)
	from := item{fromKey, store.FinalisedDelayed{DelayedEvent: store.DelayedEvent{DelayID: fromID}}}
	after := func(it item) bool {
		if q.From != "" && fromOK {
			c := less(it, from)
			if q.Backward {
				return c < 0
			}
			return c > 0
		}
		switch {
		case q.SinceAll:
			return true
		case q.SinceEnd:
			return q.Backward
		case q.Backward:
			return it.key <= q.Since
		default:
			return it.key >= q.Since
		}
	}
	start := slices.IndexFunc(items, after)
	if start < 0 {
		start = len(items)
	}
	items = items[start:]
	var p Page
	if len(items) > limit {
		last := items[limit-1]
		tok := strconv.FormatInt(last.key, 10) + "." + last.e.DelayID
		if q.Backward {
			p.Prev = tok
		} else {
			p.Next = tok
		}
		items = items[:limit]
	}
	p.Events = make([]store.FinalisedDelayed, len(items))
	for i, it := range items {
		p.Events[i] = it.e
	}
	return p
}

// parseToken reads a page token: the time of the last event and its ID.
func parseToken(t string) (int64, string, bool) {
	k, id, ok := strings.Cut(t, ".")
	if !ok || id == "" {
		return 0, "", false
	}
	n, err := strconv.ParseInt(k, 10, 64)
	return n, id, err == nil
}
