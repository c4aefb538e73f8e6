package push

import (
	"encoding/json"
	"testing"
)

// A typical m.room.message as a client sends it today, with m.mentions.
var benchMessage = json.RawMessage(`{"type":"m.room.message","sender":"@carol:example.org","room_id":"!room:example.org",` +
	`"event_id":"$Kbx3ZqR1UO5Jx0WEpl0p5Bsi2y4Tm8vS6jtCQJzYB3k","origin_server_ts":1712345678901,` +
	`"content":{"msgtype":"m.text","body":"Are we still on for the design review at three? I moved the slides to the shared folder.",` +
	`"m.mentions":{}},"unsigned":{"age":1234,"transaction_id":"m1712345678901.17"}}`)

// The same without m.mentions, as older clients send it: the deprecated
// display-name and user-name rules scan the body too.
var benchLegacyMessage = json.RawMessage(`{"type":"m.room.message","sender":"@carol:example.org","room_id":"!room:example.org",` +
	`"event_id":"$Kbx3ZqR1UO5Jx0WEpl0p5Bsi2y4Tm8vS6jtCQJzYB3k","origin_server_ts":1712345678901,` +
	`"content":{"msgtype":"m.text","body":"Are we still on for the design review at three? I moved the slides to the shared folder."},` +
	`"unsigned":{"age":1234,"transaction_id":"m1712345678901.17"}}`)

func benchmarkEvaluate(b *testing.B, event json.RawMessage) {
	c := Compile(Defaults(alice, "alice"))
	ec := aliceContext()
	ec.MemberCount = 12
	if notify, _, _ := c.Evaluate(event, ec); !notify {
		b.Fatal("the benchmark message does not notify")
	}
	b.SetBytes(int64(len(event)))
	b.ReportAllocs()
	for b.Loop() {
		c.Evaluate(event, ec)
	}
}

func BenchmarkEvaluate(b *testing.B)       { benchmarkEvaluate(b, benchMessage) }
func BenchmarkEvaluateLegacy(b *testing.B) { benchmarkEvaluate(b, benchLegacyMessage) }

func BenchmarkCompile(b *testing.B) {
	rs := Defaults(alice, "alice")
	b.ReportAllocs()
	for b.Loop() {
		Compile(rs)
	}
}
