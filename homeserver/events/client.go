package events

import (
	"encoding/json"
	"fmt"
)

// UnsignedDelayID is the unsigned key that tells an event's sender which
// delayed event (MSC4140) it was sent as; the unstable name, while the
// MSC is unstable.
const UnsignedDelayID = "org.matrix.msc4140.delay_id"

// ClientJSON is the event in the Client-Server API's ClientEvent format, as
// /sync, /messages, /context and /event return it: content, event_id,
// origin_server_ts, room_id, sender, type, state_key for state events, and
// unsigned when non-empty (age, transaction_id, prev_content,
// redacted_because, ...).
//
// Redactions carry "redacts" both at the top level and in content whatever
// the room version, as rooms/v11.md asks servers to do for clients old and
// new.
func (e *Event) ClientJSON(unsigned map[string]any) ([]byte, error) {
	content := e.Content
	if e.Type == typeRedaction && e.Redacts != "" {
		cf, err := objectFields(content)
		if err != nil {
			return nil, err
		}
		if _, ok := lookup(cf, "redacts"); !ok {
			content = joinObject(nil, append(cf, field{"redacts", jsonString(e.Redacts)}))
		}
	}
	fields := make([]field, 0, 9)
	fields = append(fields,
		field{"content", content},
		field{"event_id", jsonString(e.ID)},
		field{"origin_server_ts", jsonInt(e.OriginServerTS)},
		field{"room_id", jsonString(e.RoomID)},
		field{"sender", jsonString(e.Sender)},
		field{"type", jsonString(e.Type)},
	)
	if e.StateKey != nil {
		fields = append(fields, field{"state_key", jsonString(*e.StateKey)})
	}
	if e.Type == typeRedaction && e.Redacts != "" {
		fields = append(fields, field{"redacts", jsonString(e.Redacts)})
	}
	if len(unsigned) > 0 {
		u, err := json.Marshal(unsigned)
		if err != nil {
			return nil, fmt.Errorf("events: encoding unsigned: %w", err)
		}
		fields = append(fields, field{"unsigned", u})
	}
	return joinObject(make([]byte, 0, fieldsSize(fields)), fields), nil
}
