package signaling

import (
	"fmt"
	"slices"
	"testing"
)

// TestSlotLog: the slot log always names LegacySlotID first, notes each
// other slot once, and stays within its bounds (per room, and in all,
// forgetting the oldest).
func TestSlotLog(t *testing.T) {
	var l slotLog
	if got := l.slots("!a:hs"); !slices.Equal(got, []string{LegacySlotID}) {
		t.Fatalf("empty log: %v", got)
	}
	l.note("!a:hs", LegacySlotID)
	l.note("!a:hs", "side")
	l.note("!a:hs", "side")
	if got := l.slots("!a:hs"); !slices.Equal(got, []string{LegacySlotID, "side"}) {
		t.Fatalf("slots = %v", got)
	}
	for i := 0; i < 2*maxSlotsPerRoom; i++ {
		l.note("!b:hs", fmt.Sprint("s", i))
	}
	if got := l.slots("!b:hs"); len(got) != 1+maxSlotsPerRoom {
		t.Fatalf("room b has %d slots, want %d", len(got), 1+maxSlotsPerRoom)
	}
	for i := 0; i < maxSlotEntries; i++ {
		l.note(fmt.Sprint("!r", i, ":hs"), "x")
	}
	if len(l.order) != maxSlotEntries {
		t.Fatalf("log holds %d pairs, want %d", len(l.order), maxSlotEntries)
	}
	// The oldest pairs (rooms a and b) were forgotten, the newest kept.
	if got := l.slots("!a:hs"); !slices.Equal(got, []string{LegacySlotID}) {
		t.Fatalf("room a: %v", got)
	}
	if _, ok := l.rooms["!b:hs"]; ok {
		t.Fatal("room b still remembered")
	}
	if got := l.slots(fmt.Sprint("!r", maxSlotEntries-1, ":hs")); !slices.Equal(got, []string{LegacySlotID, "x"}) {
		t.Fatalf("newest room: %v", got)
	}
	if len(l.rooms) != maxSlotEntries {
		t.Fatalf("%d rooms remembered", len(l.rooms))
	}
}
