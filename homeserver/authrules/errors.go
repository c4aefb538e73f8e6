package authrules

import (
	"errors"
	"fmt"
)

var (
	// ErrForbidden is wrapped by every refusal of the authorization rules.
	// The wrapping error's text names the rule that failed.
	ErrForbidden = errors.New("forbidden")

	// ErrUnsupportedRoomVersion reports an event or content of a room
	// version this package has no rules for. It is a caller error, not a
	// refusal by the rules, and does not wrap ErrForbidden.
	ErrUnsupportedRoomVersion = errors.New("unsupported room version")

	// ErrInvalidPowerLevels reports m.room.power_levels content that breaks
	// the room version's schema (rule 9.1 to 9.3). On the send path it is a
	// bad request; inside Allowed it comes wrapped together with
	// ErrForbidden.
	ErrInvalidPowerLevels = errors.New("invalid m.room.power_levels content")

	// ErrInvalidCreators reports additional_creators that are not an array
	// of user IDs (v12 rule 1.4); a bad request on the send path.
	ErrInvalidCreators = errors.New("invalid additional_creators")

	// ErrThirdPartyInviteUnsupported is wrapped, together with ErrForbidden,
	// when an invite carries content.third_party_invite: Salon does not
	// verify third-party invite signatures yet, so it refuses such invites.
	ErrThirdPartyInviteUnsupported = errors.New("third-party invites are not supported")
)

// forbid returns an error wrapping ErrForbidden with a message naming the
// rule that failed.
func forbid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrForbidden, fmt.Sprintf(format, args...))
}
