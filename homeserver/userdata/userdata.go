// Package userdata owns what each user keeps about their rooms and shows
// in /sync: account data (global and per room), room tags, read receipts
// and the m.fully_read marker. Whoever writes, wakes: every write here
// reports its stream position to the Notifier the package declares, so a
// waiting /sync returns at once and never waits for the notifier's gap
// fallback. clientapi only decodes a request, calls the Service and
// encodes its answer.
//
// It must not import clientapi or sync; rooms are asked through the Rooms
// interface it declares.
package userdata

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/salonhq/salon/homeserver/events"
	"github.com/salonhq/salon/homeserver/store"
	"github.com/salonhq/salon/internal/mxerr"
)

// Store is the storage the service writes and reads.
type Store interface {
	AccountData(ctx context.Context, userID, roomID, typ string) ([]byte, error)
	PutAccountData(ctx context.Context, userID, roomID, typ string, content []byte) (int64, error)
	PutReceipt(ctx context.Context, r store.Receipt) (int64, error)
}

// Notifier wakes the long-polling /sync requests of users after a write
// committed at pos (sync.Notifier); roomID is "" for account data.
type Notifier interface {
	Notify(pos int64, roomID string, userIDs []string)
}

// Rooms answers what a receipt needs to know of a room (rooms.Service).
type Rooms interface {
	RequireJoined(ctx context.Context, roomID, userID string) error
	Members(ctx context.Context, roomID, membership string) ([]string, error)
	// Event fails unless the user may see the event.
	Event(ctx context.Context, userID, roomID, eventID string) (store.EventRow, events.RoomVersion, error)
}

// Params are the service's dependencies.
type Params struct {
	Store    Store
	Notifier Notifier
	Rooms    Rooms
	// Now is the clock of receipt timestamps (nil: time.Now).
	Now func() time.Time
	// ReceiptShared hears of each public read receipt stored (the room's
	// other servers are told of local users'); nil: nobody.
	ReceiptShared func(ctx context.Context, r store.Receipt)
}

// Service writes users' account data, tags and receipts, and wakes sync.
type Service struct {
	p Params
	// tagLocks serialise each change of a room's tags, which reads the
	// tags object and writes it again: two devices changing tags at once
	// must not lose one change. Striped by user, so memory stays fixed.
	tagLocks [64]sync.Mutex
}

// New returns a Service.
func New(p Params) *Service {
	if p.Now == nil {
		p.Now = time.Now
	}
	return &Service{p: p}
}

// Receipt and marker types (Client-Server API, "Receipts" and "Read
// markers").
const (
	Read        = "m.read"
	ReadPrivate = "m.read.private"
	FullyRead   = "m.fully_read"
	tagType     = "m.tag"
	maxTags     = 100
	maxNameLen  = 255
)

// serverManaged account data types are written by the server only.
func serverManaged(typ string) bool { return typ == FullyRead || typ == "m.push_rules" }

// AccountData is the user's account data of a type, global (roomID "")
// or in a room.
func (s *Service) AccountData(ctx context.Context, userID, roomID, typ string) (json.RawMessage, error) {
	b, err := s.p.Store.AccountData(ctx, userID, roomID, typ)
	if errors.Is(err, store.ErrNotFound) {
		return nil, mxerr.NotFoundf("Account data not found")
	}
	return b, err
}

// PutAccountData stores account data the client sets.
func (s *Service) PutAccountData(ctx context.Context, userID, roomID, typ string, content json.RawMessage) error {
	if typ == "" || len(typ) > maxNameLen {
		return mxerr.InvalidParamf("Invalid account data type")
	}
	if serverManaged(typ) {
		return mxerr.BadJSONf("%s is managed by the server", typ).WithStatus(http.StatusMethodNotAllowed)
	}
	return s.putAccountData(ctx, userID, roomID, typ, content)
}

// putAccountData writes and wakes the user's syncs.
func (s *Service) putAccountData(ctx context.Context, userID, roomID, typ string, content []byte) error {
	pos, err := s.p.Store.PutAccountData(ctx, userID, roomID, typ, content)
	if err != nil {
		return err
	}
	s.p.Notifier.Notify(pos, "", []string{userID})
	return nil
}

// Tags are the user's tags of a room, tag → its content ({"order": n}).
func (s *Service) Tags(ctx context.Context, userID, roomID string) (map[string]json.RawMessage, error) {
	var c struct {
		Tags map[string]json.RawMessage `json:"tags"`
	}
	b, err := s.p.Store.AccountData(ctx, userID, roomID, tagType)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	if len(b) > 0 {
		_ = json.Unmarshal(b, &c)
	}
	if c.Tags == nil {
		c.Tags = map[string]json.RawMessage{}
	}
	return c.Tags, nil
}

// lockTags locks the tags of the user's rooms against another change.
func (s *Service) lockTags(userID string) (unlock func()) {
	h := uint32(2166136261) // FNV-1a
	for i := 0; i < len(userID); i++ {
		h = (h ^ uint32(userID[i])) * 16777619
	}
	m := &s.tagLocks[h%uint32(len(s.tagLocks))]
	m.Lock()
	return m.Unlock
}

// PutTag sets a tag of a room with its content.
func (s *Service) PutTag(ctx context.Context, userID, roomID, tag string, content json.RawMessage) error {
	if tag == "" || len(tag) > maxNameLen {
		return mxerr.InvalidParamf("Invalid tag")
	}
	defer s.lockTags(userID)()
	tags, err := s.Tags(ctx, userID, roomID)
	if err != nil {
		return err
	}
	if len(tags) >= maxTags {
		return mxerr.InvalidParamf("Too many tags")
	}
	tags[tag] = content
	return s.saveTags(ctx, userID, roomID, tags)
}

// DeleteTag removes a tag of a room (a missing tag is no error).
func (s *Service) DeleteTag(ctx context.Context, userID, roomID, tag string) error {
	defer s.lockTags(userID)()
	tags, err := s.Tags(ctx, userID, roomID)
	if err != nil {
		return err
	}
	delete(tags, tag)
	return s.saveTags(ctx, userID, roomID, tags)
}

func (s *Service) saveTags(ctx context.Context, userID, roomID string, tags map[string]json.RawMessage) error {
	b, err := json.Marshal(map[string]any{"tags": tags})
	if err != nil {
		return err
	}
	return s.putAccountData(ctx, userID, roomID, tagType, b)
}

// Receipt records that the user read up to an event: m.read (shown to the
// room), m.read.private (to the user alone) or m.fully_read (the read
// marker, kept as room account data). threadID is "", "main" or a thread
// root, for the read receipts only.
func (s *Service) Receipt(ctx context.Context, userID, roomID, typ, eventID, threadID string) error {
	switch typ {
	case Read, ReadPrivate:
	case FullyRead:
		return s.fullyRead(ctx, userID, roomID, eventID)
	default:
		return mxerr.InvalidParamf("Unknown receipt type %q", typ)
	}
	if err := s.p.Rooms.RequireJoined(ctx, roomID, userID); err != nil {
		return err
	}
	members, err := s.p.Rooms.Members(ctx, roomID, "join")
	if err != nil {
		return err
	}
	if _, _, err := s.p.Rooms.Event(ctx, userID, roomID, eventID); err != nil {
		return err
	}
	rc := store.Receipt{RoomID: roomID, UserID: userID, Type: typ, EventID: eventID, ThreadID: threadID, TS: s.p.Now().UnixMilli()}
	pos, err := s.p.Store.PutReceipt(ctx, rc)
	if err != nil {
		return err
	}
	if typ == Read && s.p.ReceiptShared != nil {
		s.p.ReceiptShared(ctx, rc)
	}
	// A private receipt is the user's own; a public one shows to every
	// member.
	if typ == ReadPrivate {
		members = []string{userID}
	}
	s.p.Notifier.Notify(pos, roomID, members)
	return nil
}

func (s *Service) fullyRead(ctx context.Context, userID, roomID, eventID string) error {
	if _, _, err := s.p.Rooms.Event(ctx, userID, roomID, eventID); err != nil {
		return err
	}
	b, err := json.Marshal(map[string]string{"event_id": eventID})
	if err != nil {
		return err
	}
	return s.putAccountData(ctx, userID, roomID, FullyRead, b)
}

// ReadMarkers sets the read marker and the receipts of POST
// /read_markers: markers maps m.fully_read, m.read and m.read.private to
// event IDs, any of them absent.
func (s *Service) ReadMarkers(ctx context.Context, userID, roomID string, markers map[string]string) error {
	for _, typ := range []string{FullyRead, Read, ReadPrivate} {
		if id := markers[typ]; id != "" {
			if err := s.Receipt(ctx, userID, roomID, typ, id, ""); err != nil {
				return err
			}
		}
	}
	return nil
}
