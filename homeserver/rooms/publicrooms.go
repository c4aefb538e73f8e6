package rooms

import (
	"context"
	"encoding/json"
	"sort"
	"strconv"
	"strings"

	"github.com/salonhq/salon/homeserver/authrules"
	"github.com/salonhq/salon/homeserver/events"
	"github.com/salonhq/salon/internal/mxerr"
)

// PublicRoomsQuery selects a page of this server's public room directory
// (Client-Server API GET and POST /publicRooms, and the Server-Server
// API's /publicRooms, which answer the same).
type PublicRoomsQuery struct {
	// Limit is the page size: 0 means 100, more than 500 means 500.
	Limit int
	// Since is a next_batch or prev_batch token of an earlier page.
	Since string
	// Term keeps rooms whose name, topic or canonical alias contains it
	// (case-insensitively).
	Term string
	// RoomTypes keeps rooms of these types ("" for rooms without a type);
	// nil keeps every room.
	RoomTypes []string
}

// PublicRooms is one page of the public room directory, the rooms with
// most joined members first: chunk, total_room_count_estimate and the
// tokens next_batch and prev_batch.
func (s *Service) PublicRooms(ctx context.Context, q PublicRoomsQuery) (map[string]any, error) {
	limit := q.Limit
	if limit <= 0 || limit > 500 {
		limit = min(max(limit, 100), 500)
	}
	offset := 0
	if q.Since != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(q.Since, "o"))
		if err != nil || n < 0 {
			return nil, mxerr.InvalidParamf("Invalid since token")
		}
		offset = n
	}
	ids, err := s.p.Store.PublishedRooms(ctx)
	if err != nil {
		return nil, err
	}
	var chunk []map[string]any
	for _, id := range ids {
		info, listed, err := s.DirectoryEntry(ctx, id)
		if err != nil || !listed {
			continue
		}
		if q.Term != "" && !matchesTerm(info, q.Term) {
			continue
		}
		if q.RoomTypes != nil {
			typ, _ := info["room_type"].(string)
			found := false
			for _, t := range q.RoomTypes {
				found = found || t == typ
			}
			if !found {
				continue
			}
		}
		chunk = append(chunk, info)
	}
	sort.SliceStable(chunk, func(i, j int) bool {
		return chunk[i]["num_joined_members"].(int) > chunk[j]["num_joined_members"].(int)
	})
	total := len(chunk)
	out := map[string]any{"total_room_count_estimate": total}
	offset = min(offset, total)
	end := min(offset+limit, total)
	page := chunk[offset:end]
	if page == nil {
		page = []map[string]any{}
	}
	out["chunk"] = page
	if end < total {
		out["next_batch"] = "o" + strconv.Itoa(end)
	}
	if offset > 0 {
		out["prev_batch"] = "o" + strconv.Itoa(max(0, offset-limit))
	}
	return out, nil
}

func matchesTerm(info map[string]any, term string) bool {
	term = strings.ToLower(term)
	for _, k := range []string{"name", "topic", "canonical_alias"} {
		if s, ok := info[k].(string); ok && strings.Contains(strings.ToLower(s), term) {
			return true
		}
	}
	return false
}

// ParseRoomTypes reads a /publicRooms filter's room_types: a list whose
// null entry stands for rooms without a type. Absent (nil) keeps every
// room; anything but a list of strings and nulls is M_BAD_JSON.
func ParseRoomTypes(raw json.RawMessage) ([]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var list []*string
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, mxerr.BadJSONf("filter.room_types must be a list of strings and nulls")
	}
	out := make([]string, 0, len(list))
	for _, t := range list {
		if t == nil {
			out = append(out, "")
		} else {
			out = append(out, *t)
		}
	}
	return out, nil
}

// ServerHierarchy is the Server-Server API's /hierarchy of a space: the
// room's summary with all its m.space.child events, the summaries of its
// children the requesting server may peek or join, and the IDs of those
// it may not. Children this server does not know are left out; so are
// children not suggested when suggestedOnly. The room itself unknown, or
// not visible to the server, is M_NOT_FOUND.
func (s *Service) ServerHierarchy(ctx context.Context, server, roomID string, suggestedOnly bool) (map[string]any, error) {
	notFound := mxerr.NotFoundf("Room not found")
	if ok, err := s.serverCanPeek(ctx, server, roomID); err != nil {
		return nil, err
	} else if !ok {
		return nil, notFound
	}
	summary, links, err := s.roomSummary(ctx, roomID)
	if err != nil {
		return nil, notFound
	}
	childState := []json.RawMessage{}
	children := []map[string]any{}
	inaccessible := []string{}
	for _, l := range links {
		if suggestedOnly && !l.suggested {
			continue
		}
		childState = append(childState, strippedEvent(l.event))
		if _, err := s.Version(ctx, l.roomID); err != nil {
			continue // not known here
		}
		ok, err := s.serverCanPeek(ctx, server, l.roomID)
		if err != nil {
			return nil, err
		}
		if !ok {
			inaccessible = append(inaccessible, l.roomID)
			continue
		}
		cs, clinks, err := s.roomSummary(ctx, l.roomID)
		if err != nil {
			continue
		}
		cstate := []json.RawMessage{}
		for _, cl := range clinks {
			cstate = append(cstate, strippedEvent(cl.event))
		}
		cs["children_state"] = cstate
		children = append(children, cs)
	}
	summary["children_state"] = childState
	return map[string]any{"room": summary, "children": children, "inaccessible_children": inaccessible}, nil
}

// serverCanPeek reports whether a server could peek into or join a room:
// one of its users is in it (joined, invited or knocking), its join rule
// lets anyone join or knock, its history is world_readable, or it is
// restricted to rooms one of the server's users is joined to.
func (s *Service) serverCanPeek(ctx context.Context, server, roomID string) (bool, error) {
	r, err := s.lockRoom(ctx, roomID)
	if err != nil {
		return false, nil // unknown rooms are not shown
	}
	mine := false
	var rule string
	var allow []authrules.AllowRule
	for t, ev := range r.state {
		if t.Type == "m.room.member" && strings.HasSuffix(t.StateKey, ":"+server) {
			switch ev.Membership() {
			case "join", "invite", "knock":
				mine = true
			}
		}
	}
	if jr := r.state[events.StateTuple{Type: "m.room.join_rules"}]; jr != nil {
		rule, allow = authrules.JoinRule(jr.Content)
	}
	hv := ""
	if ev := r.state[events.StateTuple{Type: "m.room.history_visibility"}]; ev != nil {
		hv = authrules.HistoryVisibility(ev.Content)
	}
	r.mu.Unlock()
	switch {
	case mine, rule == "public", rule == "knock", rule == "knock_restricted", hv == "world_readable":
		return true, nil
	case rule == "restricted":
		for _, a := range allow {
			if a.Type != authrules.AllowTypeRoomMembership || !events.ValidRoomID(a.RoomID) || a.RoomID == roomID {
				continue
			}
			members, err := s.Members(ctx, a.RoomID, "join")
			if err != nil {
				continue
			}
			for _, m := range members {
				if strings.HasSuffix(m, ":"+server) {
					return true, nil
				}
			}
		}
	}
	return false, nil
}
