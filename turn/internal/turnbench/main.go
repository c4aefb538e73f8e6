// Command turnbench runs Salon's TURN relay on its own for benchmarks and
// drives the same load against it or against coturn (see
// scripts/bench-turn.sh). Traffic goes to 127.0.0.1 only.
//
//	turnbench serve -udp 127.0.0.1:3478 -secret S -realm R
//	turnbench load  -server 127.0.0.1:3478 -pid PID -label salon -secret S -realm R -out results.jsonl
//	turnbench report results.jsonl
package main

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/salonhq/salon/internal/redact"
	"github.com/salonhq/salon/turn"
	"github.com/salonhq/salon/turn/credential"
	"github.com/salonhq/salon/turn/internal/turnload"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: turnbench serve|load|report [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(os.Args[2:])
	case "load":
		err = load(os.Args[2:])
	case "report":
		err = report(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "turnbench:", err)
		os.Exit(1)
	}
}

func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	udp := fs.String("udp", "127.0.0.1:3478", "UDP listen address")
	secret := fs.String("secret", "", "shared secret")
	realm := fs.String("realm", "bench", "realm")
	ports := fs.String("relay-ports", "49152-65535", "relay port range")
	sockets := fs.Int("udp-sockets", 0, "UDP sockets (0: default)")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile here")
	fs.Parse(args)
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	lo, hi, ok := strings.Cut(*ports, "-")
	if !ok {
		return errors.New("-relay-ports wants MIN-MAX")
	}
	cfg := turn.Defaults()
	cfg.ListenUDP, cfg.ListenTCP = *udp, turn.Off
	cfg.Realm, cfg.SharedSecret = *realm, redact.Secret(*secret)
	cfg.RelayPortMin, _ = strconv.Atoi(lo)
	cfg.RelayPortMax, _ = strconv.Atoi(hi)
	cfg.UDPSockets = *sockets
	cfg.AllowPeers = []string{"127.0.0.0/8"}
	// coturn's defaults: no caps.
	cfg.MaxAllocationsPerUser, cfg.AllocationBytesPerSecond, cfg.TotalBytesPerSecond = -1, -1, -1
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	s, err := turn.New(turn.Params{Config: cfg, Logger: log})
	if err != nil {
		return err
	}
	fmt.Println("ready")
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	return s.Close()
}

// Record is one measured run, one JSON line.
type Record struct {
	Label       string  `json:"label"`
	Allocations int     `json:"allocations"`
	PacketSize  int     `json:"packet_size"`
	Seconds     float64 `json:"seconds"`
	Relayed     uint64  `json:"relayed_packets"`
	PPS         float64 `json:"pps"`
	Mbps        float64 `json:"mbps"`
	CPUSeconds  float64 `json:"server_cpu_seconds"`
	CPUPerPktUS float64 `json:"server_cpu_us_per_packet"`
	SetupP50US  float64 `json:"setup_p50_us"`
	SetupP99US  float64 `json:"setup_p99_us"`
	Setups      int     `json:"setups"`
}

func load(args []string) error {
	fs := flag.NewFlagSet("load", flag.ExitOnError)
	server := fs.String("server", "127.0.0.1:3478", "TURN server (UDP)")
	pid := fs.Int("pid", 0, "server process, for CPU time")
	label := fs.String("label", "salon", "name in the results")
	secret := fs.String("secret", "", "shared secret")
	realm := fs.String("realm", "bench", "realm (informational; the server's 401 names it)")
	allocs := fs.String("allocations", "1,10,100", "concurrent allocations, comma-separated")
	size := fs.Int("size", 1200, "payload bytes")
	window := fs.Int("window", 8, "packets in flight per allocation")
	duration := fs.Duration("duration", 10*time.Second, "measured time per run")
	warmup := fs.Duration("warmup", time.Second, "unmeasured time before")
	setups := fs.Int("setups", 0, "also time this many sequential allocate/delete cycles")
	out := fs.String("out", "", "append JSON lines here")
	fs.Parse(args)
	_ = realm

	creds := func(i int) (string, string) {
		return credential.Generate([]byte(*secret), fmt.Sprintf("@bench%d:%s", i, *realm), time.Hour, time.Now())
	}
	var records []Record
	for _, field := range strings.Split(*allocs, ",") {
		if strings.TrimSpace(field) == "" {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSpace(field))
		if err != nil {
			return err
		}
		var cpu [2]time.Duration
		samples := 0
		res, err := turnload.Run(context.Background(), turnload.Load{
			Server: *server, Credentials: creds, Allocations: n, PacketSize: *size,
			Window: *window, Warmup: *warmup, Duration: *duration,
			Sample: func() {
				if *pid > 0 && samples < 2 {
					cpu[samples], _ = processCPU(*pid)
				}
				samples++
			},
		})
		if err != nil {
			return fmt.Errorf("%s, %d allocations: %w", *label, n, err)
		}
		r := Record{
			Label: *label, Allocations: n, PacketSize: *size, Seconds: res.Elapsed.Seconds(),
			Relayed: res.Relayed, PPS: res.PPS(), Mbps: res.Mbps(),
			CPUSeconds: (cpu[1] - cpu[0]).Seconds(),
			SetupP50US: us(turnload.Percentile(res.Setup, 50)),
			SetupP99US: us(turnload.Percentile(res.Setup, 99)),
			Setups:     len(res.Setup),
		}
		if res.Relayed > 0 {
			r.CPUPerPktUS = r.CPUSeconds * 1e6 / float64(res.Relayed)
		}
		records = append(records, r)
		fmt.Printf("%-7s allocs=%-4d pps=%-9.0f Mbit/s=%-7.1f cpu=%.2fs cpu/pkt=%.2fµs setup p50=%.0fµs p99=%.0fµs\n",
			r.Label, n, r.PPS, r.Mbps, r.CPUSeconds, r.CPUPerPktUS, r.SetupP50US, r.SetupP99US)
	}
	if *setups > 0 {
		var ds []time.Duration
		var open []*turnload.Client // distinct client ports: coturn keeps a deleted 5-tuple busy for a while
		defer func() {
			for _, c := range open {
				c.Close()
			}
		}()
		for i := 0; len(ds) < *setups; i++ {
			u, p := creds(i)
			c, err := turnload.Dial("udp", *server, u, p)
			if err != nil {
				return err
			}
			open = append(open, c)
			start := time.Now()
			_, err = c.Allocate()
			elapsed := time.Since(start)
			var er *turnload.ErrorResponse
			if errors.As(err, &er) && er.Code == 437 && i < 2**setups {
				// The OS handed out a client port whose earlier allocation
				// the server still holds (coturn keeps deleted ones for a
				// while); the socket stays open so the port is not reused.
				continue
			}
			if err == nil {
				err = c.Refresh(0)
			}
			if err != nil {
				return fmt.Errorf("setup %d: %w", i, err)
			}
			ds = append(ds, elapsed)
		}
		r := Record{Label: *label, Setups: len(ds),
			SetupP50US: us(turnload.Percentile(ds, 50)), SetupP99US: us(turnload.Percentile(ds, 99))}
		records = append(records, r)
		fmt.Printf("%-7s sequential setups=%d p50=%.0fµs p99=%.0fµs\n", r.Label, r.Setups, r.SetupP50US, r.SetupP99US)
	}
	if *out != "" {
		f, err := os.OpenFile(*out, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		defer f.Close()
		enc := json.NewEncoder(f)
		for _, r := range records {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
	}
	return nil
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// processCPU is utime+stime of pid (all threads) from /proc/PID/stat.
func processCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the parenthesised command name; utime and stime are
	// fields 14 and 15 (1-based), in clock ticks (USER_HZ, 100 on Linux).
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("bad /proc stat")
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * (time.Second / 100), nil
}

func report(args []string) error {
	if len(args) != 1 {
		return errors.New("usage: turnbench report results.jsonl")
	}
	f, err := os.Open(args[0])
	if err != nil {
		return err
	}
	defer f.Close()
	type key struct {
		label  string
		allocs int
	}
	all := map[key][]Record{}
	setups := map[string][]Record{}
	var order []int
	seen := map[int]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return err
		}
		if r.Allocations == 0 {
			setups[r.Label] = append(setups[r.Label], r)
			continue
		}
		k := key{r.Label, r.Allocations}
		all[k] = append(all[k], r)
		if !seen[r.Allocations] {
			seen[r.Allocations] = true
			order = append(order, r.Allocations)
		}
	}
	// With several rounds, each cell is the round with the median rate.
	runs := map[key]Record{}
	rounds := 0
	for k, rs := range all {
		slices.SortFunc(rs, func(a, b Record) int { return cmp.Compare(a.PPS, b.PPS) })
		runs[k] = rs[len(rs)/2]
		rounds = max(rounds, len(rs))
	}
	medianSetup := func(l string) (Record, bool) {
		rs := setups[l]
		if len(rs) == 0 {
			return Record{}, false
		}
		slices.SortFunc(rs, func(a, b Record) int { return cmp.Compare(a.SetupP50US, b.SetupP50US) })
		return rs[len(rs)/2], true
	}
	fmt.Printf("Median of %d round(s) per cell.\n\n", rounds)
	ratio := func(a, b float64) string {
		if b == 0 {
			return "–"
		}
		return fmt.Sprintf("%.2f", a/b)
	}
	fmt.Println("| allocations | server | relayed pkt/s | Mbit/s | server CPU µs/pkt | setup p50 µs (concurrent run) |")
	fmt.Println("|---:|---|---:|---:|---:|---:|")
	for _, n := range order {
		for _, l := range []string{"salon", "coturn"} {
			r, ok := runs[key{l, n}]
			if !ok {
				continue
			}
			fmt.Printf("| %d | %s | %.0f | %.1f | %.2f | %.0f |\n", n, l, r.PPS, r.Mbps, r.CPUPerPktUS, r.SetupP50US)
		}
		s, c := runs[key{"salon", n}], runs[key{"coturn", n}]
		fmt.Printf("| %d | **Salon/coturn** | **%s** | **%s** | **%s** | **%s** |\n", n,
			ratio(s.PPS, c.PPS), ratio(s.Mbps, c.Mbps), ratio(s.CPUPerPktUS, c.CPUPerPktUS), ratio(s.SetupP50US, c.SetupP50US))
	}
	if len(setups) > 0 {
		fmt.Println()
		fmt.Println("| sequential allocation setup (Allocate incl. 401 challenge) | p50 µs | p99 µs |")
		fmt.Println("|---|---:|---:|")
		for _, l := range []string{"salon", "coturn"} {
			if r, ok := medianSetup(l); ok {
				fmt.Printf("| %s (%d setups) | %.0f | %.0f |\n", l, r.Setups, r.SetupP50US, r.SetupP99US)
			}
		}
		s, _ := medianSetup("salon")
		c, _ := medianSetup("coturn")
		fmt.Printf("| **Salon/coturn** | **%s** | **%s** |\n", ratio(s.SetupP50US, c.SetupP50US), ratio(s.SetupP99US, c.SetupP99US))
	}
	return sc.Err()
}
