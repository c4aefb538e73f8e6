package rooms

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"sort"
	"strings"

	"github.com/salonhq/salon/homeserver/authrules"
	"github.com/salonhq/salon/homeserver/events"
	"github.com/salonhq/salon/internal/mxerr"
)

// Spaces (Client-Server API, "Spaces"): a space is a room of type m.space
// whose m.space.child state events name its rooms. Access can follow the
// space through the restricted join rules.

// restrictedAuthoriser decides a join into a restricted room: it returns
// the joined local user who authorises it (for
// join_authorised_via_users_server), "" when no authorisation is needed
// (the user is invited or joined already, or the rule is not restricted),
// or M_FORBIDDEN when the user is in none of the allowed rooms.
func (s *Service) restrictedAuthoriser(ctx context.Context, roomID, userID string) (string, error) {
	r, err := s.lockRoom(ctx, roomID)
	if err != nil {
		return "", err
	}
	jr := r.state[events.StateTuple{Type: "m.room.join_rules"}]
	mem := r.membership(userID)
	var rule string
	var allow []authrules.AllowRule
	if jr != nil {
		rule, allow = authrules.JoinRule(jr.Content)
	}
	if jr == nil || mem == "join" || mem == "invite" || (rule != "restricted" && rule != "knock_restricted") {
		// Every other join: no authoriser, and no look at the members
		// (which cost every join into a room of 5,000 members 5,000
		// parses of member events, issue 24).
		r.mu.Unlock()
		return "", nil
	}
	pl, plErr := r.powerLevels()
	var members []string
	for t, ev := range r.state {
		if t.Type == "m.room.member" && ev.Membership() == "join" {
			members = append(members, t.StateKey)
		}
	}
	r.mu.Unlock()
	if plErr != nil {
		return "", plErr
	}
	allowed := false
	for _, a := range allow {
		if a.Type != authrules.AllowTypeRoomMembership || !events.ValidRoomID(a.RoomID) {
			continue
		}
		if m, err := s.Membership(ctx, a.RoomID, userID); err == nil && m == "join" {
			allowed = true
			break
		}
	}
	if !allowed {
		if rule == "knock_restricted" {
			return "", mxerr.Forbid("You are not a member of a space this room belongs to; you may knock")
		}
		return "", mxerr.Forbid("You are not a member of a space this room belongs to")
	}
	// The authoriser must be joined and able to invite.
	sort.Strings(members)
	best, bestLevel := "", int64(-1<<62)
	for _, m := range members {
		if !strings.HasSuffix(m, ":"+s.p.ServerName) {
			continue
		}
		if lvl := pl.UserLevel(m); lvl >= pl.Invite() && lvl > bestLevel {
			best, bestLevel = m, lvl
		}
	}
	if best == "" {
		return "", mxerr.Forbid("No member of this room can authorise your join")
	}
	return best, nil
}

// HierarchyRequest is GET /hierarchy's parameters.
type HierarchyRequest struct {
	Root          string
	SuggestedOnly bool
	MaxDepth      int // < 0: no limit
	Limit         int
	From          string
}

// HierarchyPage is one page of a space's hierarchy.
type HierarchyPage struct {
	Rooms     []map[string]any
	NextBatch string
}

type hierToken struct {
	Root      string `json:"r"`
	Offset    int    `json:"o"`
	Suggested bool   `json:"s"`
	Depth     int    `json:"d"`
}

func encodeHierToken(t hierToken) string {
	b, _ := json.Marshal(t)
	return base64.RawURLEncoding.EncodeToString(b)
}

// childLink is an m.space.child event as the walk reads it.
type childLink struct {
	roomID    string
	order     string
	ts        int64
	suggested bool
	event     *events.Event
}

// Hierarchy walks a space depth-first and returns the rooms the user may
// see: joined, public, world_readable, or joinable through a space they are
// in. Rooms they may not see are left out entirely (not even their IDs in
// children_state), and loops in the graph are walked once.
func (s *Service) Hierarchy(ctx context.Context, userID string, req HierarchyRequest) (HierarchyPage, error) {
	var page HierarchyPage
	offset := 0
	if req.From != "" {
		b, err := base64.RawURLEncoding.DecodeString(req.From)
		var t hierToken
		if err != nil || json.Unmarshal(b, &t) != nil || t.Root != req.Root || t.Suggested != req.SuggestedOnly ||
			t.Depth != req.MaxDepth || t.Offset < 0 {
			return page, mxerr.InvalidParamf("Invalid or foreign pagination token")
		}
		offset = t.Offset
	}
	if ok, err := s.canPeek(ctx, userID, req.Root); err != nil {
		return page, err
	} else if !ok {
		return page, mxerr.Forbid("You cannot see this space")
	}
	type item struct {
		roomID string
		depth  int
	}
	queue := []item{{req.Root, 0}}
	seen := map[string]bool{req.Root: true}
	index := 0
	const maxRooms = 10_000
	for len(queue) > 0 && len(page.Rooms) < req.Limit && index < maxRooms {
		it := queue[0]
		queue = queue[1:]
		visible, err := s.canPeek(ctx, userID, it.roomID)
		if err != nil || !visible {
			continue
		}
		summary, links, err := s.roomSummary(ctx, it.roomID)
		if err != nil {
			continue
		}
		if typ, _ := summary["room_type"].(string); typ != "m.space" && it.roomID != req.Root {
			// The tree is made of spaces: a room that is not one is a
			// leaf, whatever m.space.child events it holds (as Synapse).
			links = nil
		}
		var childState []json.RawMessage
		var next []item
		for _, l := range links {
			if req.SuggestedOnly && !l.suggested {
				continue
			}
			if ok, _ := s.canPeek(ctx, userID, l.roomID); !ok {
				continue
			}
			childState = append(childState, strippedEvent(l.event))
			if !seen[l.roomID] && (req.MaxDepth < 0 || it.depth+1 <= req.MaxDepth) {
				seen[l.roomID] = true
				next = append(next, item{l.roomID, it.depth + 1})
			}
		}
		// Depth-first, in the children's order (the spec walks the tree
		// "in a depth-first manner"): they go before the rest.
		queue = append(next, queue...)
		if childState == nil {
			childState = []json.RawMessage{}
		}
		summary["children_state"] = childState
		if index >= offset {
			page.Rooms = append(page.Rooms, summary)
		}
		index++
	}
	if len(queue) > 0 && len(page.Rooms) == req.Limit {
		page.NextBatch = encodeHierToken(hierToken{Root: req.Root, Offset: index, Suggested: req.SuggestedOnly, Depth: req.MaxDepth})
	}
	return page, nil
}

func strippedEvent(ev *events.Event) json.RawMessage {
	b, _ := json.Marshal(map[string]any{
		"type": ev.Type, "state_key": ev.StateKeyOrEmpty(), "content": ev.Content, "sender": ev.Sender,
		"origin_server_ts": ev.OriginServerTS,
	})
	return b
}

// canPeek reports whether a user may see a room's summary in a hierarchy.
func (s *Service) canPeek(ctx context.Context, userID, roomID string) (bool, error) {
	r, err := s.lockRoom(ctx, roomID)
	if err != nil {
		return false, nil // unknown rooms are simply not shown
	}
	mem := r.membership(userID)
	var rule string
	var allow []authrules.AllowRule
	if jr := r.state[events.StateTuple{Type: "m.room.join_rules"}]; jr != nil {
		rule, allow = authrules.JoinRule(jr.Content)
	}
	hv := ""
	if ev := r.state[events.StateTuple{Type: "m.room.history_visibility"}]; ev != nil {
		hv = authrules.HistoryVisibility(ev.Content)
	}
	r.mu.Unlock()
	switch {
	case mem == "join" || mem == "invite" || mem == "knock":
		return true, nil
	case mem == "ban":
		return false, nil
	case rule == "public" || rule == "knock" || hv == "world_readable":
		return true, nil
	case rule == "restricted" || rule == "knock_restricted":
		for _, a := range allow {
			if m, err := s.Membership(ctx, a.RoomID, userID); err == nil && m == "join" {
				return true, nil
			}
		}
	}
	return false, nil
}

// roomSummary is a room's hierarchy entry and its child links, ordered as
// the spec says: by "order", then by the child event's timestamp, then ID.
func (s *Service) roomSummary(ctx context.Context, roomID string) (map[string]any, []childLink, error) {
	info, err := s.PublicInfo(ctx, roomID)
	if err != nil {
		return nil, nil, err
	}
	r, err := s.lockRoom(ctx, roomID)
	if err != nil {
		return nil, nil, err
	}
	defer r.mu.Unlock()
	if info["join_rule"] == "restricted" || info["join_rule"] == "knock_restricted" {
		if jr := r.state[events.StateTuple{Type: "m.room.join_rules"}]; jr != nil {
			_, allow := authrules.JoinRule(jr.Content)
			ids := []string{}
			for _, a := range allow {
				if a.Type == authrules.AllowTypeRoomMembership {
					ids = append(ids, a.RoomID)
				}
			}
			info["allowed_room_ids"] = ids
		}
	}
	var links []childLink
	for t, ev := range r.state {
		if t.Type != "m.space.child" || !events.ValidRoomID(t.StateKey) {
			continue
		}
		var c struct {
			Via       []any `json:"via"`
			Order     any   `json:"order"`
			Suggested bool  `json:"suggested"`
		}
		if json.Unmarshal(ev.Content, &c) != nil || len(c.Via) == 0 {
			continue // no via: the link is removed
		}
		order, _ := c.Order.(string)
		if len(order) > 50 || strings.IndexFunc(order, func(r rune) bool { return r < 0x20 || r > 0x7e }) >= 0 {
			order = ""
		}
		links = append(links, childLink{roomID: t.StateKey, order: order, ts: ev.OriginServerTS, suggested: c.Suggested, event: ev})
	}
	sort.Slice(links, func(i, j int) bool {
		a, b := links[i], links[j]
		if (a.order != "") != (b.order != "") {
			return a.order != ""
		}
		if a.order != b.order {
			return a.order < b.order
		}
		if a.ts != b.ts {
			return a.ts < b.ts
		}
		return a.roomID < b.roomID
	})
	return info, links, nil
}
