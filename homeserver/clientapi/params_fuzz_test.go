package clientapi

import (
	"errors"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/salonhq/salon/homeserver/store"
	"github.com/salonhq/salon/homeserver/sync"
	"github.com/salonhq/salon/internal/mxerr"
)

// clientErr fails t unless err is nil or a Matrix error that is the
// client's (not M_UNKNOWN, not a 5xx).
func clientErr(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	var me *mxerr.Error
	if !errors.As(err, &me) || me.Code == mxerr.Unknown {
		t.Fatalf("not a client error: %T %v", err, err)
	}
}

// FuzzQueryParams: /messages' from and to, /search's next_batch, the
// MSC4140 delay and /messages' filter parameter are read or refused with
// the client's Matrix error.
func FuzzQueryParams(f *testing.F) {
	for _, s := range []string{"t1", "s5_0", "s5_0_1_2", "r10", "k3", "k-1", "r", "", "1000", "0", "-5", "9223372036854775807", "1e3", " 1"} {
		f.Add(s, `{"types":["m.room.message"],"not_senders":["@a:x"],"contains_url":true,"lazy_load_members":true}`)
	}
	f.Add("s1", `{"types":"x"}`)
	f.Add("t", `[`)
	row := store.EventRow{Type: "m.room.message", Sender: "@a:x", JSON: []byte(`{"content":{"url":"mxc://x/y"}}`)}
	f.Fuzz(func(t *testing.T, tok, filter string) {
		p, err := parsePos(tok)
		clientErr(t, err)
		if err == nil && p < 1 {
			t.Fatalf("%q: position %d", tok, p)
		}
		for _, byRank := range []bool{false, true} {
			n, err := parseSearchBatch(tok, byRank)
			clientErr(t, err)
			if err == nil && n < 0 {
				t.Fatalf("%q: batch %d", tok, n)
			}
		}
		r := httptest.NewRequest("PUT", "/?"+delayParam+"="+url.QueryEscape(tok)+"&"+delayParam+"="+url.QueryEscape(filter), nil)
		_, _, err = delayOf(r)
		clientErr(t, err)
		r = httptest.NewRequest("PUT", "/?"+delayParam+"="+url.QueryEscape(tok), nil)
		ms, ok, err := delayOf(r)
		clientErr(t, err)
		if err == nil && (!ok || ms <= 0) {
			t.Fatalf("%q: delay %d %v", tok, ms, ok)
		}
		flt, err := sync.ParseRoomEventFilter([]byte(filter))
		clientErr(t, err)
		if err == nil {
			flt.Keep(row)
		}
	})
}
