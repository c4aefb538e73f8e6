package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// cmdBench is `salon bench messaging`: a load generator that talks to a
// running Salon over real HTTP. It registers users, creates rooms, keeps
// long-polling /sync clients open and sends messages at a fixed rate,
// measuring send→/sync delivery latency, initial sync time and the
// server's memory (from its metrics listener).
func cmdBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "messaging" {
		return errUsage
	}
	fs := flag.NewFlagSet("salon bench messaging", flag.ContinueOnError)
	fs.SetOutput(stderr)
	base := fs.String("url", "http://127.0.0.1:8008", "server to load (loopback only)")
	metricsURL := fs.String("metrics", defaultMetricsURL, "the server's metrics listener (metrics.listen; loopback only), for its memory")
	clients := fs.Int("clients", 1000, "long-polling /sync clients (one user each)")
	rooms := fs.Int("rooms", 500, "rooms the clients are spread over")
	rate := fs.Float64("rate", 200, "messages per second")
	dur := fs.Duration("duration", 60*time.Second, "how long to send")
	bigRooms := fs.Int("initial-sync-rooms", 200, "rooms of the user whose initial /sync is timed (0: skip)")
	prefix := fs.String("prefix", fmt.Sprintf("b%d", time.Now().Unix()%100000), "user name prefix")
	every := fs.Duration("sample", 5*time.Second, "how often to print the server's memory during the load")
	pprofURL := fs.String("pprof", "", "the server's SALON_PPROF_LISTEN base URL (loopback): profile it under load")
	pprofDir := fs.String("pprof-dir", ".", "where -pprof profiles are saved")
	pprofName := fs.String("pprof-name", "server", "file name prefix of the saved profiles")
	sliding := fs.Bool("sliding", false, "the clients long-poll simplified sliding sync (MSC4186) instead of /sync")
	roomSize := fs.Int("room-size", 0, "one big room of this many members (overrides -clients and -rooms): they join one after another, "+
		"timed, and the clients sync with lazy-loaded members as Element does; -duration 0 stops after the joins")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *roomSize > 0 {
		*clients, *rooms, *bigRooms = *roomSize, 1, 0
	}
	for _, u := range []string{*base, *metricsURL, *pprofURL} {
		if u != "" && !loopbackURL(u) {
			return errors.New("bench only loads servers on this machine's loopback")
		}
	}
	if *every <= 0 {
		return errors.New("-sample must be positive")
	}
	lg := &loadgen{base: strings.TrimSuffix(*base, "/"), metrics: strings.TrimSuffix(*metricsURL, "/"), hc: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: *clients + 64, MaxConnsPerHost: 0}}}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	say := func(f string, a ...any) { fmt.Fprintf(stdout, f+"\n", a...) }

	say("setup: %d users, %d rooms", *clients, *rooms)
	users := make([]*lgUser, *clients)
	if err := lg.parallel(*clients, 16, func(i int) error {
		u, err := lg.register(ctx, fmt.Sprintf("%s_%d", *prefix, i))
		users[i] = u
		return err
	}); err != nil {
		return err
	}
	roomIDs := make([]string, *rooms)
	if err := lg.parallel(*rooms, 8, func(i int) error {
		id, err := users[i%len(users)].createRoom(ctx, lg, "public_chat")
		roomIDs[i] = id
		return err
	}); err != nil {
		return err
	}
	// Each user joins one room; rooms get clients/rooms members each.
	userRoom := make([]string, len(users))
	if *roomSize > 0 {
		for i := range userRoom {
			userRoom[i] = roomIDs[0]
		}
		if err := lg.bigRoomJoins(ctx, users, roomIDs[0], *every, say); err != nil {
			return err
		}
		lg.filter = lazyFilter
	} else if err := lg.parallel(len(users), 16, func(i int) error {
		userRoom[i] = roomIDs[i%len(roomIDs)]
		return users[i].join(ctx, lg, userRoom[i])
	}); err != nil {
		return err
	}
	idle, idleHeap := lg.memory(ctx)
	say("server RSS at idle: %.1f MiB (Go heap in use %.1f MiB)", idle/(1<<20), idleHeap/(1<<20))
	if *roomSize > 0 {
		if err := lg.lazySync(ctx, users[len(users)/2], say); err != nil {
			return err
		}
		if *dur <= 0 {
			return nil
		}
	}

	if *bigRooms > 0 {
		u, err := lg.register(ctx, *prefix+"_many")
		if err != nil {
			return err
		}
		if err := lg.parallel(*bigRooms, 8, func(i int) error {
			id, err := u.createRoom(ctx, lg, "private_chat")
			if err == nil {
				_, err = u.send(ctx, lg, id, "hello")
			}
			return err
		}); err != nil {
			return err
		}
		var times []time.Duration
		for i := 0; i < 5; i++ {
			t0 := time.Now()
			var err error
			if *sliding {
				_, _, err = u.slideEvents(ctx, lg, "", 0, 19)
			} else {
				_, err = u.sync(ctx, lg, "", 0)
			}
			if err != nil {
				return err
			}
			times = append(times, time.Since(t0))
		}
		if *sliding {
			say("first sliding sync response, 20-room list, of a user in %d rooms: median %s (5 runs)", *bigRooms, median(times))
		} else {
			say("initial /sync of a user in %d rooms: median %s (5 runs)", *bigRooms, median(times))
		}
	}

	// Long-pollers.
	var lat, sendLat latencies
	var delivered atomic.Int64
	var wg sync.WaitGroup
	poll := func(ctx context.Context, u *lgUser, since string, timeout int) (string, []int64, error) {
		if *sliding {
			return u.slideEvents(ctx, lg, since, timeout, 0)
		}
		return u.syncEvents(ctx, lg, since, timeout)
	}
	// The clients' first syncs, 16 at a time.
	first := make([]string, len(users))
	if err := lg.parallel(len(users), 16, func(i int) error {
		var err error
		first[i], _, err = poll(ctx, users[i], "", 0)
		return err
	}); err != nil {
		return err
	}
	for i, u := range users {
		since := first[i]
		wg.Add(1)
		go func(u *lgUser, since string) {
			defer wg.Done()
			for ctx.Err() == nil {
				next, evs, err := poll(ctx, u, since, 30_000)
				if err != nil {
					if ctx.Err() == nil {
						time.Sleep(100 * time.Millisecond)
					}
					continue
				}
				since = next
				now := time.Now().UnixNano()
				for _, sent := range evs {
					lat.add(time.Duration(now - sent))
					delivered.Add(1)
				}
			}
		}(u, since)
	}
	time.Sleep(time.Second)
	say("load: %.0f messages/s for %s to %d long-polling clients", *rate, *dur, len(users))
	var sent atomic.Int64
	var sendErrs atomic.Int64
	var peak float64
	start := time.Now()
	tick := time.NewTicker(time.Duration(float64(time.Second) / *rate))
	stop := time.After(*dur)
	sample := time.NewTicker(*every)
	var sendWG sync.WaitGroup
	var profWG sync.WaitGroup
	if *pprofURL != "" {
		profWG.Add(1)
		go func() {
			defer profWG.Done()
			lg.profile(ctx, *pprofURL, *pprofDir, *pprofName, *dur, say)
		}()
	}
loop:
	for {
		select {
		case <-tick.C:
			i := rand.IntN(len(users))
			sendWG.Add(1)
			go func(u *lgUser, room string) {
				defer sendWG.Done()
				t0 := time.Now()
				if _, err := u.send(ctx, lg, room, strconv.FormatInt(t0.UnixNano(), 10)); err != nil {
					sendErrs.Add(1)
					return
				}
				sendLat.add(time.Since(t0))
				sent.Add(1)
			}(users[i], userRoom[i])
		case <-sample.C:
			r, heap := lg.memory(ctx)
			peak = max(peak, r)
			say("  t+%s sent %d delivered %d RSS %.1f MiB heap in use %.1f MiB", time.Since(start).Round(time.Second),
				sent.Load(), delivered.Load(), r/(1<<20), heap/(1<<20))
		case <-stop:
			break loop
		case <-ctx.Done():
			break loop
		}
	}
	tick.Stop()
	sendWG.Wait()
	profWG.Wait()
	time.Sleep(2 * time.Second)
	cancel()
	wg.Wait()
	p50, p99 := lat.percentile(50), lat.percentile(99)
	say("result: sent %d (%d errors), %.0f msg/s sustained; deliveries %d; send→sync latency p50 %s p99 %s; RSS idle %.1f MiB peak %.1f MiB",
		sent.Load(), sendErrs.Load(), float64(sent.Load())/dur.Seconds(), delivered.Load(), p50, p99, idle/(1<<20), peak/(1<<20))
	say("send request latency p50 %s p99 %s", sendLat.percentile(50), sendLat.percentile(99))
	if *roomSize > 0 {
		want := sent.Load() * int64(*roomSize-1)
		say("target (issue 24, 2,000 members at 5 msg/s): send p99 < 100ms: %s; delivery p50 < 100ms: %s, p99 < 1s: %s; every message delivered (%d of %d): %s",
			verdict(sendLat.percentile(99) < 100*time.Millisecond), verdict(p50 < 100*time.Millisecond), verdict(p99 < time.Second),
			delivered.Load(), want, verdict(delivered.Load() >= want))
	}
	return nil
}

// lazyFilter is the inline /sync filter of the big-room runs: members
// lazy-loaded and a short timeline, as Element asks.
const lazyFilter = `{"room":{"state":{"lazy_load_members":true},"timeline":{"limit":10}}}`

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}

// bigRoomJoins has users[1:] join room (created by users[0]) one after
// another, timing each join and sampling the server's memory meanwhile:
// the joins half of issue 24 (last join, peak RSS, RSS per member).
func (lg *loadgen) bigRoomJoins(ctx context.Context, users []*lgUser, room string, every time.Duration, say func(string, ...any)) error {
	// Registration hashed thousands of passwords (argon2, 19 MiB each):
	// give the runtime time to hand that memory back first, so what is
	// measured is the joins.
	time.Sleep(2 * every)
	rss0, heap0 := lg.memory(ctx)
	say("joins: %d users join one room one after another; server RSS before %.1f MiB (Go heap in use %.1f MiB)", len(users)-1, rss0/(1<<20), heap0/(1<<20))
	var peak atomic.Uint64 // sampled during the joins only
	sctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(min(every, time.Second))
		defer t.Stop()
		for {
			select {
			case <-sctx.Done():
				return
			case <-t.C:
				if r, _ := lg.memory(sctx); uint64(r) > peak.Load() {
					peak.Store(uint64(r))
				}
			}
		}
	}()
	times := make([]time.Duration, 0, len(users))
	start := time.Now()
	var err error
	for i, u := range users[1:] {
		t0 := time.Now()
		if err = u.join(ctx, lg, room); err != nil {
			break
		}
		times = append(times, time.Since(t0))
		if n := i + 1; n%1000 == 0 {
			r, h := lg.memory(ctx)
			say("  %d joined (%s): last 100 joins median %s; RSS %.1f MiB heap in use %.1f MiB", n, time.Since(start).Round(time.Second),
				median(append([]time.Duration(nil), times[len(times)-min(100, len(times)):]...)), r/(1<<20), h/(1<<20))
		}
	}
	stop()
	wg.Wait()
	if err != nil {
		return err
	}
	rss1, heap1 := lg.memory(ctx)
	peak.Store(max(peak.Load(), uint64(rss1)))
	n := len(times)
	last := times[n-1]
	first100 := median(append([]time.Duration(nil), times[:min(100, n)]...))
	last100 := median(append([]time.Duration(nil), times[n-min(100, n):]...))
	// Per member: the whole RSS after the joins over the members (an upper
	// bound: it includes the idle server), and the Go heap's growth.
	perMember := rss1 / float64(n+1)
	heapPer := (heap1 - heap0) / float64(n)
	say("joins result: %d joins in %s; first 100 median %s, last 100 median %s, last join %s; RSS peak %.1f MiB, after %.1f MiB (heap in use %.1f MiB); RSS/members %.1f KiB, heap growth per join %.1f KiB",
		n, time.Since(start).Round(time.Millisecond), first100, last100, last, float64(peak.Load())/(1<<20), rss1/(1<<20), heap1/(1<<20), perMember/1024, heapPer/1024)
	say("target (issue 24, 5,000 members): last join < 50ms: %s (last 100 median: %s); peak RSS < 400 MiB: %s; < 50 KiB per member: %s",
		verdict(last < 50*time.Millisecond), verdict(last100 < 50*time.Millisecond), verdict(peak.Load() < 400<<20), verdict(perMember < 50<<10))
	return nil
}

// lazySync times a member's initial /sync with lazy-loaded members (the
// Element filter) and measures its size: median of 5.
func (lg *loadgen) lazySync(ctx context.Context, u *lgUser, say func(string, ...any)) error {
	var times []time.Duration
	var size int
	for i := 0; i < 5; i++ {
		t0 := time.Now()
		b, err := lg.raw(ctx, "GET", "/_matrix/client/v3/sync?timeout=0&filter="+url.QueryEscape(lazyFilter), u.token, nil)
		if err != nil {
			return err
		}
		times = append(times, time.Since(t0))
		size = len(b)
	}
	d := median(times)
	say("initial lazy-loading /sync of a member: median %s (5 runs), %d bytes; target < 100ms: %s, < 100 KB: %s",
		d, size, verdict(d < 100*time.Millisecond), verdict(size < 100_000))
	return nil
}

type loadgen struct {
	filter  string // inline /sync filter of the long-polls ("" for none)
	base    string
	metrics string // the metrics listener's base URL
	hc      *http.Client
}

type lgUser struct {
	id, token string
	txn       atomic.Int64
}

func (lg *loadgen) parallel(n, width int, fn func(i int) error) error {
	sem := make(chan struct{}, width)
	errc := make(chan error, n)
	for i := 0; i < n; i++ {
		sem <- struct{}{}
		go func(i int) {
			defer func() { <-sem }()
			errc <- fn(i)
		}(i)
	}
	for i := 0; i < n; i++ {
		if err := <-errc; err != nil {
			return err
		}
	}
	return nil
}

func (lg *loadgen) do(ctx context.Context, method, path, token string, body any, out any) error {
	b, err := lg.raw(ctx, method, path, token, body)
	if err == nil && out != nil {
		err = json.Unmarshal(b, out)
	}
	return err
}

// raw makes a request and returns the (uncompressed) body of a 200 answer.
func (lg *loadgen) raw(ctx context.Context, method, path, token string, body any) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, lg.base+path, rd)
	if err != nil {
		return nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := lg.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	if res.StatusCode != 200 {
		return nil, fmt.Errorf("%s %s: %d %s", method, path, res.StatusCode, b)
	}
	return b, nil
}

func (lg *loadgen) register(ctx context.Context, name string) (*lgUser, error) {
	var out struct {
		UserID      string `json:"user_id"`
		AccessToken string `json:"access_token"`
	}
	err := lg.do(ctx, "POST", "/_matrix/client/v3/register", "", map[string]any{
		"username": name, "password": "load test password", "auth": map[string]string{"type": "m.login.dummy"},
	}, &out)
	if err != nil {
		// The first step is a 401 carrying the session; go round once.
		var first struct {
			Session string `json:"session"`
		}
		req, _ := http.NewRequestWithContext(ctx, "POST", lg.base+"/_matrix/client/v3/register", strings.NewReader(`{}`))
		res, err2 := lg.hc.Do(req)
		if err2 != nil {
			return nil, err2
		}
		_ = json.NewDecoder(res.Body).Decode(&first)
		res.Body.Close()
		if err := lg.do(ctx, "POST", "/_matrix/client/v3/register", "", map[string]any{
			"username": name, "password": "load test password",
			"auth": map[string]string{"type": "m.login.dummy", "session": first.Session},
		}, &out); err != nil {
			return nil, err
		}
	}
	return &lgUser{id: out.UserID, token: out.AccessToken}, nil
}

func (u *lgUser) createRoom(ctx context.Context, lg *loadgen, preset string) (string, error) {
	var out struct {
		RoomID string `json:"room_id"`
	}
	err := lg.do(ctx, "POST", "/_matrix/client/v3/createRoom", u.token, map[string]any{"preset": preset}, &out)
	return out.RoomID, err
}

func (u *lgUser) join(ctx context.Context, lg *loadgen, room string) error {
	return lg.do(ctx, "POST", "/_matrix/client/v3/join/"+room, u.token, map[string]any{}, nil)
}

func (u *lgUser) send(ctx context.Context, lg *loadgen, room, body string) (string, error) {
	var out struct {
		EventID string `json:"event_id"`
	}
	txn := strconv.FormatInt(u.txn.Add(1), 10)
	err := lg.do(ctx, "PUT", "/_matrix/client/v3/rooms/"+room+"/send/m.room.message/"+txn, u.token,
		map[string]any{"msgtype": "m.text", "body": body}, &out)
	return out.EventID, err
}

func (u *lgUser) sync(ctx context.Context, lg *loadgen, since string, timeout int) (string, error) {
	next, _, err := u.syncEvents(ctx, lg, since, timeout)
	return next, err
}

// syncEvents long-polls and returns the send times carried by the bodies
// of messages from other users.
func (u *lgUser) syncEvents(ctx context.Context, lg *loadgen, since string, timeout int) (string, []int64, error) {
	q := "?timeout=" + strconv.Itoa(timeout)
	if since != "" {
		q += "&since=" + since
	}
	if lg.filter != "" {
		// The big-room runs measure messages: each client coming online
		// would wake every other member with its presence (a cost of its
		// own, quadratic in the room's size while they start).
		q += "&set_presence=offline&filter=" + url.QueryEscape(lg.filter)
	}
	var out struct {
		NextBatch string `json:"next_batch"`
		Rooms     struct {
			Join map[string]struct {
				Timeline struct {
					Events []struct {
						Type    string `json:"type"`
						Sender  string `json:"sender"`
						Content struct {
							Body string `json:"body"`
						} `json:"content"`
					} `json:"events"`
				} `json:"timeline"`
			} `json:"join"`
		} `json:"rooms"`
	}
	if err := lg.do(ctx, "GET", "/_matrix/client/v3/sync"+q, u.token, nil, &out); err != nil {
		return since, nil, err
	}
	var sent []int64
	if since != "" {
		for _, r := range out.Rooms.Join {
			for _, e := range r.Timeline.Events {
				if e.Type == "m.room.message" && e.Sender != u.id {
					if ns, err := strconv.ParseInt(e.Content.Body, 10, 64); err == nil {
						sent = append(sent, ns)
					}
				}
			}
		}
	}
	return out.NextBatch, sent, nil
}

// slideEvents is syncEvents over simplified sliding sync: one connection
// per user, a list window [0, last] with one timeline event per room.
func (u *lgUser) slideEvents(ctx context.Context, lg *loadgen, pos string, timeout, last int) (string, []int64, error) {
	q := "?timeout=" + strconv.Itoa(timeout)
	if pos != "" {
		q += "&pos=" + url.QueryEscape(pos)
	}
	body := map[string]any{"lists": map[string]any{"all": map[string]any{
		"ranges": [][2]int{{0, last}}, "timeline_limit": 1, "required_state": [][2]string{{"m.room.name", ""}},
	}}}
	var out struct {
		Pos   string `json:"pos"`
		Rooms map[string]struct {
			Timeline []struct {
				Type    string `json:"type"`
				Sender  string `json:"sender"`
				Content struct {
					Body string `json:"body"`
				} `json:"content"`
			} `json:"timeline"`
		} `json:"rooms"`
	}
	if err := lg.do(ctx, "POST", "/_matrix/client/unstable/org.matrix.simplified_msc3575/sync"+q, u.token, body, &out); err != nil {
		return pos, nil, err
	}
	var sent []int64
	if pos != "" {
		for _, r := range out.Rooms {
			for _, e := range r.Timeline {
				if e.Type == "m.room.message" && e.Sender != u.id {
					if ns, err := strconv.ParseInt(e.Content.Body, 10, 64); err == nil {
						sent = append(sent, ns)
					}
				}
			}
		}
	}
	return out.Pos, sent, nil
}

// memory reads the server's resident memory and Go heap in use from its
// Prometheus metrics (0 when unavailable).
func (lg *loadgen) memory(ctx context.Context) (rss, heapInuse float64) {
	m, _ := scrapeMetrics(ctx, lg.hc, lg.metrics, "process_resident_memory_bytes", "go_memstats_heap_inuse_bytes")
	return m["process_resident_memory_bytes"], m["go_memstats_heap_inuse_bytes"]
}

// profile saves profiles of the server under load: the heap once the load
// has run for a while (two minutes into long runs, else at once), a CPU
// profile of up to 30 s from a quarter into the load, and the heap again at
// the end, so the two heaps can be compared with pprof -diff_base.
func (lg *loadgen) profile(ctx context.Context, base, dir, name string, dur time.Duration, say func(string, ...any)) {
	save := func(path, file string, timeout time.Duration) {
		cctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		req, _ := http.NewRequestWithContext(cctx, "GET", base+path, nil)
		res, err := lg.hc.Do(req)
		if err != nil {
			say("  pprof %s: %v", path, err)
			return
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		if err == nil && res.StatusCode != 200 {
			err = fmt.Errorf("status %d", res.StatusCode)
		}
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, file), b, 0o644)
		}
		if err != nil {
			say("  pprof %s: %v", path, err)
			return
		}
		say("  pprof: saved %s", filepath.Join(dir, file))
	}
	wait := func(d time.Duration) bool {
		select {
		case <-time.After(d):
			return true
		case <-ctx.Done():
			return false
		}
	}
	first := dur / 4
	if dur >= 4*time.Minute {
		first = 2 * time.Minute
	}
	secs := int(min(30*time.Second, dur/2) / time.Second)
	if !wait(first) {
		return
	}
	save("/debug/pprof/heap", name+"-heap-start.pprof", 30*time.Second)
	if secs > 0 {
		save("/debug/pprof/profile?seconds="+strconv.Itoa(secs), name+"-cpu.pprof", time.Duration(secs+30)*time.Second)
	}
	if left := dur - first - time.Duration(secs)*time.Second - 2*time.Second; left > 0 && !wait(left) {
		return
	}
	save("/debug/pprof/heap", name+"-heap-end.pprof", 30*time.Second)
	save("/debug/pprof/mutex", name+"-mutex.pprof", 30*time.Second)
}

type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
}

func (l *latencies) percentile(p float64) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.d) == 0 {
		return 0
	}
	sort.Slice(l.d, func(i, j int) bool { return l.d[i] < l.d[j] })
	return l.d[min(len(l.d)-1, int(float64(len(l.d))*p/100))]
}

func median(ds []time.Duration) time.Duration {
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds[len(ds)/2]
}
