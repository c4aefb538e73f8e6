package sync

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	gosync "sync"

	"github.com/salonhq/salon/homeserver/events"
	"github.com/salonhq/salon/homeserver/store"
)

// eventCache keeps parsed events, so an event sent to many members is
// parsed once. It has two generations: when the current one is full it
// becomes the old one and the previous old one is dropped.
type eventCache struct {
	mu       gosync.Mutex
	cur, old map[string]*parsedEvent
	size     int
}

// parsedEvent is a cached event and, once a sync formats it, its client
// format without unsigned: the part every member's copy shares (issue 24:
// one message woken 2,000 long-polls, and each rebuilt the whole object).
type parsedEvent struct {
	ev *events.Event

	once   gosync.Once
	client []byte
	err    error
}

// clientBase returns ev.ClientJSON(nil), built once.
func (p *parsedEvent) clientBase() ([]byte, error) {
	p.once.Do(func() { p.client, p.err = p.ev.ClientJSON(nil) })
	return p.client, p.err
}

// eventCacheSize bounds each generation. A parsed event holds about 2 KiB
// (its canonical JSON and signing payload besides the fields), and once a
// sync formats it, its shared client format too (about the size of its
// JSON again: parsedEvent.clientBase); the
// cache only has to outlive the delivery of an event to the members who
// are syncing: at 200 messages/s, 20,000 a generation kept ~70 MiB and
// took minutes to fill, which read as growth in the 10-minute memory run;
// 5,000 is still 25 s of such traffic, or 500 rooms' initial timelines.
const eventCacheSize = 5_000

func (c *eventCache) get(key string) (*parsedEvent, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ev, ok := c.cur[key]; ok {
		return ev, true
	}
	if ev, ok := c.old[key]; ok {
		c.putLocked(key, ev)
		return ev, true
	}
	return nil, false
}

func (c *eventCache) put(key string, ev *parsedEvent) {
	c.mu.Lock()
	c.putLocked(key, ev)
	c.mu.Unlock()
}

func (c *eventCache) putLocked(key string, ev *parsedEvent) {
	if c.cur == nil || len(c.cur) >= c.size {
		c.old, c.cur = c.cur, make(map[string]*parsedEvent, 1024)
	}
	c.cur[key] = ev
}

// roomVersion is the room's version, cached (it never changes).
func (e *Engine) roomVersion(ctx context.Context, roomID string) (events.RoomVersion, error) {
	if v, ok := e.versions.Load(roomID); ok {
		return v.(events.RoomVersion), nil
	}
	r, err := e.p.Store.Room(ctx, roomID)
	if err != nil {
		return "", fmt.Errorf("sync: room %s: %w", roomID, err)
	}
	v := events.RoomVersion(r.Version)
	e.versions.Store(roomID, v)
	return v, nil
}

// parse returns the stored event parsed, from the cache when it can. The
// key includes RedactedBy: a redaction rewrites the stored JSON.
func (e *Engine) parse(ctx context.Context, row *store.EventRow) (*events.Event, error) {
	p, err := e.parsed(ctx, row)
	if err != nil {
		return nil, err
	}
	return p.ev, nil
}

// parsed is parse with the cache entry, which also holds the event's
// shared client format.
func (e *Engine) parsed(ctx context.Context, row *store.EventRow) (*parsedEvent, error) {
	key := row.EventID
	if row.RedactedBy != "" {
		key += "\x00" + row.RedactedBy
	}
	if p, ok := e.cache.get(key); ok {
		return p, nil
	}
	v, err := e.roomVersion(ctx, row.RoomID)
	if err != nil {
		return nil, err
	}
	ev, err := events.Parse(v, row.JSON)
	if err != nil {
		return nil, fmt.Errorf("sync: stored event %s: %w", row.EventID, err)
	}
	// The stored ID is the one the event was accepted under.
	ev.ID = row.EventID
	p := &parsedEvent{ev: ev}
	e.cache.put(key, p)
	return p, nil
}

// clientEvent formats a stored event for this request: the client format
// (or the PDU with event_format federation), with unsigned holding the
// stored prev_content and friends, age, the transaction ID for the device
// that sent it, and redacted_because for redacted events.
func (s *syncer) clientEvent(ctx context.Context, row *store.EventRow) (json.RawMessage, error) {
	p, err := s.e.parsed(ctx, row)
	if err != nil {
		return nil, err
	}
	ev := p.ev
	unsigned := make(map[string]any, 4)
	if len(row.Unsigned) > 0 {
		var u map[string]json.RawMessage
		if err := json.Unmarshal(row.Unsigned, &u); err == nil {
			for k, v := range u {
				unsigned[k] = v
			}
		}
	}
	if age := s.nowMS - ev.OriginServerTS; age >= 0 {
		unsigned["age"] = age
	}
	if row.TxnID != "" && row.Sender == s.req.UserID && row.SenderDevice == s.req.DeviceID && s.req.DeviceID != "" {
		unsigned["transaction_id"] = row.TxnID
	}
	if row.DelayID != "" && row.Sender == s.req.UserID {
		unsigned[events.UnsignedDelayID] = row.DelayID
	}
	if vis, err := s.visibility(ctx, row.RoomID); err == nil && vis != nil {
		// unsigned.membership (Matrix 1.11, MSC4115): the syncing user's
		// membership at the event, when the read rules know it.
		if m, ok := vis.(interface{ MembershipAfter(pos int64) string }); ok {
			unsigned["membership"] = m.MembershipAfter(row.Pos)
		}
	}
	if row.RedactedBy != "" {
		if because, err := s.redactionJSON(ctx, row.RedactedBy); err == nil {
			unsigned["redacted_because"] = because
		} else {
			s.e.log.Warn("sync: redaction event unavailable", "event_id", row.RedactedBy, "err", err)
		}
	}
	var out []byte
	if s.req.Filter.EventFormat == "federation" {
		out, err = withUnsigned(ev.JSON, unsigned)
	} else {
		out, err = clientWithUnsigned(p, unsigned)
	}
	if err != nil {
		return nil, err
	}
	if len(s.req.Filter.EventFields) > 0 {
		out = projectFields(out, s.req.Filter.EventFields)
	}
	return out, nil
}

// redactionJSON is the redaction event with ID id in client format: its
// cached, shared client format (a redacted event is synced to every
// member, each of whom needs its redaction).
func (s *syncer) redactionJSON(ctx context.Context, id string) (json.RawMessage, error) {
	p, ok := s.e.cache.get(id)
	if !ok {
		row, err := s.e.p.Store.Event(ctx, id)
		if err != nil {
			return nil, err
		}
		if p, err = s.e.parsed(ctx, &row); err != nil {
			return nil, err
		}
	}
	b, err := p.clientBase()
	return b[:len(b):len(b)], err // shared: an append copies
}

// clientWithUnsigned is p.ev.ClientJSON(unsigned), byte for byte, from the
// event's shared client format: "unsigned" sorts after every other key of
// a client event, so it goes last, before the closing brace.
func clientWithUnsigned(p *parsedEvent, unsigned map[string]any) ([]byte, error) {
	base, err := p.clientBase()
	if err != nil {
		return nil, err
	}
	if len(unsigned) == 0 {
		return base[:len(base):len(base)], nil // shared: an append copies
	}
	out := make([]byte, 0, len(base)+64)
	out = append(out, base[:len(base)-1]...)
	if len(base) > 2 {
		out = append(out, ',')
	}
	out = append(out, `"unsigned":`...)
	if out, err = appendUnsigned(out, unsigned); err != nil {
		return nil, err
	}
	return append(out, '}'), nil
}

// appendUnsigned appends json.Marshal(u)'s output: the values a sync puts
// there (ages, memberships, stored JSON) without reflection, anything else
// through json.Marshal.
func appendUnsigned(b []byte, u map[string]any) ([]byte, error) {
	return appendObject(b, u, func(b []byte, v any) ([]byte, error) {
		switch v := v.(type) {
		case int64:
			return strconv.AppendInt(b, v, 10), nil
		case string:
			return appendPlainString(b, v), nil
		default:
			return appendJSON(b, v)
		}
	})
}

// appendObject appends m as json.Marshal writes a map: keys in order,
// each value written by appendValue.
func appendObject[V any](b []byte, m map[string]V, appendValue func([]byte, V) ([]byte, error)) ([]byte, error) {
	var keysBuf [8]string
	keys := keysBuf[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	var err error
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendPlainString(b, k)
		b = append(b, ':')
		if b, err = appendValue(b, m[k]); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

// appendPlainString appends s as json.Marshal writes it: quoted as it is
// when it holds only printable ASCII that needs no escape (json.Marshal
// also escapes <, > and &), through json.Marshal otherwise.
func appendPlainString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			j, _ := json.Marshal(s) // a string always marshals
			return append(b, j...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// withUnsigned adds "unsigned" to a PDU object (which has none).
func withUnsigned(pdu []byte, unsigned map[string]any) ([]byte, error) {
	if len(unsigned) == 0 {
		return pdu, nil
	}
	u, err := json.Marshal(unsigned)
	if err != nil {
		return nil, err
	}
	end := strings.LastIndexByte(string(pdu), '}')
	if end < 0 {
		return nil, fmt.Errorf("sync: PDU is not an object")
	}
	out := make([]byte, 0, len(pdu)+len(u)+13)
	out = append(out, pdu[:end]...)
	if end > 1 {
		out = append(out, ',')
	}
	out = append(out, `"unsigned":`...)
	out = append(out, u...)
	return append(out, '}'), nil
}

// strippedEvent is a stripped state event (spec: Stripped state).
func (s *syncer) strippedEvent(ctx context.Context, row *store.EventRow) (json.RawMessage, error) {
	ev, err := s.e.parse(ctx, row)
	if err != nil {
		return nil, err
	}
	return json.Marshal(struct {
		Content  json.RawMessage `json:"content"`
		Sender   string          `json:"sender"`
		StateKey string          `json:"state_key"`
		Type     string          `json:"type"`
	}{ev.Content, ev.Sender, ev.StateKeyOrEmpty(), ev.Type})
}

// basicEvent is an event with only type and content (account data,
// ephemeral events).
func basicEvent(typ string, content json.RawMessage) (json.RawMessage, error) {
	if len(content) == 0 {
		content = json.RawMessage("{}")
	}
	return json.Marshal(struct {
		Content json.RawMessage `json:"content"`
		Type    string          `json:"type"`
	}{content, typ})
}

// projectFields keeps only the listed fields of an event (event_fields:
// dot-separated paths, '\.' for a literal dot, '\\' for a backslash). The
// spec lets a server return more fields than asked; an event that is not
// an object is returned unchanged.
func projectFields(js []byte, paths []string) []byte {
	var obj map[string]any
	dec := json.NewDecoder(strings.NewReader(string(js)))
	dec.UseNumber()
	if dec.Decode(&obj) != nil {
		return js
	}
	out := map[string]any{}
	for _, p := range paths {
		keys := splitPath(p)
		if len(keys) == 0 {
			continue
		}
		copyPath(out, obj, keys)
	}
	b, err := json.Marshal(out)
	if err != nil {
		return js
	}
	return b
}

func splitPath(p string) []string {
	var keys []string
	var cur strings.Builder
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case c == '\\' && i+1 < len(p) && (p[i+1] == '.' || p[i+1] == '\\'):
			cur.WriteByte(p[i+1])
			i++
		case c == '.':
			keys = append(keys, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(c)
		}
	}
	return append(keys, cur.String())
}

func copyPath(dst, src map[string]any, keys []string) {
	v, ok := src[keys[0]]
	if !ok {
		return
	}
	if len(keys) == 1 {
		dst[keys[0]] = v
		return
	}
	sub, ok := v.(map[string]any)
	if !ok {
		return
	}
	d, ok := dst[keys[0]].(map[string]any)
	if !ok {
		d = map[string]any{}
		dst[keys[0]] = d
	}
	copyPath(d, sub, keys[1:])
}
