package signaling

import (
	"slices"
	"sync"
)

// Bounds of the slot log: how many (room, slot) pairs it remembers in all,
// and how many slots of one room.
const (
	maxSlotEntries  = 4096
	maxSlotsPerRoom = 16
)

// slotLog remembers which MatrixRTC slots other than LegacySlotID this
// process has issued tokens for, so that a change to a Matrix room reaches
// the LiveKit rooms of all its calls. It is bounded: past maxSlotsPerRoom
// a room's further slots are not noted, and past maxSlotEntries the
// oldest pair is forgotten (that call then keeps the grants its
// participants joined with until they rejoin).
type slotLog struct {
	mu    sync.Mutex
	rooms map[string][]string
	order []roomSlot // oldest first
}

type roomSlot struct{ room, slot string }

func (l *slotLog) note(roomID, slotID string) {
	if slotID == LegacySlotID {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.rooms == nil {
		l.rooms = map[string][]string{}
	}
	slots := l.rooms[roomID]
	if slices.Contains(slots, slotID) || len(slots) >= maxSlotsPerRoom {
		return
	}
	if len(l.order) >= maxSlotEntries {
		old := l.order[0]
		l.order = l.order[1:]
		rest := slices.DeleteFunc(l.rooms[old.room], func(s string) bool { return s == old.slot })
		if len(rest) == 0 {
			delete(l.rooms, old.room)
		} else {
			l.rooms[old.room] = rest
		}
	}
	l.rooms[roomID] = append(l.rooms[roomID], slotID)
	l.order = append(l.order, roomSlot{roomID, slotID})
}

func (l *slotLog) slots(roomID string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string{LegacySlotID}, l.rooms[roomID]...)
}

// Slots lists the MatrixRTC slot IDs of a Matrix room whose calls may have
// participants on the embedded SFU: LegacySlotID (Element Call's and the
// legacy request's) first, then the others this process has issued
// tokens for (bounded; see slotLog). Give it to RTCParams.Slots.
func (s *JWTService) Slots(roomID string) []string { return s.slots.slots(roomID) }
