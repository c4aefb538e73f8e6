package main

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/salonhq/salon/homeserver/events"
	"github.com/salonhq/salon/homeserver/federation"
	"github.com/salonhq/salon/homeserver/mxtest"
	"github.com/salonhq/salon/internal/testca"
)

// fakeServer is another homeserver, played by the test: it publishes a
// signing key at /_matrix/key/v2/server (and serves the routes it is
// given) and signs requests with it.
type fakeServer struct {
	name string
	key  events.SigningKey
	addr string
}

func newFakeServer(t *testing.T, ca *testca.CA, name string, routes ...func(*http.ServeMux)) *fakeServer {
	t.Helper()
	key, err := events.GenerateSigningKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeServer{name: name, key: key}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /_matrix/key/v2/server", func(w http.ResponseWriter, r *http.Request) {
		obj, _ := json.Marshal(map[string]any{
			"server_name": name, "valid_until_ts": time.Now().Add(time.Hour).UnixMilli(),
			"verify_keys": map[string]any{key.ID: map[string]string{"key": key.PublicBase64()}}, "old_verify_keys": map[string]any{},
		})
		signed, err := events.SignJSON(obj, name, key)
		if err != nil {
			t.Error(err)
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(signed)
	})
	for _, route := range routes {
		route(mux)
	}
	srv := httptest.NewUnstartedServer(mux)
	certFile, keyFile := ca.Issue(t, name, name)
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	f.addr = srv.Listener.Addr().String()
	return f
}

// auth signs a request as the fake server.
func (f *fakeServer) auth(t *testing.T, key events.SigningKey, origin, destination, method, uri string, body []byte) string {
	t.Helper()
	x, err := federation.SignRequest(key, method, uri, origin, destination, body)
	if err != nil {
		t.Fatal(err)
	}
	return x.String()
}

// TestFederationBadInput: requests that are unsigned, signed for another
// server, signed by an unknown key, tampered with, from a denied or a
// forged origin, and transactions over the limits are refused with the
// spec's errors and counted; a replayed transaction is answered the same
// and delivers nothing twice; an EDU from a user of another server is
// dropped. Both backends (transactions are stored).
func TestFederationBadInput(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db string) {
		ca := testca.New(t)
		b := newFedNode(t, ca, "b.test", db)
		c := newFakeServer(t, ca, "c.test")
		b.peers["c.test"] = c.addr
		b.peers["a.test"] = reservePort(t) // nobody there
		sb := b.start(t, func(cfg *Config) { cfg.Federation.Deny = []string{"d.test"} })
		bob := mxtest.Register(t, sb.URL, "bob", "password bob")
		tok := syncKeys(t, bob, "", 0).NextBatch
		fb := newFedHTTP(t, ca, b)

		profile := "/_matrix/federation/v1/query/profile?user_id=" + bob.UserID
		other, _ := events.GenerateSigningKey(rand.Reader)
		expect := func(name string, wantStatus int, wantCode, method, uri, auth string, body []byte) map[string]any {
			t.Helper()
			st, m, raw := fb.do(method, uri, auth, body)
			if st != wantStatus || (wantCode != "" && m["errcode"] != wantCode) {
				t.Fatalf("%s: %d %s, want %d %s", name, st, raw, wantStatus, wantCode)
			}
			return m
		}
		expect("signed", 200, "", "GET", profile, c.auth(t, c.key, "c.test", "b.test", "GET", profile, nil), nil)
		expect("unsigned", 401, "M_UNAUTHORIZED", "GET", profile, "", nil)
		expect("malformed header", 401, "M_UNAUTHORIZED", "GET", profile, "X-Matrix nonsense", nil)
		expect("another destination", 401, "M_UNAUTHORIZED", "GET", profile, c.auth(t, c.key, "c.test", "a.test", "GET", profile, nil), nil)
		expect("unknown key", 401, "M_UNAUTHORIZED", "GET", profile, c.auth(t, other, "c.test", "b.test", "GET", profile, nil), nil)
		expect("other URI", 401, "M_UNAUTHORIZED", "GET", profile, c.auth(t, c.key, "c.test", "b.test", "GET", profile+"x", nil), nil)
		expect("forged origin", 401, "M_UNAUTHORIZED", "GET", profile, c.auth(t, c.key, "a.test", "b.test", "GET", profile, nil), nil)
		expect("own name as origin", 401, "M_UNAUTHORIZED", "GET", profile, c.auth(t, c.key, "b.test", "b.test", "GET", profile, nil), nil)
		expect("unknown endpoint", 404, "M_UNRECOGNIZED", "GET", "/_matrix/federation/v1/nonsense", "", nil)
		expect("wrong method", 405, "M_UNRECOGNIZED", "POST", "/_matrix/federation/v1/version", "", nil)
		expect("denied server", 403, "M_FORBIDDEN", "GET", profile, c.auth(t, c.key, "d.test", "b.test", "GET", profile, nil), nil)

		send := func(txnID string, txn map[string]any, tamper bool) (int, map[string]any, []byte) {
			t.Helper()
			uri := "/_matrix/federation/v1/send/" + txnID
			body, _ := json.Marshal(txn)
			auth := c.auth(t, c.key, "c.test", "b.test", "PUT", uri, body)
			if tamper {
				body = []byte(strings.Replace(string(body), `"seq":1`, `"seq":2`, 1))
			}
			return fb.do("PUT", uri, auth, body)
		}
		toDevice := func(sender string, seq int) map[string]any {
			return map[string]any{"edu_type": "m.direct_to_device", "content": map[string]any{
				"sender": sender, "type": "m.test", "message_id": fmt.Sprint("m", seq),
				"messages": map[string]any{bob.UserID: map[string]any{bob.DeviceID: map[string]any{"seq": seq}}},
			}}
		}
		txn := func(origin string, edus ...map[string]any) map[string]any {
			if edus == nil {
				edus = []map[string]any{}
			}
			return map[string]any{"origin": origin, "origin_server_ts": time.Now().UnixMilli(), "pdus": []any{}, "edus": edus}
		}

		if st, _, raw := send("tampered", txn("c.test", toDevice("@carol:c.test", 1)), true); st != 401 {
			t.Fatalf("tampered body: %d %s", st, raw)
		}
		if st, m, raw := send("forged", txn("a.test", toDevice("@carol:c.test", 1)), false); st != 403 || m["errcode"] != "M_FORBIDDEN" {
			t.Fatalf("transaction origin not its signer: %d %s", st, raw)
		}
		var many []map[string]any
		for i := 0; i < 101; i++ {
			many = append(many, map[string]any{"edu_type": "m.typing", "content": map[string]any{}})
		}
		if st, m, raw := send("edus", txn("c.test", many...), false); st != 400 || m["errcode"] != "M_BAD_JSON" {
			t.Fatalf("101 EDUs: %d %s", st, raw)
		}
		pdus := txn("c.test")
		var list []any
		for i := 0; i < 51; i++ {
			list = append(list, map[string]any{"type": "m.room.message"})
		}
		pdus["pdus"] = list
		if st, m, raw := send("pdus", pdus, false); st != 400 || m["errcode"] != "M_BAD_JSON" {
			t.Fatalf("51 PDUs: %d %s", st, raw)
		}
		expect("not JSON", 400, "M_NOT_JSON", "PUT", "/_matrix/federation/v1/send/x",
			c.auth(t, c.key, "c.test", "b.test", "PUT", "/_matrix/federation/v1/send/x", nil), []byte("{nope"))

		// A good transaction, then the same again: one delivery.
		st, first, raw := send("t1", txn("c.test", toDevice("@carol:c.test", 1), toDevice("@mallory:a.test", 9)), false)
		if st != 200 {
			t.Fatalf("transaction: %d %s", st, raw)
		}
		st, _, raw2 := send("t1", txn("c.test", toDevice("@carol:c.test", 1)), false)
		if st != 200 || string(raw2) != string(raw) {
			t.Fatalf("replayed transaction: %d %s, first %v", st, raw2, first)
		}
		// The same message ID in another transaction: not delivered twice.
		if st, _, raw := send("t2", txn("c.test", toDevice("@carol:c.test", 1)), false); st != 200 {
			t.Fatalf("second transaction: %d %s", st, raw)
		}
		var seqs []float64
		waitFor(t, "carol's message on B", func() bool {
			s := syncKeys(t, bob, tok, time.Second)
			tok = s.NextBatch
			for _, e := range s.ToDevice.Events {
				seqs = append(seqs, e.Content["seq"].(float64))
				if e.Sender != "@carol:c.test" {
					t.Fatalf("delivered a message from %s, sent by c.test", e.Sender)
				}
			}
			return len(seqs) > 0
		})
		if s := syncKeys(t, bob, tok, 500*time.Millisecond); len(seqs) != 1 || len(s.ToDevice.Events) != 0 {
			t.Fatalf("messages: %v then %d more", seqs, len(s.ToDevice.Events))
		}

		// A PDU is answered with an error of its own for now.
		pdu := txn("c.test")
		pdu["pdus"] = []any{map[string]any{"type": "m.room.message", "room_id": "!r:c.test", "sender": "@carol:c.test",
			"content": map[string]any{"body": "hi"}, "origin_server_ts": 1, "depth": 1, "prev_events": []string{}, "auth_events": []string{},
			"hashes": map[string]string{"sha256": "x"}, "signatures": map[string]any{}}}
		if st, m, raw := send("t3", pdu, false); st != 200 || len(m["pdus"].(map[string]any)) != 1 {
			t.Fatalf("PDU transaction: %d %s", st, raw)
		}

		// EDUs about rooms c.test's users are not in, malformed ones and
		// unknown types: each refused or ignored alone, the transaction
		// succeeds.
		others := txn("c.test",
			map[string]any{"edu_type": "m.typing", "content": map[string]any{"room_id": "!nowhere:b.test", "user_id": "@carol:c.test", "typing": true}},
			map[string]any{"edu_type": "m.typing", "content": "not an object"},
			map[string]any{"edu_type": "m.receipt", "content": map[string]any{"!nowhere:b.test": map[string]any{"m.read": map[string]any{
				"@carol:c.test": map[string]any{"data": map[string]any{"ts": 1}, "event_ids": []string{"$x"}}}}}},
			map[string]any{"edu_type": "m.receipt", "content": map[string]any{"!nowhere:b.test": map[string]any{"m.read": map[string]any{
				"@bob:b.test": map[string]any{"data": map[string]any{"ts": 1}, "event_ids": []string{"$x"}}}}}},
			map[string]any{"edu_type": "m.device_list_update", "content": map[string]any{"user_id": "@carol:c.test", "device_id": "D", "stream_id": 1}},
			map[string]any{"edu_type": "m.device_list_update", "content": map[string]any{"user_id": "@bob:b.test", "device_id": "D", "stream_id": 1}},
			map[string]any{"edu_type": "org.example.unknown", "content": map[string]any{}},
		)
		if st, _, raw := send("t4", others, false); st != 200 {
			t.Fatalf("transaction of refused EDUs: %d %s", st, raw)
		}

		m := scrape(t, sb)
		for _, reason := range []string{"no_auth", "wrong_destination", "unknown_key", "bad_signature", "denied", "forged_origin", "too_many_items", "bad_edu"} {
			if !strings.Contains(m, `salon_federation_requests_refused_total{reason="`+reason+`"}`) {
				t.Errorf("no refusal counted for %s:\n%s", reason, grepLines(m, "refused"))
			}
		}
	})
}
