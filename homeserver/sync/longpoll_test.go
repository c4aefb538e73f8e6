package sync

import (
	"context"
	"errors"
	"fmt"
	"strings"
	gosync "sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/salonhq/salon/internal/mxerr"
)

func TestLongPollWakes(t *testing.T) {
	backends(t, func(t *testing.T, h *harness) {
		r := h.createRoom("!room:test", alice)
		h.join(r.id, bob)
		first, _ := h.sync(Request{UserID: bob})

		type result struct {
			resp *Response
			err  error
			at   time.Time
		}
		done := make(chan result, 1)
		go func() {
			resp, err := h.e.Sync(h.ctx, Request{UserID: bob, Since: first.NextBatch, Timeout: 30 * time.Second})
			done <- result{resp, err, time.Now()}
		}()
		waitFor(t, func() bool { return h.n.waiting() == 1 })
		sent := time.Now()
		m := h.msg(r.id, alice, "wake up")
		res := <-done
		if res.err != nil {
			t.Fatal(res.err)
		}
		latency := res.at.Sub(sent)
		t.Logf("long-poll answered %v after the write started", latency)
		if latency > 100*time.Millisecond {
			t.Fatalf("long-poll took %v", latency)
		}
		js := decode(t, res.resp)
		if got := ids(js.Rooms.Join[r.id].Timeline.Events); len(got) != 1 || got[0] != m.EventID {
			t.Fatalf("woken sync timeline %v", got)
		}
		if h.n.waiting() != 0 {
			t.Fatal("listener left behind")
		}
	})
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 5s")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestLongPollIgnoresOthers(t *testing.T) {
	h := newHarness(t, openSQLite(t))
	r := h.createRoom("!room:test", alice)
	other := h.createRoom("!other:test", carol)
	h.join(r.id, bob)
	first, _ := h.sync(Request{UserID: bob})
	done := make(chan *Response, 1)
	go func() {
		resp, _ := h.e.Sync(h.ctx, Request{UserID: bob, Since: first.NextBatch, Timeout: 30 * time.Second})
		done <- resp
	}()
	waitFor(t, func() bool { return h.n.waiting() == 1 })
	// Activity in a room bob is not in does not answer his poll.
	h.msg(other.id, carol, "elsewhere")
	select {
	case <-done:
		t.Fatal("woken by another room")
	case <-time.After(100 * time.Millisecond):
	}
	m := h.msg(r.id, alice, "here")
	resp := <-done
	if got := ids(decode(t, resp).Rooms.Join[r.id].Timeline.Events); len(got) != 1 || got[0] != m.EventID {
		t.Fatalf("timeline %v", got)
	}
}

func TestLongPollTimeoutAndCancel(t *testing.T) {
	h := newHarness(t, openSQLite(t))
	r := h.createRoom("!room:test", alice)
	first, _ := h.sync(Request{UserID: alice})
	// The store's and the typing janitor's goroutines are not ours to check.
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	h.createRoom("!other:test", carol) // moves the stream, not alice's rooms

	start := time.Now()
	resp, err := h.e.Sync(h.ctx, Request{UserID: alice, Since: first.NextBatch, Timeout: 150 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 140*time.Millisecond || d > 2*time.Second {
		t.Fatalf("timeout after %v", d)
	}
	if !resp.empty() {
		t.Fatalf("timed-out response not empty: %s", mustJSON(t, resp))
	}
	tok, _ := ParseStreamToken(resp.NextBatch)
	old, _ := ParseStreamToken(first.NextBatch)
	if tok.Pos < old.Pos {
		t.Fatalf("next_batch went back: %v < %v", tok, old)
	}

	ctx, cancel := context.WithCancel(h.ctx)
	errc := make(chan error, 1)
	go func() {
		_, err := h.e.Sync(ctx, Request{UserID: alice, Since: resp.NextBatch, Timeout: time.Minute})
		errc <- err
	}()
	waitFor(t, func() bool { return h.n.waiting() == 1 })
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled sync: %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("cancel did not end the poll")
	}
	if h.n.waiting() != 0 {
		t.Fatal("listener left behind")
	}
	_ = r
}

func TestSyncTokens(t *testing.T) {
	h := newHarness(t, openSQLite(t))
	r := h.createRoom("!room:test", alice)
	if _, err := h.e.Sync(h.ctx, Request{UserID: alice, Since: "garbage"}); errCode(err) != mxerr.InvalidParam {
		t.Fatalf("malformed since: %v", err)
	}
	// A since from the future is the present: no hang, no crash.
	future := StreamToken{Pos: h.st.CurrentPos() + 1000, Typing: h.ty.current()}
	start := time.Now()
	resp, err := h.e.Sync(h.ctx, Request{UserID: alice, Since: future.String(), Timeout: 100 * time.Millisecond})
	if err != nil || time.Since(start) > 2*time.Second {
		t.Fatalf("future since: %v after %v", err, time.Since(start))
	}
	tok, _ := ParseStreamToken(resp.NextBatch)
	if tok.Pos != h.st.CurrentPos() {
		t.Fatalf("next_batch %v, head %d", tok, h.st.CurrentPos())
	}
	// After that, new events arrive as usual.
	m := h.msg(r.id, alice, "x")
	_, js := h.sync(Request{UserID: alice, Since: resp.NextBatch})
	if got := ids(js.Rooms.Join[r.id].Timeline.Events); len(got) != 1 || got[0] != m.EventID {
		t.Fatalf("after future since: %v", got)
	}
	// The /messages form of a token works as a since.
	_, js = h.sync(Request{UserID: alice, Since: PrevBatchToken(m.Pos)})
	if got := ids(js.Rooms.Join[r.id].Timeline.Events); len(got) != 1 || got[0] != m.EventID {
		t.Fatalf("since t-token: %v", got)
	}
}

// TestNotifierNeverMisses races writers against long-polls: every poll
// must see the message that answers it, never an empty timeout.
func TestNotifierNeverMisses(t *testing.T) {
	h := newHarness(t, openSQLite(t))
	const users = 8
	r := h.createRoom("!room:test", alice)
	for i := range users {
		h.join(r.id, fmt.Sprintf("@u%d:test", i))
	}
	var wg gosync.WaitGroup
	var polls atomic.Int64
	stop := make(chan struct{})
	errs := make(chan error, users)
	for i := range users {
		user := fmt.Sprintf("@u%d:test", i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A limit above the 30 messages, so no timeline is limited.
			f := timelineFilter(100)
			resp, err := h.e.Sync(h.ctx, Request{UserID: user, Filter: f})
			if err != nil {
				errs <- err
				return
			}
			since := resp.NextBatch
			// The writers may already have started: count what the
			// initial sync holds.
			seen := countMessages(resp)
			for seen < 30 {
				resp, err := h.e.Sync(h.ctx, Request{UserID: user, Since: since, Timeout: 5 * time.Second, Filter: f})
				if err != nil {
					errs <- err
					return
				}
				polls.Add(1)
				if resp.empty() {
					errs <- fmt.Errorf("%s: poll timed out with messages pending", user)
					return
				}
				seen += countMessages(resp)
				since = resp.NextBatch
			}
		}()
	}
	// Writers in parallel, so Notify calls race each other and the polls.
	var ww gosync.WaitGroup
	for w := range 3 {
		ww.Add(1)
		go func() {
			defer ww.Done()
			for i := range 10 {
				select {
				case <-stop:
					return
				default:
				}
				h.msg(r.id, alice, fmt.Sprintf("w%d-%d", w, i))
			}
		}()
	}
	ww.Wait()
	wg.Wait()
	close(stop)
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	t.Logf("%d polls", polls.Load())
}

func countMessages(resp *Response) int {
	n := 0
	for _, jr := range resp.Rooms.Join {
		for _, e := range jr.Timeline.Events {
			if strings.Contains(string(e), `"type":"m.room.message"`) {
				n++
			}
		}
	}
	return n
}

// TestNotifierWatermark checks that out-of-order notifications hold the
// readable position back until the gap fills, and that a gap nobody fills
// is skipped after gapGrace.
func TestNotifierWatermark(t *testing.T) {
	n := NewNotifier()
	n.seed(10, map[string]int64{"!a": 10}, nil)
	now := time.Unix(1000, 0)
	n.Notify(12, "!b", nil)
	if got := n.watermark(12, now); got != 10 {
		t.Fatalf("watermark %d with 11 missing", got)
	}
	n.Notify(11, "!a", nil)
	if got := n.watermark(12, now); got != 12 {
		t.Fatalf("watermark %d after the gap filled", got)
	}
	if ch := n.changedRooms([]string{"!a", "!b", "!c"}, 10); !ch["!a"] || !ch["!b"] || ch["!c"] {
		t.Fatalf("changed rooms %v", ch)
	}
	n.NotifyRange(13, 15, "!a", nil)
	if got := n.watermark(15, now); got != 15 {
		t.Fatalf("range: %d", got)
	}
	// 16 is committed but never notified.
	if got := n.watermark(16, now); got != 15 {
		t.Fatalf("unnotified head: %d", got)
	}
	if got := n.watermark(16, now.Add(gapGrace/2)); got != 15 {
		t.Fatalf("within grace: %d", got)
	}
	if got := n.watermark(16, now.Add(gapGrace+time.Millisecond)); got != 16 {
		t.Fatalf("after grace: %d", got)
	}
	if !n.needsReseed() || n.needsReseed() {
		t.Fatal("reseed flag")
	}
}

func TestNotifierConcurrent(t *testing.T) {
	n := NewNotifier()
	n.seed(0, nil, nil)
	const writers, per = 4, 500
	var pos atomic.Int64
	var wg gosync.WaitGroup
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range per {
				p := pos.Add(1)
				n.Notify(p, "!r", []string{"@u:t"})
			}
		}()
	}
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range per {
				l := n.Listen("@u:t")
				_ = n.watermark(pos.Load(), time.Now())
				select {
				case <-l.C:
				default:
				}
				l.Stop()
			}
		}()
	}
	wg.Wait()
	if got := n.watermark(writers*per, time.Now()); got != writers*per {
		t.Fatalf("watermark %d", got)
	}
	if n.waiting() != 0 {
		t.Fatal("streams left")
	}
}

func TestTypingCloseNoLeak(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	n := NewNotifier()
	ty := NewTyping(n)
	ty.Set("!r", "@a:t", true, time.Second, []string{"@a:t"})
	if err := ty.Close(); err != nil {
		t.Fatal(err)
	}
	if err := ty.Close(); err != nil {
		t.Fatal("second Close")
	}
}

// TestNotifyWakesOnlyNamedUsers: 1,000 waiting users in 500 rooms of 20;
// a message wakes its room's 20 members and nobody else.
func TestNotifyWakesOnlyNamedUsers(t *testing.T) {
	n := NewNotifier()
	n.seed(0, nil, nil)
	const users, rooms, per = 1000, 500, 20
	ls := make([]*Listener, users)
	for i := range ls {
		ls[i] = n.Listen(fmt.Sprintf("@u%d:t", i))
	}
	members := func(room int) []string {
		out := make([]string, per)
		for j := range out {
			out[j] = fmt.Sprintf("@u%d:t", (room*7+j*50)%users)
		}
		return out
	}
	named := map[string]bool{}
	for _, u := range members(42) {
		named[u] = true
	}
	n.Notify(1, "!r42", members(42))
	woken := 0
	for i, l := range ls {
		select {
		case <-l.C:
			woken++
			if !named[fmt.Sprintf("@u%d:t", i)] {
				t.Fatalf("woke @u%d:t", i)
			}
		default:
		}
		l.Stop()
	}
	if woken != per {
		t.Fatalf("woke %d, want %d", woken, per)
	}
	if n.waiting() != 0 {
		t.Fatal("streams left")
	}
}

// BenchmarkNotify: one message's Notify with 1,000 users waiting, 20 of
// them in the room.
func BenchmarkNotify(b *testing.B) {
	n := NewNotifier()
	n.seed(0, nil, nil)
	for i := range 1000 {
		n.Listen(fmt.Sprintf("@u%d:t", i))
	}
	room := make([]string, 20)
	for j := range room {
		room[j] = fmt.Sprintf("@x%d:t", j) // not waiting: no re-listen needed
	}
	pos := int64(0)
	for b.Loop() {
		pos++
		n.Notify(pos, "!r", room)
	}
}
