package pushrules

import (
	"context"
	"encoding/json"
)

// nameKey is a member event whose display name was read.
type nameKey struct{ room, user, event string }

// displayName is the user's display name in the room, for
// contains_display_name: the displayname of their newest member event
// there ("" when it has none), the profile's when they have no member
// event in the room. The member history is the store's (kept current by
// every event written, so no profile is read per count: issue 24), and
// each event's name is parsed once.
func (s *Service) displayName(ctx context.Context, roomID, userID string) string {
	hist, err := s.st.StateHistory(ctx, roomID, "m.room.member", userID)
	if err != nil || len(hist) == 0 {
		p, _ := s.st.Profile(ctx, userID)
		return p.DisplayName
	}
	ev := hist[len(hist)-1]
	k := nameKey{roomID, userID, ev.EventID}
	s.mu.Lock()
	name, ok := s.names[k]
	s.mu.Unlock()
	if ok {
		return name
	}
	var e struct {
		Content struct {
			DisplayName any `json:"displayname"`
		} `json:"content"`
	}
	_ = json.Unmarshal(ev.JSON, &e)
	name, _ = e.Content.DisplayName.(string)
	s.mu.Lock()
	if len(s.names) >= 100_000 {
		clear(s.names)
	}
	s.names[k] = name
	s.mu.Unlock()
	return name
}
