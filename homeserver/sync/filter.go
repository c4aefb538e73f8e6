package sync

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"slices"
	"strings"

	"github.com/salonhq/salon/homeserver/events"
	"github.com/salonhq/salon/homeserver/glob"
	"github.com/salonhq/salon/homeserver/store"
)

// Filter is a sync filter (spec: Filtering; definitions/sync_filter.yaml).
// The zero Filter is the default: every event, timeline limit 10.
type Filter struct {
	// EventFields lists dot-separated paths of the event fields to return;
	// nil returns every field.
	EventFields []string
	// EventFormat is "client" (the default) or "federation" (the PDU as
	// stored, with unsigned added).
	EventFormat string
	Presence    EventFilter
	AccountData EventFilter
	Room        RoomFilter
}

// RoomFilter filters the rooms section.
type RoomFilter struct {
	// Rooms and NotRooms pick rooms before any other filter applies; nil
	// Rooms means every room.
	Rooms    []string
	NotRooms []string
	// IncludeLeave adds the rooms the user has left to an initial sync
	// (incremental syncs always report rooms left since the token).
	IncludeLeave bool
	Ephemeral    RoomEventFilter
	State        RoomEventFilter
	Timeline     RoomEventFilter
	AccountData  RoomEventFilter
}

// EventFilter is the spec's EventFilter. A nil list is absent (no
// restriction); an empty, non-nil list matches nothing. Types are Matrix
// globs ('*' for any sequence of characters, '?' for one; package glob),
// compared exactly.
type EventFilter struct {
	// Limit is the maximum number of events; nil means the default. It is
	// never negative and never above MaxTimelineLimit once parsed.
	Limit      *int
	Types      []string
	NotTypes   []string
	Senders    []string
	NotSenders []string
}

// RoomEventFilter is the spec's RoomEventFilter.
type RoomEventFilter struct {
	EventFilter
	Rooms    []string
	NotRooms []string
	// ContainsURL, when set, keeps only events whose content has (true) or
	// lacks (false) a "url" key.
	ContainsURL               *bool
	LazyLoadMembers           bool
	IncludeRedundantMembers   bool
	UnreadThreadNotifications bool
}

// Timeline limits.
const (
	DefaultTimelineLimit = 10
	MaxTimelineLimit     = 100
)

// ValidateFilterJSON checks a filter as POST /user/{userId}/filter
// receives it; the handler stores the JSON as given when it returns nil.
func ValidateFilterJSON(raw []byte) error {
	_, err := ParseFilter(raw)
	return err
}

// ParseFilter reads a filter. Unknown top-level fields are refused with
// M_BAD_JSON, except namespaced ones (with a '.', such as org.matrix.msc…),
// which are ignored like unknown fields inside the nested objects. A value
// of the wrong type is M_BAD_JSON; a negative limit is M_INVALID_PARAM; a
// limit above MaxTimelineLimit is lowered to it.
//
// The room and user IDs a filter names must be valid (M_INVALID_PARAM):
// "not_a_room_id" is a client's mistake, not a filter matching nothing.
func ParseFilter(raw []byte) (Filter, error) {
	f, err := parseFilter(raw)
	if err != nil {
		return Filter{}, err
	}
	return f, f.checkIDs()
}

// ParseStoredFilter reads a filter stored by POST /user/{userId}/filter:
// ParseFilter without the ID check, so a filter stored before that check
// keeps working (an invalid ID in it matches nothing).
func ParseStoredFilter(raw []byte) (Filter, error) { return parseFilter(raw) }

// idList is a list of IDs a filter names, with what they must be.
type idList struct {
	path  string
	ids   []string
	kind  string
	valid func(string) bool
}

// checkIDs reports the first room or user ID in f that is not valid.
func (f *Filter) checkIDs() error {
	user, room := events.ValidUserID, events.ValidRoomID
	lists := []idList{
		{"presence.senders", f.Presence.Senders, "user", user},
		{"presence.not_senders", f.Presence.NotSenders, "user", user},
		{"account_data.senders", f.AccountData.Senders, "user", user},
		{"account_data.not_senders", f.AccountData.NotSenders, "user", user},
		{"room.rooms", f.Room.Rooms, "room", room},
		{"room.not_rooms", f.Room.NotRooms, "room", room},
	}
	for name, rf := range map[string]*RoomEventFilter{"room.ephemeral": &f.Room.Ephemeral, "room.state": &f.Room.State,
		"room.timeline": &f.Room.Timeline, "room.account_data": &f.Room.AccountData} {
		lists = append(lists, rf.idLists(name)...)
	}
	return checkIDLists(lists)
}

// idLists are the ID lists of a RoomEventFilter at path.
func (f *RoomEventFilter) idLists(path string) []idList {
	user, room := events.ValidUserID, events.ValidRoomID
	return []idList{
		{path + ".senders", f.Senders, "user", user},
		{path + ".not_senders", f.NotSenders, "user", user},
		{path + ".rooms", f.Rooms, "room", room},
		{path + ".not_rooms", f.NotRooms, "room", room},
	}
}

func checkIDLists(lists []idList) error {
	for _, l := range lists {
		for _, id := range l.ids {
			if !l.valid(id) {
				return badFilterParam("%s: %q is not a valid %s ID", l.path, id, l.kind)
			}
		}
	}
	return nil
}

// ParseRoomEventFilter reads the RoomEventFilter that /messages, /context
// and /search take, with the rules of the same filter inside a sync
// filter (ParseFilter): one filter serves every list of events.
func ParseRoomEventFilter(raw []byte) (RoomEventFilter, error) {
	obj, err := decodeFilterObject(raw)
	if err != nil {
		return RoomEventFilter{}, err
	}
	f, err := roomEventFilter("filter", obj)
	if err != nil {
		return RoomEventFilter{}, err
	}
	return f, checkIDLists(f.idLists("filter"))
}

// decodeFilterObject decodes a filter's JSON object, numbers kept as
// written.
func decodeFilterObject(raw []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, badFilterJSON("Filter is not valid JSON: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, badFilterJSON("Filter has data after the JSON object")
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, badFilterJSON("Filter must be a JSON object")
	}
	return obj, nil
}

func parseFilter(raw []byte) (Filter, error) {
	obj, err := decodeFilterObject(raw)
	if err != nil {
		return Filter{}, err
	}
	var f Filter
	for k, val := range obj {
		switch k {
		case "event_fields":
			f.EventFields, err = stringList(k, val)
		case "event_format":
			var s string
			if s, err = stringValue(k, val); err == nil && s != "" && s != "client" && s != "federation" {
				err = badFilterJSON("event_format must be \"client\" or \"federation\"")
			}
			f.EventFormat = s
		case "presence":
			f.Presence, err = eventFilter(k, val)
		case "account_data":
			f.AccountData, err = eventFilter(k, val)
		case "room":
			f.Room, err = roomFilter(k, val)
		default:
			if !strings.Contains(k, ".") {
				err = badFilterJSON("Unknown filter field %q", k)
			}
		}
		if err != nil {
			return Filter{}, err
		}
	}
	return f, nil
}

func object(path string, v any) (map[string]any, error) {
	if v == nil {
		return nil, nil
	}
	o, ok := v.(map[string]any)
	if !ok {
		return nil, badFilterJSON("%s must be an object", path)
	}
	return o, nil
}

func stringValue(path string, v any) (string, error) {
	if v == nil {
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", badFilterJSON("%s must be a string", path)
	}
	return s, nil
}

func boolValue(path string, v any) (bool, error) {
	if v == nil {
		return false, nil
	}
	b, ok := v.(bool)
	if !ok {
		return false, badFilterJSON("%s must be a boolean", path)
	}
	return b, nil
}

func stringList(path string, v any) ([]string, error) {
	if v == nil {
		return nil, nil
	}
	a, ok := v.([]any)
	if !ok {
		return nil, badFilterJSON("%s must be an array of strings", path)
	}
	out := make([]string, 0, len(a))
	for _, x := range a {
		s, ok := x.(string)
		if !ok {
			return nil, badFilterJSON("%s must be an array of strings", path)
		}
		out = append(out, s)
	}
	return out, nil
}

func limitValue(path string, v any) (*int, error) {
	if v == nil {
		return nil, nil
	}
	num, ok := v.(json.Number)
	if !ok {
		return nil, badFilterJSON("%s must be an integer", path)
	}
	// Read through big.Float so 1e3 and 100000000000000000000 are numbers
	// too; a fraction is not an integer.
	bf, _, err := big.ParseFloat(string(num), 10, 256, big.ToNearestEven)
	if err != nil || !bf.IsInt() {
		return nil, badFilterJSON("%s must be an integer", path)
	}
	if bf.Sign() < 0 {
		return nil, badFilterParam("%s must not be negative", path)
	}
	n := MaxTimelineLimit
	if i, acc := bf.Int64(); acc == big.Exact && i < int64(MaxTimelineLimit) {
		n = int(i)
	}
	return &n, nil
}

func eventFilterField(f *EventFilter, path, k string, val any) (bool, error) {
	var err error
	switch k {
	case "limit":
		f.Limit, err = limitValue(path+".limit", val)
	case "types":
		f.Types, err = stringList(path+".types", val)
	case "not_types":
		f.NotTypes, err = stringList(path+".not_types", val)
	case "senders":
		f.Senders, err = stringList(path+".senders", val)
	case "not_senders":
		f.NotSenders, err = stringList(path+".not_senders", val)
	default:
		return false, nil
	}
	return true, err
}

func eventFilter(path string, v any) (EventFilter, error) {
	var f EventFilter
	o, err := object(path, v)
	if err != nil {
		return f, err
	}
	for k, val := range o {
		if _, err := eventFilterField(&f, path, k, val); err != nil {
			return f, err
		}
	}
	return f, nil
}

func roomEventFilter(path string, v any) (RoomEventFilter, error) {
	var f RoomEventFilter
	o, err := object(path, v)
	if err != nil {
		return f, err
	}
	for k, val := range o {
		if done, err := eventFilterField(&f.EventFilter, path, k, val); done || err != nil {
			if err != nil {
				return f, err
			}
			continue
		}
		switch k {
		case "rooms":
			f.Rooms, err = stringList(path+".rooms", val)
		case "not_rooms":
			f.NotRooms, err = stringList(path+".not_rooms", val)
		case "contains_url":
			if val != nil {
				var b bool
				b, err = boolValue(path+".contains_url", val)
				f.ContainsURL = &b
			}
		case "lazy_load_members":
			f.LazyLoadMembers, err = boolValue(path+".lazy_load_members", val)
		case "include_redundant_members":
			f.IncludeRedundantMembers, err = boolValue(path+".include_redundant_members", val)
		case "unread_thread_notifications":
			f.UnreadThreadNotifications, err = boolValue(path+".unread_thread_notifications", val)
		}
		if err != nil {
			return f, err
		}
	}
	return f, nil
}

func roomFilter(path string, v any) (RoomFilter, error) {
	var f RoomFilter
	o, err := object(path, v)
	if err != nil {
		return f, err
	}
	for k, val := range o {
		switch k {
		case "rooms":
			f.Rooms, err = stringList(path+".rooms", val)
		case "not_rooms":
			f.NotRooms, err = stringList(path+".not_rooms", val)
		case "include_leave":
			f.IncludeLeave, err = boolValue(path+".include_leave", val)
		case "ephemeral":
			f.Ephemeral, err = roomEventFilter(path+".ephemeral", val)
		case "state":
			f.State, err = roomEventFilter(path+".state", val)
		case "timeline":
			f.Timeline, err = roomEventFilter(path+".timeline", val)
		case "account_data":
			f.AccountData, err = roomEventFilter(path+".account_data", val)
		}
		if err != nil {
			return f, err
		}
	}
	return f, nil
}

// limit is the filter's limit or def.
func (f *EventFilter) limit(def int) int {
	if f.Limit == nil {
		return def
	}
	return *f.Limit
}

// AllowsType reports whether events of type t pass the filter.
func (f *EventFilter) AllowsType(t string) bool {
	for _, p := range f.NotTypes {
		if glob.Match(p, t) {
			return false
		}
	}
	if f.Types == nil {
		return true
	}
	for _, p := range f.Types {
		if glob.Match(p, t) {
			return true
		}
	}
	return false
}

// AllowsSender reports whether events sent by s pass the filter.
func (f *EventFilter) AllowsSender(s string) bool {
	if slices.Contains(f.NotSenders, s) {
		return false
	}
	return f.Senders == nil || slices.Contains(f.Senders, s)
}

// Allows reports whether an event of type t sent by sender passes.
func (f *EventFilter) Allows(t, sender string) bool {
	return f.AllowsType(t) && f.AllowsSender(sender)
}

// AllowsRoom reports whether events of roomID pass the filter.
func (f *RoomEventFilter) AllowsRoom(roomID string) bool {
	return allowsRoom(f.Rooms, f.NotRooms, roomID)
}

// AllowsRoom reports whether roomID appears in the sync at all.
func (f *RoomFilter) AllowsRoom(roomID string) bool {
	return allowsRoom(f.Rooms, f.NotRooms, roomID)
}

func allowsRoom(rooms, notRooms []string, id string) bool {
	if slices.Contains(notRooms, id) {
		return false
	}
	return rooms == nil || slices.Contains(rooms, id)
}

// Keep is allowsEvent in the shape of the keep functions of the rooms
// service's lists (/messages, /context).
func (f *RoomEventFilter) Keep(e store.EventRow) bool { return f.allowsEvent(&e) }

// allowsEvent applies the type, sender, room and contains_url parts to a
// stored event.
func (f *RoomEventFilter) allowsEvent(e *store.EventRow) bool {
	if !f.Allows(e.Type, e.Sender) || !f.AllowsRoom(e.RoomID) {
		return false
	}
	if f.ContainsURL != nil && hasURL(e.JSON) != *f.ContainsURL {
		return false
	}
	return true
}

// hasURL reports whether the PDU's content has a "url" key.
func hasURL(pdu []byte) bool {
	var v struct {
		Content map[string]json.RawMessage `json:"content"`
	}
	if json.Unmarshal(pdu, &v) != nil {
		return false
	}
	_, ok := v.Content["url"]
	return ok
}
