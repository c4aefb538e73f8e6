package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/salonhq/salon/homeserver/mxtest"
	"github.com/salonhq/salon/homeserver/store/postgres/pgtest"
)

// faultProxy is a TCP proxy on loopback between Salon and PostgreSQL that
// a test drives to make the database unreachable (cut every connection and
// refuse new ones, as a restart or a network partition does) or slow.
type faultProxy struct {
	t      testing.TB
	ln     net.Listener
	target string

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	refuse bool
	delay  time.Duration
	stall  chan struct{} // non-nil: nothing passes until it is closed
	wg     sync.WaitGroup
}

func newFaultProxy(t testing.TB, target string) *faultProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{t: t, ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		ln.Close()
		p.Unstall()
		p.Cut()
		p.wg.Wait()
	})
	return p
}

func (p *faultProxy) Addr() string { return p.ln.Addr().String() }

func (p *faultProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		refuse := p.refuse
		p.mu.Unlock()
		if refuse {
			c.Close()
			continue
		}
		up, err := net.DialTimeout("tcp", p.target, 5*time.Second)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		if p.refuse {
			p.mu.Unlock()
			c.Close()
			up.Close()
			continue
		}
		p.conns[c], p.conns[up] = struct{}{}, struct{}{}
		p.wg.Add(2)
		p.mu.Unlock()
		go p.pipe(c, up)
		go p.pipe(up, c)
	}
}

// pipe copies src to dst, each chunk after the current delay.
func (p *faultProxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	defer func() {
		dst.Close()
		src.Close()
		p.mu.Lock()
		delete(p.conns, dst)
		delete(p.conns, src)
		p.mu.Unlock()
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			d, stall := p.delay, p.stall
			p.mu.Unlock()
			if stall != nil {
				<-stall
			}
			if d > 0 {
				time.Sleep(d)
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// Cut closes every proxied connection and refuses new ones until Restore.
func (p *faultProxy) Cut() {
	p.mu.Lock()
	p.refuse = true
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
}

// Restore lets connections through again.
func (p *faultProxy) Restore() {
	p.mu.Lock()
	p.refuse = false
	p.mu.Unlock()
}

// Stall holds every byte either way, on open and new connections alike,
// until Unstall: a database that stops answering without closing anything.
func (p *faultProxy) Stall() {
	p.mu.Lock()
	if p.stall == nil {
		p.stall = make(chan struct{})
	}
	p.mu.Unlock()
}

// Unstall lets the held bytes through.
func (p *faultProxy) Unstall() {
	p.mu.Lock()
	if p.stall != nil {
		close(p.stall)
		p.stall = nil
	}
	p.mu.Unlock()
}

// SetDelay delays every chunk either way by d (0: none).
func (p *faultProxy) SetDelay(d time.Duration) {
	p.mu.Lock()
	p.delay = d
	p.mu.Unlock()
}

// faultRequestBound is how long any request may take while the database
// is away: past it the client gives up and the test fails (a hang).
const faultRequestBound = 20 * time.Second

// TestPostgresOutage: PostgreSQL goes away under a running server (every
// connection cut, new ones refused, as a restart or a partition does), then
// comes back, then turns slow. While it is away, requests that need it get
// M_UNKNOWN 503 with Retry-After within a bound, /health says 503, a call on the embedded
// SFU keeps flowing and TURN keeps relaying; when it returns the server
// recovers by itself and every message acknowledged before the cut is in
// /messages. Real HTTP, WebSocket and UDP against a real PostgreSQL behind
// a proxy on loopback. Run with -v for the measured figures
// (docs/FAULTS.md).
func TestPostgresOutage(t *testing.T) {
	base := pgtest.URL(t)
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	px := newFaultProxy(t, u.Host)
	u.Host = px.Addr()
	// A short query bound, so the stalled phase fails fast.
	q := u.Query()
	q.Set("salon_query_timeout", "2s")
	u.RawQuery = q.Encode()
	// The TURN peer is on loopback, which the relay refuses by default.
	logs := &lockedBuffer{}
	srv := startServerLog(t, u.String(), slog.New(slog.NewTextHandler(logs, nil)), func(c *Config) { c.TURN.AllowPeers = []string{"127.0.0.1/32"} })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	alice := mxtest.Register(t, srv.URL, "alice", "password alice")
	bob := mxtest.Register(t, srv.URL, "bob", "password bob")
	alice.HTTP.Timeout, bob.HTTP.Timeout = faultRequestBound, faultRequestBound
	room := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"preset": "public_chat"}).Str("room_id")
	bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", room), map[string]any{})
	var acked []string
	txn := 0
	send := func(c *mxtest.Client, body string) mxtest.Response {
		txn++
		return c.Do("PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/send/m.room.message/%s", room, fmt.Sprintf("f%d", txn)),
			map[string]any{"msgtype": "m.text", "body": body})
	}
	for i := 0; i < 20; i++ {
		body := fmt.Sprintf("before %d", i)
		if r := send(alice, body); r.Status != 200 {
			t.Fatalf("send before the outage: %d %s", r.Status, r.Raw)
		}
		acked = append(acked, body)
	}

	// A call on the embedded SFU, and a TURN allocation relaying.
	aLK := joinCall(t, ctx, alice, room, "m.call#ROOM")
	bLK := joinCall(t, ctx, bob, room, "m.call#ROOM")
	mic, err := aLK.PublishAudio(ctx, "mic", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer mic.Stop()
	hears(t, ctx, bLK, mic.Info.Sid, "alice's audio before the outage")
	tu, tp, relayAddr := turnCredentials(t, bob)
	relay, err := turnAllocate(t, relayAddr, tu, tp)
	if err != nil {
		t.Fatal(err)
	}
	peer, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	relays := func(what string) {
		t.Helper()
		msg := []byte(what)
		buf := make([]byte, 1500)
		for try := 0; ; try++ {
			if _, err := relay.WriteTo(msg, peer.LocalAddr()); err != nil {
				t.Fatalf("TURN %s: write through the relay: %v", what, err)
			}
			_ = peer.SetReadDeadline(time.Now().Add(time.Second))
			n, from, err := peer.ReadFrom(buf)
			if err == nil && string(buf[:n]) == what {
				if _, err := peer.WriteTo(msg, from); err != nil {
					t.Fatal(err)
				}
				_ = relay.SetReadDeadline(time.Now().Add(5 * time.Second))
				if n, _, err := relay.ReadFrom(buf); err != nil || string(buf[:n]) != what {
					t.Fatalf("TURN %s: the peer's answer did not come back through the relay: %v", what, err)
				}
				return
			}
			if try == 10 {
				t.Fatalf("TURN %s: nothing relayed to the peer: %v", what, err)
			}
		}
	}
	relays("relay before the outage")
	health := func() int {
		res, err := http.Get(srv.URL + "/health")
		if err != nil {
			t.Fatalf("/health: %v", err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if h := health(); h != 200 {
		t.Fatalf("/health before the outage = %d", h)
	}

	// The database goes away.
	px.Cut()
	cutAt := time.Now()
	failed, readsFailed, readsServed, slowest := 0, 0, 0, time.Duration(0)
	for time.Since(cutAt) < 5*time.Second {
		start := time.Now()
		r := send(alice, "during the outage")
		if d := time.Since(start); d > slowest {
			slowest = d
		}
		if r.Status == 200 {
			t.Fatalf("a send acknowledged while the database is away: %s", r.Raw)
		}
		if !storageUnavailable(r) {
			t.Fatalf("send while the database is away: %d %s, want M_UNKNOWN 503 with Retry-After", r.Status, r.Raw)
		}
		failed++
		r = bob.Do("GET", mxtest.Path("/_matrix/client/v3/rooms/%s/messages?dir=b&limit=5", room), nil)
		if r.Status != 200 && !storageUnavailable(r) {
			t.Fatalf("/messages while the database is away: %d %s", r.Status, r.Raw)
		}
		if r.Status != 200 {
			readsFailed++
		} else {
			readsServed++
		}
		time.Sleep(100 * time.Millisecond)
	}
	if h := health(); h != http.StatusServiceUnavailable {
		t.Fatalf("/health while the database is away = %d, want 503", h)
	}
	before := bLK.Track(mic.Info.Sid).Packets.Load()
	if err := bLK.WaitPackets(ctx, "alice's audio during the outage", mic.Info.Sid, before+50); err != nil {
		t.Fatal(err)
	}
	relays("relay during the outage")
	checkUnavailableLogs(t, logs.String(), failed+readsFailed)
	t.Logf("outage (5 s): %d sends failed with M_UNKNOWN 503, /messages failed %d times and was served %d times, slowest answer %v; call and TURN kept flowing",
		failed, readsFailed, readsServed, slowest.Round(time.Millisecond))

	// awaitRecovery sends until one is acknowledged (within a minute) and
	// returns how long that took and how many sends failed before it.
	awaitRecovery := func(prefix, after string) (time.Duration, int) {
		backAt := time.Now()
		failedAfter := 0
		for {
			body := fmt.Sprintf("%s %d", prefix, failedAfter)
			r := send(alice, body)
			if r.Status == 200 {
				acked = append(acked, body)
				return time.Since(backAt), failedAfter
			}
			failedAfter++
			if time.Since(backAt) > time.Minute {
				t.Fatalf("not recovered a minute after %s: %d %s", after, r.Status, r.Raw)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	// It comes back: the server recovers without a restart.
	px.Restore()
	recovered, failedAfter := awaitRecovery("after", "the database returned")
	if h := health(); h != 200 {
		t.Fatalf("/health after the outage = %d", h)
	}
	t.Logf("recovery: first acknowledged send %v after the database returned, %d requests failed in between", recovered.Round(time.Millisecond), failedAfter)

	// Slow: every packet either way is delayed; requests answer, slower.
	px.SetDelay(50 * time.Millisecond)
	start := time.Now()
	for i := 0; i < 3; i++ {
		body := fmt.Sprintf("slow %d", i)
		if r := send(alice, body); r.Status != 200 {
			t.Fatalf("send with a slow database: %d %s", r.Status, r.Raw)
		}
		acked = append(acked, body)
	}
	t.Logf("slow database (+50 ms per packet each way): 3 sends took %v", time.Since(start).Round(time.Millisecond))
	px.SetDelay(0)

	// Stalled: the database stops answering but closes nothing. Requests
	// fail once the query bound (salon_query_timeout, 2 s here) passes.
	px.Stall()
	stallFailed, stallSlowest := 0, time.Duration(0)
	for i := 0; i < 3; i++ {
		start := time.Now()
		r := send(alice, "while stalled")
		if d := time.Since(start); d > stallSlowest {
			stallSlowest = d
		}
		if !storageUnavailable(r) {
			t.Fatalf("send while the database is stalled: %d %s, want M_UNKNOWN 503 with Retry-After", r.Status, r.Raw)
		}
		stallFailed++
	}
	checkUnavailableLogs(t, logs.String(), failed+readsFailed+stallFailed)
	if h := health(); h != http.StatusServiceUnavailable {
		t.Fatalf("/health while the database is stalled = %d, want 503", h)
	}
	px.Unstall()
	recovered, failedAfter = awaitRecovery("after the stall", "the stall")
	t.Logf("stalled database: %d sends failed with M_UNKNOWN 503, slowest answer %v; first send acknowledged %v after it answered again (%d failed in between)",
		stallFailed, stallSlowest.Round(time.Millisecond), recovered.Round(time.Millisecond), failedAfter)

	// Nothing acknowledged is lost.
	r := bob.Must(200, "GET", mxtest.Path("/_matrix/client/v3/rooms/%s/messages?dir=b&limit=100", room), nil)
	have := map[string]bool{}
	for _, e := range r.Body["chunk"].([]any) {
		ev := e.(map[string]any)
		if c, ok := ev["content"].(map[string]any); ok && ev["type"] == "m.room.message" {
			if b, ok := c["body"].(string); ok {
				have[b] = true
			}
			if c["body"] == "during the outage" || c["body"] == "while stalled" {
				t.Errorf("a send refused during the outage is in the room")
			}
		}
	}
	for _, b := range acked {
		if !have[b] {
			t.Errorf("acknowledged message %q is missing after the outage", b)
		}
	}
	if err := bLK.WaitPackets(ctx, "alice's audio after the outage", mic.Info.Sid, bLK.Track(mic.Info.Sid).Packets.Load()+50); err != nil {
		t.Fatal(err)
	}
}

// storageUnavailable reports whether r is the answer to a request that
// needed storage out of service for now: M_UNKNOWN 503 with a message and
// Retry-After (mxerr, store.UnavailableError).
func storageUnavailable(r mxtest.Response) bool {
	return r.Status == http.StatusServiceUnavailable && r.Errcode() == "M_UNKNOWN" &&
		r.Str("error") != "" && r.Header.Get("Retry-After") != ""
}

// checkUnavailableLogs checks that each refusal left its error line in
// the server's text log (at least want of them, background writes may
// add more), with the cause and without a stack.
func checkUnavailableLogs(t *testing.T, logs string, want int) {
	t.Helper()
	n := 0
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, `msg="storage unavailable"`) {
			n++
			if !strings.Contains(line, "level=ERROR") || !strings.Contains(line, "err=") {
				t.Errorf("log line without level or cause: %s", line)
			}
		}
	}
	if n < want {
		t.Errorf("%d storage unavailable log lines, want at least %d:\n%s", n, want, logs)
	}
	if strings.Contains(logs, "goroutine ") || strings.Contains(logs, ".go:") {
		t.Errorf("a stack in the log:\n%s", logs)
	}
}
