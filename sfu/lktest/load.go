package lktest

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/livekit/protocol/livekit"
)

// Scenario is one shape of call for a load run.
type Scenario struct {
	Name string
	// Participants per room; Rooms rooms run side by side.
	Participants int
	Rooms        int
	// The first AudioPublishers participants publish a microphone, of
	// which the first Talking send continuously (the rest send DTX comfort
	// noise, a packet every 400 ms).
	AudioPublishers int
	Talking         int
	// The first VideoPublishers participants publish a camera, with three
	// simulcast layers when Simulcast is set.
	VideoPublishers int
	Simulcast       bool
	// LowViewers of the subscribers ask for the low layer (small tiles).
	LowViewers int
	// Duration is how long media flows once everyone has joined.
	Duration time.Duration
	// JoinConcurrency caps simultaneous joins.
	JoinConcurrency int
	// ChurnPerSecond: during the media window, this many times a second
	// a silent member leaves and a new one joins with a silent microphone
	// (a voice channel's comings and goings).
	ChurnPerSecond float64
}

// Scenarios are the benchmark's standard calls.
var Scenarios = []Scenario{
	{Name: "audio", Participants: 50, Rooms: 1, AudioPublishers: 50, Talking: 5, Duration: 20 * time.Second, JoinConcurrency: 10},
	{Name: "lecture", Participants: 201, Rooms: 1, AudioPublishers: 1, Talking: 1, VideoPublishers: 1, Simulcast: true, LowViewers: 100, Duration: 20 * time.Second, JoinConcurrency: 10},
	{Name: "video", Participants: 10, Rooms: 1, AudioPublishers: 10, Talking: 1, VideoPublishers: 10, Simulcast: true, LowViewers: 0, Duration: 20 * time.Second, JoinConcurrency: 5},
	{Name: "churn", Participants: 20, Rooms: 1, AudioPublishers: 20, Talking: 3, Duration: 20 * time.Second, JoinConcurrency: 5, ChurnPerSecond: 2},
}

// Result is what the clients saw.
type Result struct {
	Scenario                  string
	Joined                    int
	JoinP50, JoinP95, JoinMax time.Duration
	// Media window: packets and bytes all clients received, and what the
	// publishers sent (times the subscribers each packet should reach,
	// for the loss estimate).
	Window          time.Duration
	PacketsReceived uint64
	BytesReceived   uint64
	PacketsSent     uint64
	Expected        uint64
	Loss            float64
	// Missing is packets absent from the sequence numbers subscribers
	// received (the SFU rewrites them to run on across layer switches,
	// so a gap is a packet dropped on the way); SeqLoss is its share.
	// Loss above also counts a subscriber moved to a lower simulcast
	// layer (bandwidth estimation) as loss; SeqLoss does not.
	Missing uint64
	SeqLoss float64
	// LayerPackets are the video packets received per simulcast layer.
	LayerPackets [3]uint64
	// Churned is how many members left and joined during the window
	// (ChurnPerSecond), ChurnJoinP95 how long those joins took, and
	// ChurnErrors how many failed.
	Churned      int
	ChurnJoinP95 time.Duration
	ChurnErrors  int
}

func (r Result) String() string {
	s := fmt.Sprintf("%s: %d joined (p50 %s, p95 %s, max %s); %s window: received %d packets (%.0f/s, %.1f Mbit/s), sent %d, expected %d, loss %.2f%% (sequence gaps %.2f%%; video packets by layer q/h/f %v)",
		r.Scenario, r.Joined, r.JoinP50.Round(time.Millisecond), r.JoinP95.Round(time.Millisecond), r.JoinMax.Round(time.Millisecond),
		r.Window.Round(time.Millisecond), r.PacketsReceived, float64(r.PacketsReceived)/r.Window.Seconds(),
		float64(r.BytesReceived)*8/r.Window.Seconds()/1e6, r.PacketsSent, r.Expected, r.Loss*100, r.SeqLoss*100, r.LayerPackets)
	if r.Churned+r.ChurnErrors > 0 {
		s += fmt.Sprintf("; churn: %d left and joined (join p95 %s, %d failed)", r.Churned, r.ChurnJoinP95.Round(time.Millisecond), r.ChurnErrors)
	}
	return s
}

// LowLayerOnly is a single-layer spec for video without simulcast.
var LowLayerOnly = []VideoLayerSpec{{RID: "", Quality: livekit.VideoQuality_HIGH, Width: 640, Height: 360, PacketsPerFrame: 2, PacketSize: 1000}}

// Run plays sc against the SFU at baseURL; token mints a token for a room
// and identity. measure, when set, is called at the start and end of the
// media window (for server-side counters). Every client is closed before
// Run returns.
func Run(ctx context.Context, baseURL string, token func(room, identity string) string, sc Scenario, measure func(start bool)) (Result, error) {
	if sc.Rooms <= 0 {
		sc.Rooms = 1
	}
	if sc.JoinConcurrency <= 0 {
		sc.JoinConcurrency = 8
	}
	res := Result{Scenario: sc.Name}
	type member struct {
		c       *Client
		sources []*Source
		join    time.Duration
	}
	var (
		mu       sync.Mutex
		members  []*member
		firstErr error
	)
	defer func() {
		for _, m := range members {
			for _, s := range m.sources {
				s.Stop()
			}
			m.c.Close()
		}
	}()
	// join connects member i of a room and starts what it publishes.
	join := func(room string, i int, identity string) (*member, error) {
		start := time.Now()
		jctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		c, err := Connect(jctx, baseURL, token(room, identity), Options{AutoSubscribe: true})
		if err == nil {
			err = c.WaitFor(jctx, "subscriber connected", func() bool { return c.SubscriberState().String() == "connected" })
			if err != nil {
				err = fmt.Errorf("%w (%s)", err, c.Debug())
			}
		}
		m := &member{c: c, join: time.Since(start)}
		if err == nil && i < sc.AudioPublishers {
			var speaking atomic.Bool
			speaking.Store(i < sc.Talking)
			var s *Source
			if s, err = c.PublishAudio(jctx, "mic", &speaking); err == nil {
				if i >= sc.Talking {
					s.dtx.Store(true)
				}
				m.sources = append(m.sources, s)
			}
		}
		if err == nil && i < sc.VideoPublishers {
			layers := LowLayerOnly
			if sc.Simulcast {
				layers = DefaultSimulcast
			}
			var s *Source
			if s, err = c.PublishVideo(jctx, "cam", layers); err == nil {
				m.sources = append(m.sources, s)
			}
		}
		if err != nil {
			for _, s := range m.sources {
				s.Stop()
			}
			if c != nil {
				c.Close()
			}
			return nil, err
		}
		return m, nil
	}
	sem := make(chan struct{}, sc.JoinConcurrency)
	var wg sync.WaitGroup
	for r := 0; r < sc.Rooms; r++ {
		room := fmt.Sprintf("load-%s-%d", sc.Name, r)
		for i := 0; i < sc.Participants; i++ {
			i := i
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				m, err := join(room, i, fmt.Sprintf("u%03d", i))
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					if firstErr == nil {
						firstErr = fmt.Errorf("participant %d: %w", i, err)
					}
					return
				}
				members = append(members, m)
			}()
		}
	}
	wg.Wait()
	if firstErr != nil {
		return res, firstErr
	}
	res.Joined = len(members)
	joins := make([]time.Duration, 0, len(members))
	for _, m := range members {
		joins = append(joins, m.join)
	}
	sort.Slice(joins, func(i, j int) bool { return joins[i] < joins[j] })
	res.JoinP50, res.JoinP95, res.JoinMax = joins[len(joins)/2], joins[len(joins)*95/100], joins[len(joins)-1]

	// Small tiles for LowViewers subscribers (adaptive stream).
	n := 0
	for _, m := range members {
		if len(m.sources) > 0 && sc.LowViewers > 0 {
			continue
		}
		if n >= sc.LowViewers {
			break
		}
		n++
		for _, o := range members {
			for _, s := range o.sources {
				if s.Info.Type == livekit.TrackType_VIDEO {
					_ = m.c.UpdateTrackSettings(&livekit.UpdateTrackSettings{TrackSids: []string{s.Info.Sid}, Width: 320, Height: 180})
				}
			}
		}
	}
	// Let subscriptions settle, then measure.
	time.Sleep(3 * time.Second)
	// lowSubs: how many subscribers take the low layer of each simulcast
	// track; the rest take the high one.
	lowSubs := float64(n)
	subs := float64(len(members) - 1)
	// gone are members that left during the window (churn): what they
	// received still counts.
	var gone []*member
	snap := func() (rx, bytes, sent, missing uint64, layers [3]uint64, expected float64) {
		mu.Lock()
		all := append(slices.Clone(members), gone...)
		mu.Unlock()
		for _, m := range all {
			m.c.mu.Lock()
			for _, t := range m.c.tracks {
				rx += t.Packets.Load()
				bytes += t.Bytes.Load()
				missing += t.Missing.Load()
				for l := range layers {
					layers[l] += t.LayerPackets[l].Load()
				}
			}
			m.c.mu.Unlock()
			for _, s := range m.sources {
				sent += s.Sent()
				switch {
				case s.Info.Type == livekit.TrackType_VIDEO && sc.Simulcast:
					expected += float64(s.SentOnLayer(0))*lowSubs + float64(s.SentOnLayer(2))*(subs-lowSubs)
				default:
					expected += float64(s.Sent()) * subs
				}
			}
		}
		return
	}
	if measure != nil {
		measure(true)
	}
	rx0, b0, s0, m0, l0, e0 := snap()
	t0 := time.Now()
	var churnJoins []time.Duration
	if sc.ChurnPerSecond > 0 {
		// Leave and join one at a time at the given rate; the talkers stay.
		tick := time.NewTicker(time.Duration(float64(time.Second) / sc.ChurnPerSecond))
		end := time.After(sc.Duration)
		next := sc.Participants
	churn:
		for {
			select {
			case <-tick.C:
			case <-end:
				break churn
			case <-ctx.Done():
				break churn
			}
			mu.Lock()
			k := -1
			for j, m := range members {
				if len(m.sources) > 0 && m.sources[0].dtx.Load() {
					k = j
					break
				}
			}
			if k < 0 {
				mu.Unlock()
				continue
			}
			m := members[k]
			members = slices.Delete(members, k, k+1)
			gone = append(gone, m)
			mu.Unlock()
			for _, s := range m.sources {
				s.Stop()
			}
			m.c.Leave()
			m.c.Close()
			nm, err := join("load-"+sc.Name+"-0", sc.Talking, fmt.Sprintf("u%03d", next))
			next++
			if err != nil {
				res.ChurnErrors++
				continue
			}
			mu.Lock()
			members = append(members, nm)
			mu.Unlock()
			churnJoins = append(churnJoins, nm.join)
		}
		tick.Stop()
		res.Churned = len(churnJoins)
		if len(churnJoins) > 0 {
			slices.Sort(churnJoins)
			res.ChurnJoinP95 = churnJoins[len(churnJoins)*95/100]
		}
	} else {
		select {
		case <-time.After(sc.Duration):
		case <-ctx.Done():
		}
	}
	rx1, b1, s1, m1, l1, e1 := snap()
	res.Window = time.Since(t0)
	if measure != nil {
		measure(false)
	}
	res.Expected = uint64(e1 - e0)
	res.PacketsReceived, res.BytesReceived, res.PacketsSent = rx1-rx0, b1-b0, s1-s0
	res.Missing = m1 - m0
	if n := res.PacketsReceived + res.Missing; n > 0 {
		res.SeqLoss = float64(res.Missing) / float64(n)
	}
	for l := range res.LayerPackets {
		res.LayerPackets[l] = l1[l] - l0[l]
	}
	if sc.ChurnPerSecond > 0 {
		// Who should have received what shifts with every leave and
		// join: only sequence gaps tell loss here.
		res.Expected, res.Loss = 0, res.SeqLoss
	} else if res.Expected > 0 && res.PacketsReceived < res.Expected {
		res.Loss = 1 - float64(res.PacketsReceived)/float64(res.Expected)
	}
	return res, nil
}
