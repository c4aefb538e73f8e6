package main

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/salonhq/salon/homeserver/mxtest"
)

// TestComponentAttributeOnce: every log line names its component once. A
// component narrows its own logger (component=sfu, turn, jwt, rtc, ...);
// cmd/salon hands each the bare logger, so no line carries the attribute
// twice.
func TestComponentAttributeOnce(t *testing.T) {
	var out lockedBuffer
	log := slog.New(slog.NewJSONHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv := startServerLog(t, backends(t)["sqlite"](t), log)
	alice := mxtest.Register(t, srv.URL, "alice", "password alice")
	room := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{}).Str("room_id")
	alice.Must(200, "GET", "/_matrix/client/v3/voip/turnServer", nil)
	r := getToken(alice, room, openIDToken(t, alice))
	if r.Status != 200 {
		t.Fatalf("get_token: %d %s", r.Status, r.Raw)
	}
	sfuHTTP := strings.Replace(r.Str("url"), "ws://", "http://", 1)
	mxtest.New(t, "").Do("GET", sfuHTTP+"/rtc/validate?access_token=forged.token.value", nil)
	// A signalling session: the rtc component logs its connection.
	ws, _, err := websocket.DefaultDialer.Dial(r.Str("url")+"/rtc?access_token="+r.Str("jwt"), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _, _ = ws.ReadMessage() // the join response
	_ = ws.Close()
	srv.Stop()

	seen := map[string]bool{}
	for _, l := range strings.Split(out.String(), "\n") {
		if n := strings.Count(l, `"component":`); n > 1 {
			t.Errorf("component attribute %d times: %s", n, l)
		}
		if _, rest, ok := strings.Cut(l, `"component":"`); ok {
			name, _, _ := strings.Cut(rest, `"`)
			seen[name] = true
		}
	}
	// The components whose loggers cmd/salon used to narrow as well.
	for _, c := range []string{"jwt", "sfu", "turn", "rtc"} {
		if !seen[c] {
			t.Errorf("no log line from component %s (seen %v)", c, seen)
		}
	}
}
