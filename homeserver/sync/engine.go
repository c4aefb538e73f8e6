package sync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	gosync "sync"
	"sync/atomic"
	"time"

	"github.com/salonhq/salon/homeserver/store"
)

// CountsFunc returns a room's unread notification counts for a user (push
// rules live elsewhere). sincePos is the sync's since position, 0 for an
// initial sync.
type CountsFunc func(ctx context.Context, userID, roomID string, sincePos int64) (notifications, highlights int, err error)

// ThreadCountsFunc returns a room's unread counts for a user split by
// thread: the main timeline's, and each thread's with unread
// notifications by thread root.
type ThreadCountsFunc func(ctx context.Context, userID, roomID string) (main UnreadCounts, threads map[string]UnreadCounts, err error)

// Params are what an Engine needs.
type Params struct {
	Store    store.Store
	Notifier *Notifier
	// Typing is optional: without it no m.typing is sent.
	Typing *Typing
	// Presence is optional: without it (presence turned off) the presence
	// section stays empty.
	Presence *Presence
	// JoinedMembers lists a room's joined members now, for presence (who
	// shares a room with whom); without it the store is read.
	JoinedMembers func(ctx context.Context, roomID string) ([]string, error)
	Logger        *slog.Logger
	// Counts is optional: without it unread_notifications is left out.
	Counts CountsFunc
	// ThreadCounts is optional: without it a filter's
	// unread_thread_notifications is ignored (every count is in
	// unread_notifications).
	ThreadCounts ThreadCountsFunc
	// Now is time.Now when nil.
	Now func() time.Time
	// Visibility is optional: it answers, per user and room, which events
	// the user may read (history visibility) and which state they may see
	// (knocks are for moderators). Without it every event is readable.
	Visibility func(ctx context.Context, userID, roomID string) (Visibility, error)
	// PushRules is optional: the m.push_rules content ({"global": ...}) an
	// initial sync sends a user who never changed a rule, so none is
	// stored (clients read their rules from it).
	PushRules func(ctx context.Context, userID string) (json.RawMessage, error)
}

// Visibility judges one user's reads in one room.
type Visibility interface {
	// CanRead reports whether a timeline event may be sent to the user.
	CanRead(store.EventRow) bool
	// SeesKnock is false for state the user may not see (another user's
	// knock, for a non-moderator).
	SeesKnock(store.EventRow) bool
}

// Engine answers /sync requests.
type Engine struct {
	p   Params
	log *slog.Logger

	// startPos is the stream head when the room positions were last read
	// from the store. Room positions come from events only, so a token
	// from before it may have missed receipts: such a sync reads the
	// receipts of every joined room once.
	startPos atomic.Int64
	reseedMu gosync.Mutex

	versions gosync.Map // room ID → events.RoomVersion
	cache    eventCache
	mc       memCache
	lazy     lazyCache
	rm       roomMemsCache

	// Sliding sync (MSC4186): its connections and what its room list
	// caches per room.
	sliding slidingConns
	bc      bumpCache
	kicked  kickedCache
	metas   gosync.Map // room ID → roomMeta
}

// Request is one /sync call, decoded by the handler.
type Request struct {
	UserID   string
	DeviceID string
	// Since is the since parameter, "" for an initial sync.
	Since string
	// Timeout is how long to wait for something to report; 0 answers at
	// once.
	Timeout time.Duration
	// FullState sends every joined room's full state (and never waits).
	FullState bool
	// StateAfter, when set, is the field name (MSC4222's "state_after" or
	// its unstable name) under which a joined room's state is sent as it is
	// at the end of the timeline — every change since the token, timeline
	// events included — instead of "state".
	StateAfter string
	Filter     Filter
	// SetPresence is the set_presence parameter; the handler reports it
	// to Presence.SyncStarted, the engine does not read it.
	SetPresence string
}

// New returns an Engine. It reads every room's newest position from the
// store to seed the Notifier.
func New(ctx context.Context, p Params) (*Engine, error) {
	if p.Store == nil || p.Notifier == nil {
		return nil, errors.New("sync: Store and Notifier are required")
	}
	if p.Logger == nil {
		p.Logger = slog.New(slog.DiscardHandler)
	}
	if p.Now == nil {
		p.Now = time.Now
	}
	e := &Engine{p: p, log: p.Logger, sliding: newSlidingConns()}
	e.cache.size = eventCacheSize
	if err := e.seed(ctx); err != nil {
		return nil, err
	}
	if p.Presence != nil {
		p.Presence.setAudience(e.presenceAudience, p.Logger)
	}
	return e, nil
}

func (e *Engine) seed(ctx context.Context) error {
	head := e.p.Store.CurrentPos()
	rooms, err := e.p.Store.RoomPositions(ctx)
	if err != nil {
		return fmt.Errorf("sync: reading room positions: %w", err)
	}
	e.p.Notifier.seed(head, rooms, e.log)
	e.startPos.Store(head)
	return nil
}

// Sync answers one /sync request. With a since token and a timeout it
// waits until something the user should see happens, the timeout passes
// (an empty response, whose next_batch is then at least since), or ctx ends
// (ctx.Err()). A malformed since is ErrBadToken (M_INVALID_PARAM).
func (e *Engine) Sync(ctx context.Context, req Request) (*Response, error) {
	var since *StreamToken
	if req.Since != "" {
		t, err := ParseStreamToken(req.Since)
		if err != nil {
			return nil, err
		}
		since = &t
	}
	var lazy *lazyDevice
	if sf := &req.Filter.Room.State; sf.LazyLoadMembers && !sf.IncludeRedundantMembers && req.DeviceID != "" {
		lazy = e.lazy.begin(req.UserID, req.DeviceID, req.Since)
	}
	wait := since != nil && req.Timeout > 0 && !req.FullState
	var timer *time.Timer
	for {
		var l *Listener
		if wait {
			// Register before reading: see Listener.
			l = e.p.Notifier.Listen(req.UserID)
		}
		resp, sent, err := e.build(ctx, &req, since, lazy)
		if err != nil || !wait || !resp.empty() {
			if l != nil {
				l.Stop()
			}
			if err == nil && lazy != nil {
				e.lazy.commit(lazy, resp.NextBatch, sent)
			}
			return resp, err
		}
		if timer == nil {
			timer = time.NewTimer(req.Timeout)
			defer timer.Stop()
		}
		select {
		case <-l.C:
			l.Stop()
		case <-timer.C:
			l.Stop()
			if lazy != nil {
				e.lazy.commit(lazy, resp.NextBatch, sent)
			}
			return resp, nil
		case <-ctx.Done():
			l.Stop()
			return nil, ctx.Err()
		}
	}
}

// build reads one consistent snapshot and makes the response.
func (e *Engine) build(ctx context.Context, req *Request, since *StreamToken, lazy *lazyDevice) (*Response, map[string]*lazyRoom, error) {
	if e.p.Notifier.needsReseed() {
		e.reseedMu.Lock()
		err := e.seed(ctx)
		e.reseedMu.Unlock()
		if err != nil {
			return nil, nil, err
		}
	}
	now := e.p.Now()
	s := &syncer{
		e:       e,
		req:     req,
		f:       &req.Filter,
		nowMS:   now.UnixMilli(),
		initial: since == nil,
		resp:    newResponse(),
		hist:    map[string][]store.EventRow{},
		roomAD:  map[string][]store.AccountDataRow{},
		lazy:    lazy,
	}
	s.to.Pos = e.p.Notifier.watermark(e.p.Store.CurrentPos(), now)
	if since != nil {
		s.since = *since
		if s.since.Pos > s.to.Pos {
			s.since.Pos = s.to.Pos
		}
	}
	if err := s.run(ctx); err != nil {
		return nil, nil, err
	}
	s.resp.NextBatch = s.to.String()
	return s.resp, s.lazyOut, nil
}
