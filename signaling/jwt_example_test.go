package signaling_test

import (
	"fmt"

	"github.com/salonhq/salon/signaling"
)

// The LiveKit room of a Matrix room's call and the participant identity of
// one member: the same names lk-jwt-service gives them, so clients find
// each other whichever service issued their tokens.
func ExampleLiveKitRoomAlias() {
	fmt.Println(signaling.LiveKitRoomAlias("!abc:example.org", signaling.LegacySlotID))
	fmt.Println(signaling.LiveKitIdentity("@alice:example.com", "DEVICE123", "memberABC"))
	fmt.Println(signaling.LegacyLiveKitIdentity("@alice:example.com", "DEVICE123"))
	// Output:
	// 9YzbCxM8P0fwObUtiQ9m/ujMP9ruNMxS7SOsugBEaxA
	// J+T45tGruxc+HrUOqJJlyQSV33m728Cme4+vt8/SWrU
	// @alice:example.com:DEVICE123
}
