package sync

import (
	"strconv"
	"strings"
)

// StreamToken is a /sync since and next_batch token: a position in each of
// the streams a sync reads.
//
// Pos is the store's persistent stream position, shared by room events,
// receipts and account data (store.Rooms.CurrentPos): "everything at or
// before Pos has been sent". Typing is the in-memory typing counter, which
// restarts with the process; see Typing for how a counter from an earlier
// run is recognised. Presence is the in-memory presence counter, which
// works the same way (see Presence); it is 0 when presence is off.
//
// The text form is "s{Pos}_{Typing}_{Presence}", or "s{Pos}_{Typing}" when
// Presence is 0. ParseStreamToken also accepts "s{Pos}" and the /messages
// form "t{P}" (see MessagesBound): both carry no typing part and so get
// the full typing state; a token without a presence part (such as one made
// before presence was turned on) gets the full presence state.
//
// ToDevice, when not 0, is the position up to which this device's
// to-device messages were sent, below Pos: a sync sends at most
// maxToDevice messages, and the rest follow from there. Its text form is a
// fourth part, "s{Pos}_{Typing}_{Presence}_{ToDevice}", written only when
// set (older tokens, without it, mean "up to Pos").
type StreamToken struct {
	Pos      int64
	Typing   int64
	Presence int64
	ToDevice int64
}

// toDevicePos is the position up to which to-device messages were sent.
func (t StreamToken) toDevicePos() int64 {
	if t.ToDevice != 0 && t.ToDevice < t.Pos {
		return t.ToDevice
	}
	return t.Pos
}

// String is the token's text form, "s{Pos}_{Typing}[_{Presence}]".
func (t StreamToken) String() string {
	b := make([]byte, 0, 48)
	b = append(b, 's')
	b = strconv.AppendInt(b, t.Pos, 10)
	b = append(b, '_')
	b = strconv.AppendInt(b, t.Typing, 10)
	if t.Presence != 0 || t.ToDevice != 0 {
		b = append(b, '_')
		b = strconv.AppendInt(b, t.Presence, 10)
	}
	if t.ToDevice != 0 {
		b = append(b, '_')
		b = strconv.AppendInt(b, t.ToDevice, 10)
	}
	return string(b)
}

// ParseStreamToken reads a since token. Anything this server did not make
// is ErrBadToken (M_INVALID_PARAM).
func ParseStreamToken(s string) (StreamToken, error) {
	if len(s) < 2 || len(s) > 64 {
		return StreamToken{}, badToken(s)
	}
	switch s[0] {
	case 't':
		p, ok := parseUint(s[1:])
		if !ok || p < 1 {
			return StreamToken{}, badToken(s)
		}
		// "t{P}" sits just before position P.
		return StreamToken{Pos: p - 1}, nil
	case 's':
		rest := s[1:]
		posPart, typingPart, hasTyping := strings.Cut(rest, "_")
		p, ok := parseUint(posPart)
		if !ok {
			return StreamToken{}, badToken(s)
		}
		t := StreamToken{Pos: p}
		if hasTyping {
			typingPart, presencePart, hasPresence := strings.Cut(typingPart, "_")
			if t.Typing, ok = parseUint(typingPart); !ok {
				return StreamToken{}, badToken(s)
			}
			if hasPresence {
				presencePart, toDevicePart, hasToDevice := strings.Cut(presencePart, "_")
				if t.Presence, ok = parseUint(presencePart); !ok {
					return StreamToken{}, badToken(s)
				}
				if hasToDevice {
					if t.ToDevice, ok = parseUint(toDevicePart); !ok {
						return StreamToken{}, badToken(s)
					}
				}
			}
		}
		return t, nil
	}
	return StreamToken{}, badToken(s)
}

// PrevBatchToken is the prev_batch of a timeline whose oldest event is at
// stream position first: "t{first}". Paginating /messages backwards from
// it returns the events before that one.
func PrevBatchToken(first int64) string { return "t" + strconv.FormatInt(first, 10) }

// MessagesBound reads a /messages from or to token, either a prev_batch
// ("t{P}") or a next_batch ("s{N}_{T}", "s{N}"), as the stream position
// the token sits just before: going backwards from it returns events with
// Pos < bound, going forwards events with Pos >= bound. "t{P}" is P and
// "s{N}..." is N+1 (a next_batch follows everything up to N).
func MessagesBound(s string) (int64, error) {
	if len(s) >= 2 && s[0] == 't' {
		// "t-P": a position in the past (store.PastTop), where history
		// from before this server's join is.
		digits, neg := strings.CutPrefix(s[1:], "-")
		p, ok := parseUint(digits)
		if !ok || p < 1 {
			return 0, badToken(s)
		}
		if neg {
			p = -p
		}
		return p, nil
	}
	t, err := ParseStreamToken(s)
	if err != nil {
		return 0, err
	}
	return t.Pos + 1, nil
}

// parseUint accepts only ASCII digits (no sign, no spaces) that fit in an
// int64 with room for +1.
func parseUint(s string) (int64, bool) {
	if s == "" || len(s) > 18 {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	return v, err == nil
}
