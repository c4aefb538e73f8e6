package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/livekit/protocol/auth"

	"github.com/salonhq/salon/sfu/lktest"
	"github.com/salonhq/salon/signaling"
)

// cmdLoadtest is `salon loadtest`: the SFU benchmark. Pion clients that
// speak the LiveKit client protocol (sfu/lktest, which shares no code with
// the forwarding path) join calls on a running Salon's embedded SFU, play
// a scenario and report what they received; the server's side (CPU,
// forwarded packets, RSS) is read from its metrics listener
// (metrics.listen) before and after the media window, so the figures are
// the server process's own.
//
// Tokens are minted with the server's LiveKit API key (the keys file in its
// data directory), so the load tool needs no Matrix accounts: what is
// measured is the media plane.
//
// With --livekit-url it loads any LiveKit-protocol SFU instead (a stock
// LiveKit server, for side-by-side figures): tokens are minted with
// --api-key/--api-secret, and the server's CPU and memory are read from
// /proc/PID (--pid), the same way for either server. The figure compared
// is CPU per packet delivered to subscribers, counted by the clients.
func cmdLoadtest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("salon loadtest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	base := fs.String("url", "http://127.0.0.1:8008", "the Salon server (its SFU is at URL/livekit/sfu; loopback only)")
	metricsURL := fs.String("metrics", defaultMetricsURL, "the server's metrics listener (metrics.listen; loopback only)")
	dataDir := fs.String("data-dir", "./data", "the server's data directory (for its LiveKit keys)")
	keysFile := fs.String("keys", "", "the server's LiveKit keys file (default: DATA_DIR/livekit_keys)")
	which := fs.String("scenario", "all", "scenarios to run: audio, lecture, video (comma-separated) or all")
	dur := fs.Duration("duration", 20*time.Second, "media window of each scenario")
	rooms := fs.Int("rooms", 0, "calls of each scenario side by side (0: the scenario's own)")
	participants := fs.Int("participants", 0, "participants per call (0: the scenario's own; publishers are capped to it)")
	lkURL := fs.String("livekit-url", "", "load this LiveKit-protocol SFU (http://host:port, loopback only) instead of a Salon server")
	apiKey := fs.String("api-key", "", "with --livekit-url: the server's API key")
	apiSecret := fs.String("api-secret", "", "with --livekit-url: the server's API secret")
	pid := fs.Int("pid", 0, "the server's process: CPU and memory from /proc/PID (needed with --livekit-url)")
	label := fs.String("label", "", "name of the server in the RESULT lines (default salon or livekit)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return errUsage
	}
	*base = strings.TrimSuffix(*base, "/")
	*metricsURL = strings.TrimSuffix(*metricsURL, "/")
	*lkURL = strings.TrimSuffix(*lkURL, "/")
	if !loopbackURL(*base) || !loopbackURL(*metricsURL) || (*lkURL != "" && !loopbackURL(*lkURL)) {
		return errors.New("loadtest only loads servers on this machine's loopback")
	}
	scenarios, err := pickScenarios(*which)
	if err != nil {
		return err
	}
	var key, secret, ws string
	if *lkURL != "" {
		if *apiKey == "" || *apiSecret == "" {
			return errors.New("--livekit-url needs --api-key and --api-secret")
		}
		if *pid <= 0 {
			return errors.New("--livekit-url needs --pid (the server's CPU and memory come from /proc)")
		}
		key, secret = *apiKey, *apiSecret
		ws = "ws" + strings.TrimPrefix(*lkURL, "http")
		if *label == "" {
			*label = "livekit"
		}
	} else {
		path := *keysFile
		if path == "" {
			path = signaling.JWTConfig{}.KeysPath(*dataDir)
		}
		keys := &signaling.KeySet{}
		if err := keys.Reload(path); err != nil {
			return fmt.Errorf("the server's LiveKit keys: %w (start the server once, or pass --keys)", err)
		}
		key, secret = keys.Current()
		ws = "ws" + strings.TrimPrefix(*base, "http") + sfuPath
		if *label == "" {
			*label = "salon"
		}
	}
	mint := func(room, identity string) string {
		at := auth.NewAccessToken(key, secret)
		g := &auth.VideoGrant{RoomJoin: true, Room: room}
		g.SetCanPublish(true)
		g.SetCanSubscribe(true)
		g.SetCanPublishData(true)
		at.SetIdentity(identity).SetName(identity).SetValidFor(time.Hour).SetVideoGrant(g)
		j, _ := at.ToJWT()
		return j
	}
	say := func(f string, a ...any) { fmt.Fprintf(stdout, f+"\n", a...) }
	for i, sc := range scenarios {
		sc.Duration = *dur
		if *rooms > 0 {
			sc.Rooms = *rooms
		}
		if *participants > 0 {
			sc.Participants = *participants
			sc.AudioPublishers = min(sc.AudioPublishers, *participants)
			sc.Talking = min(sc.Talking, *participants)
			sc.VideoPublishers = min(sc.VideoPublishers, *participants)
			sc.LowViewers = min(sc.LowViewers, *participants/2)
		}
		if i > 0 {
			// Let the previous calls empty before the next scenario.
			time.Sleep(2 * time.Second)
		}
		var m0, m1 serverMetrics
		rctx, cancel := context.WithTimeout(ctx, 5*time.Minute+sc.Duration)
		res, err := lktest.Run(rctx, ws, mint, sc, func(start bool) {
			var m serverMetrics
			var err error
			if *lkURL == "" {
				m, err = scrapeServer(rctx, *metricsURL)
			}
			if err != nil {
				say("%s: reading the server's metrics: %v", sc.Name, err)
			}
			if *pid > 0 {
				// /proc, when given, is the one source of CPU and memory,
				// so both servers are read the same way.
				if m.cpuSeconds, m.rss, err = procUsage(*pid); err != nil {
					say("%s: reading the server's usage: %v", sc.Name, err)
				}
			}
			if start {
				m0 = m
			} else {
				m1 = m
			}
		})
		cancel()
		if err != nil {
			return fmt.Errorf("%s: %w", sc.Name, err)
		}
		say("%s", res)
		win := res.Window.Seconds()
		cpu := m1.cpuSeconds - m0.cpuSeconds
		if *lkURL == "" {
			fwd := m1.forwarded - m0.forwarded
			perCore, perPacket := 0.0, 0.0
			if cpu > 0 && fwd > 0 {
				perCore, perPacket = fwd/cpu, cpu/fwd*1e6
			}
			say("%s server: %.0f forwarded packets/s, %.1f Mbit/s out, %.0f packets/s in; CPU %.2f cores; %.0f forwarded packets/s per core; %.1f µs CPU per forwarded packet; RSS %.0f MiB",
				sc.Name, fwd/win, (m1.forwardedBytes-m0.forwardedBytes)*8/win/1e6, (m1.received-m0.received)/win,
				cpu/win, perCore, perPacket, m1.rss/(1<<20))
		}
		delivered := float64(res.PacketsReceived)
		perDelivered := 0.0
		if cpu > 0 && delivered > 0 {
			perDelivered = cpu / delivered * 1e6
		}
		// One line per scenario in a fixed form, for scripts/bench-sfu.sh.
		say("RESULT server=%s scenario=%s joined=%d delivered_pps=%.0f cpu_cores=%.3f cpu_us_per_delivered=%.2f rss_mib=%.0f loss_pct=%.3f seq_loss_pct=%.3f video_pkts=%d join_p95_ms=%d",
			*label, sc.Name, res.Joined, delivered/win, cpu/win, perDelivered, m1.rss/(1<<20), res.Loss*100, res.SeqLoss*100,
			res.LayerPackets[0]+res.LayerPackets[1]+res.LayerPackets[2], res.JoinP95.Milliseconds())
	}
	return nil
}

// procUsage reads a process's CPU time (user + system) and resident memory
// from /proc, for servers without Salon's metrics.
func procUsage(pid int) (cpuSeconds, rss float64, err error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// The command name (field 2) may hold spaces; fields count from the
	// last ')'.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 22 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	// utime and stime are fields 14 and 15 (here 11 and 12 after the
	// state), in clock ticks; USER_HZ is 100 on Linux.
	ut, err1 := strconv.ParseFloat(f[11], 64)
	st, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			rss = kb * 1024
		}
	}
	return (ut + st) / 100, rss, nil
}

// pickScenarios selects lktest's standard scenarios by name.
func pickScenarios(which string) ([]lktest.Scenario, error) {
	var out []lktest.Scenario
	want := map[string]bool{}
	for _, n := range strings.Split(which, ",") {
		if n = strings.TrimSpace(n); n != "" {
			want[n] = true
		}
	}
	for _, sc := range lktest.Scenarios {
		if want["all"] || want[sc.Name] {
			out = append(out, sc)
			delete(want, sc.Name)
		}
	}
	delete(want, "all")
	for n := range want {
		return nil, fmt.Errorf("unknown scenario %q (audio, lecture, video, churn or all)", n)
	}
	if len(out) == 0 {
		return nil, errors.New("no scenario chosen")
	}
	return out, nil
}

// loopbackURL reports whether base is an http URL on a loopback IP (or
// localhost): the load tools never aim at someone else's server.
func loopbackURL(base string) bool {
	u, err := url.Parse(base)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return false
	}
	if u.Hostname() == "localhost" {
		return true
	}
	port := u.Port()
	if port == "" {
		port = "80"
	}
	return loopbackHostPort(net.JoinHostPort(u.Hostname(), port))
}

// serverMetrics are the counters the load tool reads from the server.
type serverMetrics struct {
	cpuSeconds, rss                     float64
	forwarded, forwardedBytes, received float64
}

// scrapeServer reads the SFU counters and the process's CPU and memory from
// the server's Prometheus endpoint.
func scrapeServer(ctx context.Context, base string) (serverMetrics, error) {
	m, err := scrapeMetrics(ctx, http.DefaultClient, base, "process_cpu_seconds_total", "process_resident_memory_bytes",
		"salon_sfu_rtp_packets_forwarded_total", "salon_sfu_rtp_bytes_forwarded_total", "salon_sfu_rtp_packets_received_total")
	return serverMetrics{
		cpuSeconds: m["process_cpu_seconds_total"], rss: m["process_resident_memory_bytes"],
		forwarded: m["salon_sfu_rtp_packets_forwarded_total"], forwardedBytes: m["salon_sfu_rtp_bytes_forwarded_total"],
		received: m["salon_sfu_rtp_packets_received_total"],
	}, err
}

// defaultMetricsURL is where a server with the default metrics.listen
// serves its metrics.
const defaultMetricsURL = "http://127.0.0.1:9105"

// scrapeMetrics reads the named unlabelled samples from base/metrics, the
// server's metrics listener (Prometheus text format); missing ones are
// absent from the map.
func scrapeMetrics(ctx context.Context, hc *http.Client, base string, names ...string) (map[string]float64, error) {
	out := map[string]float64{}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return out, err
	}
	res, err := hc.Do(req)
	if err != nil {
		return out, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return out, fmt.Errorf("GET /metrics: %s", res.Status)
	}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		if !ok || !slices.Contains(names, name) {
			continue
		}
		if v, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err == nil {
			out[name] = v
		}
	}
	return out, sc.Err()
}
