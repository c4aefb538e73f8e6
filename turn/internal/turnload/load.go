package turnload

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Load describes one relay throughput run: Allocations clients, each with
// an echo peer on loopback, bounce PacketSize-byte payloads through the
// relay (client → relay → peer → relay → client) with Window packets in
// flight per allocation.
type Load struct {
	Server      string // host:port of the TURN server (UDP)
	Credentials func(i int) (username, password string)
	Allocations int
	PacketSize  int
	Window      int
	PeerIP      net.IP // where echo peers listen; 127.0.0.1 if nil
	// Warmup runs before the measured Duration; MaxRoundTrips (if > 0)
	// ends the measured part early once that many echoes came back.
	Warmup        time.Duration
	Duration      time.Duration
	MaxRoundTrips uint64
	// Sample, if set, is called at the start and end of the measured part
	// (e.g. to read the server's CPU time).
	Sample func()
}

// Result of a run. Relayed counts packets the relay delivered in either
// direction during the measured part.
type Result struct {
	Allocations int
	Relayed     uint64
	RoundTrips  uint64
	Elapsed     time.Duration
	PacketSize  int
	Setup       []time.Duration // per allocation: Allocate, 401 challenge included
}

// PPS is relayed packets per second.
func (r Result) PPS() float64 { return float64(r.Relayed) / r.Elapsed.Seconds() }

// Mbps is relayed payload in Mbit/s.
func (r Result) Mbps() float64 { return r.PPS() * float64(r.PacketSize) * 8 / 1e6 }

// Run performs the load and cleans up its allocations. ctx bounds the
// whole run.
func Run(ctx context.Context, l Load) (Result, error) {
	if l.PeerIP == nil {
		l.PeerIP = net.IPv4(127, 0, 0, 1)
	}
	if l.Window <= 0 {
		l.Window = 8
	}
	res := Result{Allocations: l.Allocations, PacketSize: l.PacketSize}

	type pair struct {
		c    *Client
		peer *net.UDPConn
	}
	pairs := make([]pair, 0, l.Allocations)
	var peerWG sync.WaitGroup
	var peerRecv atomic.Uint64
	var measuring atomic.Bool
	defer func() {
		for _, p := range pairs {
			p.c.Refresh(0)
			p.c.Close()
			p.peer.Close()
		}
		peerWG.Wait()
	}()

	// Set up sequentially, timing each Allocate.
	for i := range l.Allocations {
		user, pass := l.Credentials(i)
		c, err := Dial("udp", l.Server, user, pass)
		if err != nil {
			return res, err
		}
		peer, err := net.ListenUDP("udp4", &net.UDPAddr{IP: l.PeerIP})
		if err != nil {
			c.Close()
			return res, err
		}
		pairs = append(pairs, pair{c, peer})
		start := time.Now()
		if _, err := c.Allocate(); err != nil {
			return res, fmt.Errorf("allocation %d: %w", i, err)
		}
		res.Setup = append(res.Setup, time.Since(start))
		if err := c.ChannelBind(0x4000, peer.LocalAddr().(*net.UDPAddr)); err != nil {
			return res, fmt.Errorf("allocation %d: %w", i, err)
		}
		peerWG.Add(1)
		go func() {
			defer peerWG.Done()
			echo(peer, &peerRecv, &measuring)
		}()
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var clientRecv atomic.Uint64
	var wg sync.WaitGroup
	var firstErr error
	var errOnce sync.Once
	for _, p := range pairs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := bounce(ctx, p.c, l.PacketSize, l.Window, &clientRecv, &measuring); err != nil {
				errOnce.Do(func() { firstErr = err; cancel() })
			}
		}()
	}

	sleep(ctx, l.Warmup)
	if l.Sample != nil {
		l.Sample()
	}
	start := time.Now()
	measuring.Store(true)
	if l.MaxRoundTrips > 0 {
		deadline := time.Now().Add(l.Duration)
		for clientRecv.Load() < l.MaxRoundTrips && time.Now().Before(deadline) && ctx.Err() == nil {
			time.Sleep(time.Millisecond)
		}
	} else {
		sleep(ctx, l.Duration)
	}
	measuring.Store(false)
	res.Elapsed = time.Since(start)
	if l.Sample != nil {
		l.Sample()
	}
	res.RoundTrips = clientRecv.Load()
	res.Relayed = res.RoundTrips + peerRecv.Load()
	cancel()
	wg.Wait()
	if firstErr != nil && !errors.Is(firstErr, context.Canceled) {
		return res, firstErr
	}
	return res, nil
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// echo sends every datagram back where it came from (the relay address).
func echo(c *net.UDPConn, recv *atomic.Uint64, measuring *atomic.Bool) {
	buf := make([]byte, 2048)
	for {
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		if measuring.Load() {
			recv.Add(1)
		}
		c.WriteToUDPAddrPort(buf[:n], from)
	}
}

// bounce keeps window packets in flight on c's channel; a lost packet's
// slot is refilled after a short silence.
func bounce(ctx context.Context, c *Client, size, window int, recv *atomic.Uint64, measuring *atomic.Bool) error {
	payload := make([]byte, size)
	for i := range payload {
		payload[i] = byte(i)
	}
	inflight := 0
	for ctx.Err() == nil {
		for ; inflight < window; inflight++ {
			if err := c.SendChannelData(0x4000, payload); err != nil {
				return err
			}
		}
		_, _, err := c.ReadChannelData(time.Now().Add(20 * time.Millisecond))
		var ne net.Error
		switch {
		case errors.As(err, &ne) && ne.Timeout():
			inflight = 0 // the window was lost: start over
		case err != nil:
			if ctx.Err() != nil {
				return nil
			}
			return err
		default:
			inflight--
			if measuring.Load() {
				recv.Add(1)
			}
		}
	}
	return nil
}

// Percentile returns the p-th percentile (0–100) of ds.
func Percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(float64(len(s)-1) * p / 100)
	return s[i]
}
