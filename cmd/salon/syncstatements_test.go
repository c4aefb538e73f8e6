package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	gosync "sync"
	"testing"

	"github.com/salonhq/salon/homeserver/mxtest"
	"github.com/salonhq/salon/homeserver/store/sqlstore"
)

// statementServer serves the homeserver's API recording, per access
// token, the store statements its requests ran.
type statementServer struct {
	*httptest.Server
	mu    gosync.Mutex
	stmts map[string]*sqlstore.Statements
}

func newStatementServer(t *testing.T, ts *testServer) *statementServer {
	s := &statementServer{stmts: map[string]*sqlstore.Statements{}}
	h := ts.srv.hs.Handler()
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		s.mu.Lock()
		st := s.stmts[tok]
		if st == nil {
			st = &sqlstore.Statements{}
			s.stmts[tok] = st
		}
		s.mu.Unlock()
		h.ServeHTTP(w, r.WithContext(sqlstore.CountStatements(r.Context(), st)))
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *statementServer) of(token string) *sqlstore.Statements {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stmts[token] == nil {
		s.stmts[token] = &sqlstore.Statements{}
	}
	return s.stmts[token]
}

// syncAnswer is what the test reads of a /sync answer.
type syncAnswer struct {
	NextBatch string `json:"next_batch"`
	Rooms     struct {
		Join map[string]struct {
			Timeline struct {
				Events []struct {
					EventID string `json:"event_id"`
				} `json:"events"`
			} `json:"timeline"`
			Unread struct {
				Notifications int `json:"notification_count"`
				Highlights    int `json:"highlight_count"`
			} `json:"unread_notifications"`
		} `json:"join"`
	} `json:"rooms"`
}

// lazySync is one /sync of the load generator's big-room clients (lazy
// members, presence offline).
func lazySync(base, token, since string, timeout int) (syncAnswer, error) {
	q := fmt.Sprintf("/_matrix/client/v3/sync?timeout=%d&set_presence=offline&filter=%s", timeout, url.QueryEscape(lazyFilter))
	if since != "" {
		q += "&since=" + url.QueryEscape(since)
	}
	req, err := http.NewRequest("GET", base+q, nil)
	if err != nil {
		return syncAnswer{}, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return syncAnswer{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return syncAnswer{}, err
	}
	if res.StatusCode != 200 {
		return syncAnswer{}, fmt.Errorf("/sync: %d %s", res.StatusCode, b)
	}
	var a syncAnswer
	err = json.Unmarshal(b, &a)
	return a, err
}

// TestWokenSyncStatements: once a room's members have synced, the /sync
// long-polls a new message wakes (issue 24: thousands of them per message
// in a big room) are answered without a database statement — on
// PostgreSQL each one was a round trip over a small connection pool that
// the sends' commits queued behind. The unread counts they carry stay
// right.
func TestWokenSyncStatements(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db string) {
		srv := startServer(t, db)
		alice := mxtest.Register(t, srv.URL, "alice", "password alice")
		room := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"preset": "public_chat"}).Str("room_id")
		var members []*mxtest.Client
		for _, name := range []string{"bob", "carol", "dave"} {
			m := mxtest.Register(t, srv.URL, name, "password "+name)
			m.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", room), map[string]any{})
			members = append(members, m)
		}
		cs := newStatementServer(t, srv)
		since := map[string]string{}
		for _, m := range members {
			a, err := lazySync(cs.URL, m.Token, "", 0)
			if err != nil {
				t.Fatal(err)
			}
			since[m.UserID] = a.NextBatch
			if cs.of(m.Token).Count() == 0 {
				t.Fatal("an initial /sync ran no statement: is the counter wired?")
			}
		}
		// The server's statement counter is a metric.
		if m, err := scrapeMetrics(context.Background(), http.DefaultClient, srv.MetricsURL, "salon_store_statements_total"); err != nil || m["salon_store_statements_total"] < 1 {
			t.Fatalf("salon_store_statements_total: %v %v", m, err)
		}
		const rounds = 12
		delivered := 0 // woken syncs that carried the round's message
		for i := range rounds {
			// Every member long-polls; a message wakes them.
			var wg gosync.WaitGroup
			answers := make([]syncAnswer, len(members))
			errs := make([]error, len(members))
			for j, m := range members {
				cs.of(m.Token).Reset()
				wg.Add(1)
				go func() {
					defer wg.Done()
					answers[j], errs[j] = lazySync(cs.URL, m.Token, since[m.UserID], 30000)
				}()
			}
			id := sendMsg(alice, room, fmt.Sprintf("m%d", i), map[string]any{"msgtype": "m.text", "body": fmt.Sprintf("message %d", i)})
			wg.Wait()
			for j, m := range members {
				if errs[j] != nil {
					t.Fatal(errs[j])
				}
				jr := answers[j].Rooms.Join[room]
				if n := len(jr.Timeline.Events); n == 0 || jr.Timeline.Events[n-1].EventID != id {
					// Woken early by something else: the next round's
					// sync carries the message.
					t.Logf("round %d: %s woken without the message", i, m.UserID)
				} else {
					delivered++
					if jr.Unread.Notifications != i+1 {
						t.Errorf("round %d: %s's notification count %d with the message, want %d", i, m.UserID, jr.Unread.Notifications, i+1)
					}
				}
				since[m.UserID] = answers[j].NextBatch
				if got := cs.of(m.Token).Texts(); i > 0 && len(got) > 0 {
					t.Errorf("round %d: %s's woken /sync ran %d statements:\n%s", i, m.UserID, len(got), strings.Join(got, "\n"))
				}
				if jr.Unread.Notifications != 0 && jr.Unread.Notifications != i+1 {
					t.Errorf("round %d: %s's notification count %d, want %d", i, m.UserID, jr.Unread.Notifications, i+1)
				}
			}
		}
		// Most wake-ups are the message's: the statement count above is
		// that of syncs that answered it, not of empty ones.
		if total := rounds * len(members); delivered < total/2 {
			t.Fatalf("only %d of %d woken syncs carried the message", delivered, total)
		}
	})
}
