package store

import "context"

// Positions: every write to the server's persisted streams (room events,
// receipts, account data) gets the next position of one counter, assigned
// by the store inside the write's transaction, and transactions commit in
// position order (one writer). So "everything after position P" is a
// complete, stable answer across restarts, which /sync and /messages
// tokens rely on.

// Room is a room hosted here.
type Room struct {
	RoomID    string
	Version   string
	Creator   string
	RoomType  string // creation_content.type: "", "m.space", "org.matrix.msc3417.call"
	CreatedTS int64
	Published bool // listed in the public room directory
}

// EventRow is a stored event.
type EventRow struct {
	Pos      int64 // assigned by the store
	EventID  string
	RoomID   string
	Type     string
	StateKey *string
	Sender   string
	// JSON is the PDU as stored: redacted once a redaction applied.
	JSON []byte
	// RedactedBy is the event ID of the redaction applied to this event.
	RedactedBy string
	// RelType and RelatesTo index m.relates_to (threads, edits,
	// reactions, replies are not relations).
	RelType   string
	RelatesTo string
	// SenderDevice and TxnID identify the local request that sent it, so
	// the sending device sees unsigned.transaction_id.
	SenderDevice string
	TxnID        string
	// DelayID is the MSC4140 delayed event this event was sent as; its
	// sender sees it in unsigned.
	DelayID string
	// Membership is content.membership for m.room.member events.
	Membership string
	// Unsigned is what the server knew when it stored the event and
	// clients want in "unsigned": prev_content, replaces_state,
	// prev_sender for state events (JSON object, or nil).
	Unsigned []byte
	// Past stores the event before the room's timeline (PersistEvents):
	// the state a join to another server's room brought.
	Past bool
	// StateBefore, when set, is the room state before the event, for an
	// event received on another branch of the room than its current
	// state; nil: the event follows the room's current state (every local
	// event). The store keeps the state before and after each event
	// (EventState) from it.
	StateBefore *StateSpec
}

// BumpTypes are the event types that count as activity in a room for
// sliding sync's ordering (MSC4186 bump_stamp).
var BumpTypes = []string{"m.room.create", "m.room.message", "m.room.encrypted", "m.sticker", "m.call.invite", "m.poll.start", "m.beacon_info"}

// RelationsQuery selects the events relating to EventID in RoomID, for
// /relations (spec v1.16: dir, from, to, recurse).
type RelationsQuery struct {
	RoomID, EventID string
	// RelType and EventType, when set, keep only events with that
	// rel_type and that event type.
	RelType, EventType string
	// After < Pos < Before; 0 leaves that side unbounded.
	After, Before int64
	Limit         int
	// Forward lists oldest first; otherwise newest first.
	Forward bool
	// Depth is how many levels of relations to follow: 1 (or less) lists
	// only the events relating to EventID directly, 2 adds the events
	// relating to those, and so on. RelType and EventType filter the
	// events listed, not the ones followed.
	Depth int
}

// Membership is one user's current membership in one room.
type Membership struct {
	RoomID     string
	UserID     string
	Membership string
	EventID    string
	Pos        int64
	Forgotten  bool
}

// Redaction rewrites a stored event to its redacted form.
type Redaction struct {
	EventID      string
	RedactedJSON []byte
	By           string
}

// EventBatch is what one send persists atomically.
type EventBatch struct {
	// NewRoom is stored first when the batch creates a room.
	NewRoom *Room
	Events  []EventRow
	// Redactions apply to already stored events.
	Redactions []Redaction
	// Extremities, when not nil, replace the room's forward extremities
	// (the room is that of Events[0], or ExtremitiesRoom).
	Extremities     []string
	ExtremitiesRoom string
	// Outliers are stored outside the timeline, as PutOutliers does.
	Outliers []OutlierRow
	// State, applied after Events, sets tuples of the room's current
	// state (ExtremitiesRoom, or that of Events[0]) to stored events:
	// the outcome of a state resolution.
	State []StateRef
	// Backfill: Events are history older than the room's timeline, got
	// from another server: stored in the past (below every Past event),
	// they change nothing of the room's current state, memberships,
	// extremities or snapshots. An event of the state a join brought (a
	// Past event) moves to its place in the history, where it is read as
	// history; the state that cites it keeps it. Backfilled history
	// comes newest first, batch after batch, each batch oldest first, so
	// the state a join brought stays the newest of each of its tuples.
	Backfill bool
}

// The past: stream positions below zero hold events stored before a
// room's timeline, which /sync never reads and /messages pages into. A
// batch's past events take positions below every stored one of their
// range, in the batch's order (oldest first). From PastTop down to
// BackfillTop are Past events (the state a join brought); below
// BackfillTop, backfilled history: a room's history reads, oldest first,
// backfilled events, the state its join brought, then its timeline.
const (
	PastTop     int64 = -1
	BackfillTop int64 = -1 << 40
)

// InJoinState reports whether a position is in the past's range of the
// state a join brought (between the backfilled history and the timeline).
func InJoinState(pos int64) bool { return pos >= BackfillTop && pos <= PastTop }

// BatchRoom is the room a batch writes to.
func (b *EventBatch) BatchRoom() string {
	if b.ExtremitiesRoom != "" {
		return b.ExtremitiesRoom
	}
	if len(b.Events) > 0 {
		return b.Events[0].RoomID
	}
	return ""
}

// Rooms stores rooms, their events and state.
type Rooms interface {
	// PersistEvents stores the batch in one transaction: each event gets the
	// next position (written into b.Events[i].Pos); state events replace the
	// room's current state; member events update memberships. It returns
	// the last position used. A duplicate event ID is ErrExists.
	PersistEvents(ctx context.Context, b *EventBatch) (int64, error)
	// CurrentPos is the last committed position of every stream.
	CurrentPos() int64

	Room(ctx context.Context, roomID string) (Room, error)
	SetPublished(ctx context.Context, roomID string, published bool) error
	// PublishedRooms lists rooms in the public directory.
	PublishedRooms(ctx context.Context) ([]string, error)

	Event(ctx context.Context, eventID string) (EventRow, error)
	// TxnEvent returns the event a device sent into a room with a
	// transaction ID (a transaction ID is scoped to its request path, so
	// the same one may name events in two rooms).
	TxnEvent(ctx context.Context, userID, deviceID, roomID, txnID string) (EventRow, error)
	// CurrentState is the room's state now.
	CurrentState(ctx context.Context, roomID string) ([]EventRow, error)
	// StateAt is the room's state after every event at or before pos.
	StateAt(ctx context.Context, roomID string, pos int64) ([]EventRow, error)
	// RoomEvents returns up to limit events of the room with
	// after < Pos < before, newest first when desc, else oldest first.
	RoomEvents(ctx context.Context, roomID string, after, before int64, limit int, desc bool) ([]EventRow, error)
	// LastEvent is the room's newest event.
	LastEvent(ctx context.Context, roomID string) (EventRow, error)
	// StateHistory lists every event of one state tuple in a room, oldest
	// first: a user's membership history, the history visibility changes.
	StateHistory(ctx context.Context, roomID, typ, stateKey string) ([]EventRow, error)
	// Relations lists events relating to eventID (rel_type and event
	// type filters optional), newest first, with Pos < before (0: no bound).
	Relations(ctx context.Context, roomID, eventID, relType, evType string, before int64, limit int) ([]EventRow, error)
	// RelationsPage is Relations with both bounds, either order and
	// optionally the relations of relations (see RelationsQuery).
	RelationsPage(ctx context.Context, q RelationsQuery) ([]EventRow, error)

	// UserMemberships lists every room a user has a membership in.
	UserMemberships(ctx context.Context, userID string) ([]Membership, error)
	// RoomMemberships lists a room's memberships.
	RoomMemberships(ctx context.Context, roomID string) ([]Membership, error)
	// Forget hides a room the user has left from their sync and lists.
	Forget(ctx context.Context, roomID, userID string) error
	// RoomPositions returns every room's newest event position.
	RoomPositions(ctx context.Context) (map[string]int64, error)
	// BumpPositions returns, for each of the rooms that has one, the
	// position of its newest event whose type is one of BumpTypes (sliding
	// sync's bump_stamp, MSC4186).
	BumpPositions(ctx context.Context, roomIDs []string) (map[string]int64, error)

	// Aliases map #alias:server to room IDs.
	CreateAlias(ctx context.Context, alias, roomID, creator string) error
	Alias(ctx context.Context, alias string) (roomID, creator string, err error)
	DeleteAlias(ctx context.Context, alias string) error
	RoomAliases(ctx context.Context, roomID string) ([]string, error)
}

// AccountDataRow is one piece of a user's account data (RoomID "" for
// global).
type AccountDataRow struct {
	UserID  string
	RoomID  string
	Type    string
	Content []byte
	Pos     int64
}

// Receipt is a read receipt.
type Receipt struct {
	RoomID   string
	UserID   string
	Type     string // m.read, m.read.private
	EventID  string
	ThreadID string // "" for unthreaded
	TS       int64
	Pos      int64
}

// UserData stores per-user data that syncs: account data, receipts, filters.
type UserData interface {
	// PutAccountData stores content and returns its position.
	PutAccountData(ctx context.Context, userID, roomID, typ string, content []byte) (int64, error)
	// PutAccountDataBatch stores several types of account data in one
	// transaction at one position, which it returns: a reader sees all of
	// them or none (push rules and the overrides they are made from).
	PutAccountDataBatch(ctx context.Context, userID, roomID string, contents map[string][]byte) (int64, error)
	AccountData(ctx context.Context, userID, roomID, typ string) ([]byte, error)
	// AccountDataSince lists the user's account data changed in (since, to].
	AccountDataSince(ctx context.Context, userID string, since, to int64) ([]AccountDataRow, error)

	// PutReceipt stores a receipt (replacing the user's previous one of the
	// same type and thread in the room) and returns its position.
	PutReceipt(ctx context.Context, r Receipt) (int64, error)
	// ReceiptsSince lists receipts in the rooms changed in (since, to].
	ReceiptsSince(ctx context.Context, roomIDs []string, since, to int64) ([]Receipt, error)
	// UserReceipt is the user's receipt of a type in a room.
	UserReceipt(ctx context.Context, roomID, userID, typ string) (Receipt, error)
	// UserThreadReceipts lists the user's threaded receipts of a type in a
	// room ("main" and thread roots), in no particular order.
	UserThreadReceipts(ctx context.Context, roomID, userID, typ string) ([]Receipt, error)

	PutFilter(ctx context.Context, userID string, filter []byte) (string, error)
	Filter(ctx context.Context, userID, filterID string) ([]byte, error)
}
