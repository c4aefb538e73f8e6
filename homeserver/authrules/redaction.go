package authrules

import (
	"encoding/json"

	"github.com/salonhq/salon/homeserver/events"
)

// RedactionApplies decides, on receipt, whether a redaction that the
// authorization rules accepted may take effect on original ("Handling
// redactions", unchanged from v3 through v11): the redaction's sender has
// the redact level, or is on the same server as original's sender. The
// server check lets a server redact its own users' events; it is not a
// same-user check, so the client send path uses CanRedact instead.
// https://spec.matrix.org/latest/rooms/v11/#handling-redactions
//
// pl is the power levels in force for the redaction (CurrentPowerLevels of
// the state before it). The error wraps ErrForbidden.
func RedactionApplies(redaction, original *events.Event, pl PowerLevels) error {
	if err := redactionTargets(redaction, original); err != nil {
		return err
	}
	if pl.UserLevel(redaction.Sender) >= pl.Redact() {
		return nil
	}
	if s := events.ServerOf(redaction.Sender); s != "" && s == events.ServerOf(original.Sender) {
		return nil
	}
	return forbid("redaction sender %s has power level %d, below the redact level %d, and is not on %s's server",
		redaction.Sender, pl.UserLevel(redaction.Sender), pl.Redact(), original.Sender)
}

// CanRedact is the send-path check for a local user asking to redact
// original: users may redact their own events, and others' only with the
// redact level. It is stricter than RedactionApplies, which would let any
// user redact events of users on the same server.
func CanRedact(sender string, original *events.Event, pl PowerLevels) error {
	if sender == original.Sender {
		return nil
	}
	if !RedactsOthers(sender, pl) {
		return forbid("sender's power level %d is below the redact level %d needed to redact %s's event",
			pl.UserLevel(sender), pl.Redact(), original.Sender)
	}
	return nil
}

// RedactsOthers reports whether sender may redact other users' events.
func RedactsOthers(sender string, pl PowerLevels) bool {
	return pl.UserLevel(sender) >= pl.Redact()
}

// redactionTargets checks that redaction is a redaction of original, in
// the same room.
func redactionTargets(redaction, original *events.Event) error {
	redacts := redactsOf(redaction)
	switch {
	case redaction.Type != typeRedaction:
		return forbid("%s is not a redaction", redaction.Type)
	case redacts == "" || redacts != original.ID:
		return forbid("redaction redacts %q, not %s", redacts, original.ID)
	case redaction.RoomID != original.RoomID:
		return forbid("redaction in room %s cannot redact an event of room %s", redaction.RoomID, original.RoomID)
	}
	return nil
}

// redactsOf is the event a redaction redacts: Event.Redacts, or from v11,
// where the property moved into content, content.redacts if the events
// package left Event.Redacts empty.
func redactsOf(redaction *events.Event) string {
	if redaction.Redacts != "" || !redaction.Version.RedactsInContent() {
		return redaction.Redacts
	}
	var c struct {
		Redacts string `json:"redacts"`
	}
	_ = json.Unmarshal(redaction.Content, &c)
	return c.Redacts
}
