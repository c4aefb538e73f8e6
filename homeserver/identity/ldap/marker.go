package ldap

import (
	"bytes"
	"context"
	"encoding/json"

	"github.com/salonhq/salon/homeserver/rooms"
)

// GroupsEventType is the state event the sync account keeps in each room
// it manages, so the room's members and moderators see which groups the
// room follows and how.
const GroupsEventType = "org.salonhq.ldap.groups"

type groupsContent struct {
	Groups []groupsEntry `json:"groups"`
}

type groupsEntry struct {
	Group           string `json:"group"`
	Mode            string `json:"mode"`
	RemoveLeavers   bool   `json:"remove_leavers"`
	RemoveHandAdded bool   `json:"remove_hand_added"`
}

// markRooms keeps GroupsEventType up to date in the rooms the sync
// account is in, sending it only when it changed.
func (s *Service) markRooms(ctx context.Context) {
	for _, t := range s.targets() {
		roomID, err := s.p.Rooms.ResolveRoom(ctx, t.room)
		if err != nil {
			continue
		}
		if m, err := s.p.Rooms.Membership(ctx, roomID, s.Bot()); err != nil || (m != "join" && m != "invite") {
			continue
		}
		if err := s.botJoined(ctx, roomID); err != nil {
			s.log.Warn("LDAP group sync: the sync account cannot join", "room", t.room, "err", err)
			continue
		}
		var want groupsContent
		for _, gi := range t.groups {
			g := s.cfg.Groups[gi]
			want.Groups = append(want.Groups, groupsEntry{g.Name(), g.Mode, g.RemoveLeavers, g.RemoveHandAdded})
		}
		body, _ := json.Marshal(want)
		if bytes.Equal(body, s.currentMarker(ctx, roomID)) {
			continue
		}
		empty := ""
		if _, err := s.p.Rooms.Send(ctx, roomID, s.Bot(), rooms.Event{Type: GroupsEventType, StateKey: &empty, Content: body}); err != nil {
			s.log.Warn("LDAP group sync: cannot show the room's groups (the sync account needs the power level for state events)", "room", t.room, "err", err)
		}
	}
}

// currentMarker is the room's GroupsEventType content, re-encoded the way
// markRooms encodes it (nil when there is none).
func (s *Service) currentMarker(ctx context.Context, roomID string) []byte {
	rows, _, err := s.p.Rooms.State(ctx, s.Bot(), roomID)
	if err != nil {
		return nil
	}
	for _, r := range rows {
		if r.Type != GroupsEventType || r.StateKey == nil || *r.StateKey != "" {
			continue
		}
		var pdu struct {
			Content groupsContent `json:"content"`
		}
		if json.Unmarshal(r.JSON, &pdu) != nil {
			return nil
		}
		b, _ := json.Marshal(pdu.Content)
		return b
	}
	return nil
}
