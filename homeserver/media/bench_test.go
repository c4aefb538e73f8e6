package media

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"fmt"
	"image"
	"image/jpeg"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// photo12MP is a 4000×3000 JPEG with texture (gradients and noise), like
// a phone photo as far as the decoder is concerned.
func photo12MP(tb testing.TB) []byte {
	const w, h = 4000, 3000
	m := image.NewYCbCr(image.Rect(0, 0, w, h), image.YCbCrSubsampleRatio420)
	rng := rand.New(rand.NewPCG(1, 2))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			m.Y[y*m.YStride+x] = uint8((x*255/w+y*255/h)/2 + rng.IntN(24))
		}
	}
	for i := range m.Cb {
		m.Cb[i] = uint8(100 + rng.IntN(16))
		m.Cr[i] = uint8(140 + rng.IntN(16))
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, m, &jpeg.Options{Quality: 90}); err != nil {
		tb.Fatal(err)
	}
	return b.Bytes()
}

// BenchmarkThumbnail12MP measures thumbnail requests over HTTP for a
// 12-megapixel JPEG: served from the cache, and generated every time
// (decode, scale, encode, store).
func BenchmarkThumbnail12MP(b *testing.B) {
	e := newEnv(b)
	id := e.upload(alice, "image/jpeg", "photo.jpg", photo12MP(b))
	path := thumbPath(id, 320, 240, "scale")
	get := func() error {
		req, _ := newRequest(e, path)
		resp, err := e.srv.Client().Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			return err
		}
		if resp.StatusCode != 200 {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	}
	b.Run("cached", func(b *testing.B) {
		if err := get(); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		start, cpu0 := time.Now(), cpuTime()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := get(); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
		b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/req")
	})
	b.Run("uncached", func(b *testing.B) {
		e.repo.noThumbCache.Store(true)
		defer e.repo.noThumbCache.Store(false)
		b.ResetTimer()
		start, cpu0 := time.Now(), cpuTime()
		for i := 0; i < b.N; i++ {
			if err := get(); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
		b.ReportMetric(float64((cpuTime()-cpu0).Milliseconds())/float64(b.N), "cpu-ms/req")
	})
}

// BenchmarkThumbnailHostile requests every default thumbnail size of the
// two images of issue #13 over HTTP (a 244 KB 5600×5600 16-bit PNG and a
// truncated PNG declaring 5000×5000) and reports, besides B/op and
// allocs/op, the most heap seen in use while serving them, above the
// level before (sampled every millisecond).
func BenchmarkThumbnailHostile(b *testing.B) {
	for _, tc := range []struct {
		name string
		data []byte
	}{{"png16-5600x5600", hostilePNG16(b)}, {"truncated-5000x5000", truncatedPNG()}} {
		b.Run(tc.name, func(b *testing.B) {
			e := newEnv(b)
			id := e.upload(alice, "image/png", "", tc.data)
			paths := []string{}
			for _, s := range DefaultThumbnailSizes() {
				paths = append(paths, thumbPath(id, s.Width, s.Height, s.Method))
			}
			get := func(path string) {
				req, _ := newRequest(e, path)
				resp, err := e.srv.Client().Do(req)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			get(paths[0]) // warm the connection
			runtime.GC()
			peak := sampleHeap()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				for _, p := range paths {
					get(p)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(peak())/1e6, "peak-heap-MB")
		})
	}
}

// sampleHeap watches the heap in use until the returned function is
// called, which returns its peak above the level when watching began.
func sampleHeap() func() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() uint64 { metrics.Read(s); return s[0].Value.Uint64() }
	base := read()
	var peak atomic.Uint64
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			if v := read(); v > base && v-base > peak.Load() {
				peak.Store(v - base)
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	return func() uint64 {
		close(stop)
		<-done
		return peak.Load()
	}
}

// cpuTime is the CPU time this process (client and server) has used: on
// a shared machine it is steadier than the wall clock.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestBigFile uploads and downloads 1 GiB over loopback to a separate
// server process (internal/benchserver) and reports the throughput and the
// server's peak RSS above idle. It runs only with SALON_BENCH_MEDIA=1
// (scripts/bench-media.sh): it is a benchmark, not a test.
func TestBigFile(t *testing.T) {
	if os.Getenv("SALON_BENCH_MEDIA") != "1" {
		t.Skip("set SALON_BENCH_MEDIA=1 (scripts/bench-media.sh)")
	}
	size := int64(1 << 30)
	if s := os.Getenv("SALON_BENCH_MEDIA_BYTES"); s != "" {
		size, _ = strconv.ParseInt(s, 10, 64)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "benchserver")
	build := exec.Command("go", "build", "-o", bin, "./internal/benchserver")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-dir", filepath.Join(dir, "data"))
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stdin.Close() // the server exits when its stdin closes
		_ = cmd.Wait()
	}()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + strings.TrimSpace(strings.TrimPrefix(line, "listening on "))
	pid := cmd.Process.Pid

	time.Sleep(500 * time.Millisecond)
	idle := procStatus(t, pid, "VmRSS")

	// Sample the resident set while transferring.
	var mu sync.Mutex
	peak := idle
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if v, err := readStatus(pid, "VmRSS"); err == nil {
					mu.Lock()
					peak = max(peak, v)
					mu.Unlock()
				}
			}
		}
	}()

	client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	defer client.CloseIdleConnections()
	src := rand.NewChaCha8([32]byte{1})
	h := sha256.New()
	body := io.TeeReader(io.LimitReader(src, size), h)
	req, _ := http.NewRequest("POST", base+"/_matrix/media/v3/upload?filename=big.bin", body)
	req.ContentLength = size
	req.Header.Set("Authorization", "Bearer bench")
	req.Header.Set("Content-Type", "application/octet-stream")
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	up := time.Since(start)
	if resp.StatusCode != 200 {
		t.Fatalf("upload: %d %s", resp.StatusCode, answer)
	}
	_, id, _ := parseMXC(strings.Trim(strings.TrimPrefix(string(answer), `{"content_uri":`), "\"}"))
	want := h.Sum(nil)

	req, _ = http.NewRequest("GET", base+"/_matrix/client/v1/media/download/bench/"+id, nil)
	req.Header.Set("Authorization", "Bearer bench")
	start = time.Now()
	resp, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	h.Reset()
	n, err := io.Copy(h, resp.Body)
	resp.Body.Close()
	down := time.Since(start)
	if err != nil || n != size || !bytes.Equal(h.Sum(nil), want) {
		t.Fatalf("download: %d bytes, %v, hash match %v", n, err, bytes.Equal(h.Sum(nil), want))
	}
	close(stop)
	<-sampled
	hwm := procStatus(t, pid, "VmHWM")
	mib := float64(size) / (1 << 20)
	mb := float64(size) / 1e6
	fmt.Printf("bench media: %d cores (GOMAXPROCS %d), %.0f MiB over loopback to a separate server process, sha256 checked by the client\n",
		runtime.NumCPU(), runtime.GOMAXPROCS(0), mib)
	fmt.Printf("bench media: upload   %.0f MB/s (%.0f MiB/s, %.1f s)\n", mb/up.Seconds(), mib/up.Seconds(), up.Seconds())
	fmt.Printf("bench media: download %.0f MB/s (%.0f MiB/s, %.1f s)\n", mb/down.Seconds(), mib/down.Seconds(), down.Seconds())
	fmt.Printf("bench media: server RSS idle %.1f MiB, sampled peak %.1f MiB (+%.1f), VmHWM %.1f MiB (+%.1f above idle)\n",
		float64(idle)/1024, float64(peak)/1024, float64(peak-idle)/1024, float64(hwm)/1024, float64(hwm-idle)/1024)
	if hwm-idle > 64<<10 {
		t.Errorf("server peak RSS %.1f MiB above idle, target < 64 MiB", float64(hwm-idle)/1024)
	}
}

// readStatus reads a kB field of /proc/PID/status.
func readStatus(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

func procStatus(t *testing.T, pid int, field string) int64 {
	v, err := readStatus(pid, field)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
