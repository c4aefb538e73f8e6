package clientapi

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/salonhq/salon/homeserver/rooms"
	"github.com/salonhq/salon/homeserver/store"
	"github.com/salonhq/salon/homeserver/sync"
	"github.com/salonhq/salon/internal/mxerr"
)

// POST /search: the room_events category, full text in the store's index
// and filtered by history visibility in rooms.Search
// (https://spec.matrix.org/latest/client-server-api/#server-side-search).
func (a *API) searchRoutes() {
	a.handle(v3+"/search", methods{http.MethodPost: a.authed(a.search)})
}

type searchRequest struct {
	SearchCategories *struct {
		RoomEvents *roomEventsCriteria `json:"room_events"`
	} `json:"search_categories"`
}

type roomEventsCriteria struct {
	SearchTerm   *string         `json:"search_term"`
	Keys         []string        `json:"keys"`
	Filter       json.RawMessage `json:"filter"`
	OrderBy      string          `json:"order_by"`
	EventContext *struct {
		BeforeLimit    *int `json:"before_limit"`
		AfterLimit     *int `json:"after_limit"`
		IncludeProfile bool `json:"include_profile"`
	} `json:"event_context"`
	IncludeState bool `json:"include_state"`
	Groupings    *struct {
		GroupBy []struct {
			Key string `json:"key"`
		} `json:"group_by"`
	} `json:"groupings"`
}

// A search's next_batch names where the next page starts: "r<pos>" (by
// recency: matches older than pos) or "k<n>" (by rank: after the n best).
func parseSearchBatch(tok string, byRank bool) (int64, error) {
	prefix := "r"
	if byRank {
		prefix = "k"
	}
	rest, ok := strings.CutPrefix(tok, prefix)
	n, err := strconv.ParseInt(rest, 10, 64)
	if !ok || err != nil || n < 0 {
		return 0, mxerr.InvalidParamf("Invalid next_batch token")
	}
	return n, nil
}

func (a *API) search(w http.ResponseWriter, r *http.Request, dev store.Device) error {
	var req searchRequest
	if err := a.decode(r, &req, false); err != nil {
		return err
	}
	if req.SearchCategories == nil {
		return missing("search_categories")
	}
	c := req.SearchCategories.RoomEvents
	if c == nil {
		return reply(w, map[string]any{"search_categories": empty})
	}
	if c.SearchTerm == nil {
		return missing("search_term")
	}
	p := rooms.SearchParams{Terms: rooms.SearchTerms(*c.SearchTerm)}
	for _, k := range c.Keys {
		if k != "content.body" && k != "content.name" && k != "content.topic" {
			return mxerr.InvalidParamf("Unknown search key %q", k)
		}
	}
	if len(c.Keys) > 0 {
		p.Keys = c.Keys
	}
	switch c.OrderBy {
	case "", "rank":
		p.ByRank = true
	case "recent":
	default:
		return mxerr.InvalidParamf("order_by must be rank or recent")
	}
	limit := 10
	if len(c.Filter) > 0 && string(c.Filter) != "null" {
		// The same RoomEventFilter as /messages' and /sync's; a negative
		// limit is refused there, one above 100 lowered to 100.
		f, err := sync.ParseRoomEventFilter(c.Filter)
		if err != nil {
			return err
		}
		if f.Limit != nil {
			// Each result may bring its context: bound the work of one page.
			limit = min(max(*f.Limit, 1), 100)
		}
		p.Rooms, p.NotRooms = f.Rooms, f.NotRooms
		p.Keep = func(m store.SearchMatch) bool { return f.Allows(m.Type, m.Sender) }
	}
	before, after := 5, 5
	if ec := c.EventContext; ec != nil {
		if ec.BeforeLimit != nil {
			before = *ec.BeforeLimit
		}
		if ec.AfterLimit != nil {
			after = *ec.AfterLimit
		}
		if before < 0 || after < 0 {
			return mxerr.InvalidParamf("event_context limits must not be negative")
		}
		before, after = min(before, 100), min(after, 100)
	}
	var groupBy []string
	if c.Groupings != nil {
		for _, g := range c.Groupings.GroupBy {
			if g.Key != "room_id" && g.Key != "sender" {
				return mxerr.InvalidParamf("group_by key must be room_id or sender")
			}
			groupBy = append(groupBy, g.Key)
		}
	}
	var from int64 = -1
	if tok := r.URL.Query().Get("next_batch"); tok != "" {
		n, err := parseSearchBatch(tok, p.ByRank)
		if err != nil {
			return err
		}
		from = n
	}

	ctx := r.Context()
	matches, err := a.p.Rooms.Search(ctx, dev.UserID, p)
	if err != nil {
		return err
	}
	// The page: by rank, from the n-th match; by recency, the matches
	// older than the token's position.
	start := 0
	if from >= 0 {
		if p.ByRank {
			start = int(min(from, int64(len(matches))))
		} else {
			start = len(matches)
			for i, m := range matches {
				if m.Pos < from {
					start = i
					break
				}
			}
		}
	}
	end := min(start+limit, len(matches))
	page := matches[start:end]

	results := make([]map[string]any, 0, len(page))
	for _, m := range page {
		res, err := a.searchResult(r, dev, m, c, before, after)
		if err != nil {
			return err
		}
		results = append(results, res)
	}
	out := map[string]any{
		"count":      len(matches),
		"highlights": nonNil(p.Terms),
		"results":    results,
	}
	// A full page names the next one even when nothing follows (the next
	// page is then empty), as Synapse does and Complement expects.
	next := ""
	if len(page) > 0 && len(page) == limit {
		if p.ByRank {
			next = "k" + strconv.Itoa(end)
		} else {
			next = "r" + strconv.FormatInt(page[len(page)-1].Pos, 10)
		}
		out["next_batch"] = next
	}
	if c.IncludeState {
		state := map[string]any{}
		for _, m := range page {
			if _, done := state[m.RoomID]; done {
				continue
			}
			rows, v, err := a.p.Rooms.State(ctx, dev.UserID, m.RoomID)
			if err != nil {
				return err
			}
			evs, err := clientEvents(v, rows, dev)
			if err != nil {
				return err
			}
			state[m.RoomID] = evs
		}
		out["state"] = state
	}
	if len(groupBy) > 0 {
		out["groups"] = searchGroups(groupBy, page, matches[end:], next)
	}
	return reply(w, map[string]any{"search_categories": map[string]any{"room_events": out}})
}

// searchGroups partitions a page of results by room or sender. A group
// whose values have more results past this page names the page's
// next_batch, which leads to them.
func searchGroups(keys []string, page, rest []store.SearchMatch, next string) map[string]any {
	value := func(key string, m store.SearchMatch) string {
		if key == "sender" {
			return m.Sender
		}
		return m.RoomID
	}
	groups := map[string]any{}
	for _, key := range keys {
		type group struct {
			Results   []string `json:"results"`
			Order     int      `json:"order"`
			NextBatch string   `json:"next_batch,omitempty"`
		}
		byValue := map[string]*group{}
		for _, m := range page {
			v := value(key, m)
			g := byValue[v]
			if g == nil {
				g = &group{Results: []string{}, Order: len(byValue) + 1}
				byValue[v] = g
			}
			g.Results = append(g.Results, m.EventID)
		}
		for _, m := range rest {
			if g := byValue[value(key, m)]; g != nil {
				g.NextBatch = next
			}
		}
		groups[key] = byValue
	}
	return groups
}

// searchResult is one result: the event, its rank and, if asked, its
// context (readable events around it, the sender's profile then).
func (a *API) searchResult(r *http.Request, dev store.Device, m store.SearchMatch, c *roomEventsCriteria, before, after int) (map[string]any, error) {
	ctx := r.Context()
	row, v, err := a.p.Rooms.Event(ctx, dev.UserID, m.RoomID, m.EventID)
	if err != nil {
		return nil, err
	}
	ev, err := clientEvent(v, row, dev)
	if err != nil {
		return nil, err
	}
	res := map[string]any{"rank": m.Rank, "result": ev}
	if c.EventContext == nil {
		return res, nil
	}
	cx := map[string]any{}
	var evsBefore, evsAfter []store.EventRow
	if before > 0 {
		pg, err := a.p.Rooms.Messages(ctx, dev.UserID, m.RoomID, rooms.Oldest, m.Pos, true, before, nil)
		if err != nil {
			return nil, err
		}
		evsBefore = pg.Events
	}
	if after > 0 {
		pg, err := a.p.Rooms.Messages(ctx, dev.UserID, m.RoomID, m.Pos, a.p.Store.CurrentPos()+1, false, after, nil)
		if err != nil {
			return nil, err
		}
		evsAfter = pg.Events
	}
	startPos, endPos := m.Pos, m.Pos+1
	if n := len(evsBefore); n > 0 {
		startPos = evsBefore[n-1].Pos
	}
	if n := len(evsAfter); n > 0 {
		endPos = evsAfter[n-1].Pos + 1
	}
	cx["start"] = "t" + strconv.FormatInt(startPos, 10)
	cx["end"] = "t" + strconv.FormatInt(endPos, 10)
	if cx["events_before"], err = clientEvents(v, evsBefore, dev); err != nil {
		return nil, err
	}
	if cx["events_after"], err = clientEvents(v, evsAfter, dev); err != nil {
		return nil, err
	}
	if c.EventContext.IncludeProfile {
		cx["profile_info"] = map[string]any{m.Sender: a.historicProfile(r, m)}
	}
	res["context"] = cx
	return res, nil
}

// historicProfile is the sender's display name and avatar as their
// membership event stood when they sent the event.
func (a *API) historicProfile(r *http.Request, m store.SearchMatch) map[string]string {
	out := map[string]string{}
	hist, err := a.p.Store.StateHistory(r.Context(), m.RoomID, "m.room.member", m.Sender)
	if err != nil {
		return out
	}
	i := slices.IndexFunc(hist, func(e store.EventRow) bool { return e.Pos > m.Pos })
	if i == -1 {
		i = len(hist)
	}
	if i == 0 {
		return out
	}
	var ev struct {
		Content struct {
			DisplayName *string `json:"displayname"`
			AvatarURL   *string `json:"avatar_url"`
		} `json:"content"`
	}
	if json.Unmarshal(hist[i-1].JSON, &ev) != nil {
		return out
	}
	if ev.Content.DisplayName != nil {
		out["displayname"] = *ev.Content.DisplayName
	}
	if ev.Content.AvatarURL != nil {
		out["avatar_url"] = *ev.Content.AvatarURL
	}
	return out
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
