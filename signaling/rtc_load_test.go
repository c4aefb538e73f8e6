package signaling_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/livekit/protocol/auth"

	"github.com/salonhq/salon/sfu"
	"github.com/salonhq/salon/sfu/lktest"
	"github.com/salonhq/salon/signaling"
)

func TestMain(m *testing.M) {
	if os.Getenv("SALON_LOADTEST_SERVE") != "" {
		serveForLoad()
		return
	}
	os.Exit(m.Run())
}

// serveForLoad runs the SFU alone in this process (a child of the load
// test) so its CPU and memory are measured apart from the clients'. It
// prints its base URL and serves until stdin closes.
func serveForLoad() {
	udp, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	s, err := sfu.New(sfu.Params{Config: sfu.Config{MaxParticipants: 1000, TCPPort: -1}, UDPConn: udp, Logger: testLogger()})
	if err != nil {
		panic(err)
	}
	rtc := signaling.NewRTC(signaling.RTCParams{SFU: s, Keys: keys{testKey: testSecret}, Logger: testLogger()})
	mux := http.NewServeMux()
	mux.Handle("/livekit/sfu/", http.StripPrefix("/livekit/sfu", rtc.Handler()))
	mux.HandleFunc("/stats", func(w http.ResponseWriter, _ *http.Request) { _ = json.NewEncoder(w).Encode(s.Stats()) })
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	srv := &http.Server{Handler: mux}
	srv.RegisterOnShutdown(rtc.Close)
	go func() { _ = srv.Serve(l) }()
	if f := os.Getenv("SALON_LOADTEST_PROFILE"); f != "" {
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/heap", pprof.Handler("heap").ServeHTTP)
	}
	fmt.Printf("ADDR %s\n", l.Addr())
	_, _ = io.Copy(io.Discard, os.Stdin)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(ctx)
	_ = s.Close()
}

type proc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	addr  string
}

func (p *proc) cpu() time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond // USER_HZ = 100
}

func (p *proc) rssMiB() float64 {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			kb, _ := strconv.ParseFloat(strings.Fields(line)[1], 64)
			return kb / 1024
		}
	}
	return 0
}

func (p *proc) stats(t *testing.T) sfu.Stats {
	var st sfu.Stats
	res, err := http.Get("http://" + p.addr + "/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	_ = json.NewDecoder(res.Body).Decode(&st)
	return st
}

// TestLoad runs the benchmark scenarios (SALON_LOADTEST=audio,lecture,video
// or all) against an SFU in a child process, and reports server CPU,
// forwarded packets and Mbit/s, loss, join time and RSS.
func TestLoad(t *testing.T) {
	which := os.Getenv("SALON_LOADTEST")
	if which == "" {
		t.Skip("set SALON_LOADTEST=audio,lecture,video (or all)")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "SALON_LOADTEST_SERVE=1")
	cmd.Stderr = os.Stderr
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, stdin: stdin}
	defer func() {
		_ = stdin.Close()
		_ = cmd.Wait()
	}()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	p.addr = strings.TrimSpace(strings.TrimPrefix(line, "ADDR "))
	base := "ws://" + p.addr + "/livekit/sfu"
	mint := func(room, identity string) string {
		at := auth.NewAccessToken(testKey, testSecret)
		at.SetIdentity(identity).SetValidFor(time.Hour).SetVideoGrant(&auth.VideoGrant{RoomJoin: true, Room: room})
		j, _ := at.ToJWT()
		return j
	}
	for _, sc := range lktest.Scenarios {
		if which != "all" && !strings.Contains(","+which+",", ","+sc.Name+",") {
			continue
		}
		if d, err := time.ParseDuration(os.Getenv("SALON_LOADTEST_DURATION")); err == nil {
			sc.Duration = d
		}
		if os.Getenv("SALON_LOADTEST_PROFILE") != "" {
			go func() {
				time.Sleep(8 * time.Second)
				for _, kind := range []string{"profile?seconds=8", "heap"} {
					res, err := http.Get("http://" + p.addr + "/debug/pprof/" + kind)
					if err != nil {
						continue
					}
					f, _ := os.Create(fmt.Sprintf("/tmp/sfu-%s-%s.pprof", sc.Name, strings.SplitN(kind, "?", 2)[0]))
					_, _ = io.Copy(f, res.Body)
					f.Close()
					res.Body.Close()
				}
			}()
		}
		var cpu0, cpu1 time.Duration
		var st0, st1 sfu.Stats
		var rss float64
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		res, err := lktest.Run(ctx, base, mint, sc, func(start bool) {
			if start {
				cpu0, st0 = p.cpu(), p.stats(t)
				return
			}
			cpu1, st1, rss = p.cpu(), p.stats(t), p.rssMiB()
		})
		cancel()
		if err != nil {
			t.Fatalf("%s: %v", sc.Name, err)
		}
		cpu := (cpu1 - cpu0).Seconds()
		fwd := float64(st1.PacketsOut - st0.PacketsOut)
		win := res.Window.Seconds()
		t.Logf("%s", res)
		t.Logf("%s server: %.0f forwarded packets/s, %.1f Mbit/s out, %.0f packets/s in; CPU %.2f cores (%.0f%% of one); %.0f forwarded packets/s per core; %.1f µs CPU per forwarded packet; RSS %.0f MiB; %d participants",
			sc.Name, fwd/win, float64(st1.BytesOut-st0.BytesOut)*8/win/1e6, float64(st1.PacketsIn-st0.PacketsIn)/win,
			cpu/win, cpu/win*100, fwd/cpu, cpu/fwd*1e6, rss, st1.Participants)
		t.Logf("%s video tracks by active layers (0,1,2,3): %v", sc.Name, st1.VideoLayers)
		// Let the call empty before the next scenario.
		time.Sleep(2 * time.Second)
	}
}
