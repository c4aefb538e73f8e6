package rooms

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/salonhq/salon/homeserver/events"
)

// FuzzCallContent: any member may send call membership and (with the
// power) teaching-mode state; whatever the content, reading it never
// panics, a call member is never from another sender, and teaching mode
// is on only for the JSON true.
func FuzzCallContent(f *testing.F) {
	for _, s := range []string{`{"application":"m.call","call_id":"","device_id":"D","expires":3600000,"created_ts":1,"foci_preferred":[]}`,
		`{"memberships":[{"device_id":"D","expires_ts":99999999999999},{"device_id":"E","expires":-1}]}`, `{}`, `{"leave_reason":"x"}`,
		`{"enabled":true,"speakers":["@a:x",1,null,""]}`, `{"enabled":"true","speakers":"@a:x"}`, `{"expires":9223372036854775807,"created_ts":9223372036854775807,"device_id":"D"}`,
		`[]`, `null`, `{"memberships":null}`} {
		f.Add([]byte(s), int64(1_700_000_000_000))
	}
	now := time.UnixMilli(1_700_000_000_000)
	f.Fuzz(func(t *testing.T, content []byte, ts int64) {
		key := "_@a:x_D"
		ev := &events.Event{Sender: "@a:x", Type: "org.matrix.msc3401.call.member", StateKey: &key, Content: content, OriginServerTS: ts}
		for _, m := range activeCallMembers(ev, now) {
			if m.UserID != ev.Sender || m.StateKey != key {
				t.Fatalf("member %+v from %s", m, ev.Sender)
			}
		}
		tm := ParseTeachingMode(content)
		if tm.Enabled {
			var raw map[string]json.RawMessage
			if json.Unmarshal(content, &raw) != nil || !bytes.Equal(bytes.TrimSpace(raw["enabled"]), []byte("true")) {
				t.Fatalf("teaching mode on for %s", content)
			}
		}
		for _, s := range tm.Speakers {
			if s == "" {
				t.Fatal("an empty speaker")
			}
		}
	})
}
