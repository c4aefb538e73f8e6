package signaling_test

import (
	"context"
	"encoding/json"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/salonhq/salon/sfu"
	"github.com/salonhq/salon/signaling"
)

// TestBrowserCall is a smoke test with the real client: headless Chromium
// pages running livekit-client join one call, publish camera and
// microphone (fake devices) and must decode each other's video. It runs
// when SALON_BROWSER_TEST=1, with LIVEKIT_CLIENT_UMD (path of
// livekit-client.umd.js) and NODE_PATH (node_modules holding
// playwright-core) set; Chromium at /usr/bin/chromium.
//
// It runs twice: with livekit-client's default, one peer connection
// through /rtc/v1, which must be served without a fallback to /rtc; and
// with singlePeerConnection off, two connections through /rtc.
func TestBrowserCall(t *testing.T) {
	if os.Getenv("SALON_BROWSER_TEST") == "" {
		t.Skip("set SALON_BROWSER_TEST=1, LIVEKIT_CLIENT_UMD and NODE_PATH")
	}
	for _, tc := range []struct {
		name, single, path, not string
	}{
		{"single peer connection", "1", "/livekit/sfu/rtc/v1", "/livekit/sfu/rtc"},
		{"two peer connections", "0", "/livekit/sfu/rtc", "/livekit/sfu/rtc/v1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			paths := browserCall(t, tc.single)
			if paths[tc.path] == 0 || paths[tc.not] != 0 {
				t.Fatalf("signal connections by path: %v; want %s only", paths, tc.path)
			}
		})
	}
}

// browserCall runs the call and returns how many signal WebSockets were
// opened on each path.
func browserCall(t *testing.T, single string) map[string]int {
	umd := os.Getenv("LIVEKIT_CLIENT_UMD")
	pages := 3
	udp, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s, err := sfu.New(sfu.Params{Config: sfu.Config{TCPPort: -1}, UDPConn: udp, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rtc := signaling.NewRTC(signaling.RTCParams{SFU: s, Keys: keys{testKey: testSecret}, Logger: testLogger()})
	defer rtc.Close()
	mux := http.NewServeMux()
	mux.Handle("/livekit/sfu/", http.StripPrefix("/livekit/sfu", rtc.Handler()))
	mux.HandleFunc("/lk.js", func(w http.ResponseWriter, r *http.Request) { http.ServeFile(w, r, umd) })
	mux.HandleFunc("/token", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(token(t, "browser-call", r.URL.Query().Get("identity"))))
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte(browserPage))
	})
	var mu sync.Mutex
	paths := map[string]int{}
	counted := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if websocket.IsWebSocketUpgrade(r) {
			mu.Lock()
			paths[r.URL.Path]++
			mu.Unlock()
		}
		mux.ServeHTTP(w, r)
	})
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: counted}
	srv.RegisterOnShutdown(rtc.Close)
	go func() { _ = srv.Serve(l) }()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}()

	dir := t.TempDir()
	script := filepath.Join(dir, "call.js")
	if err := os.WriteFile(script, []byte(browserDriver), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", script, "http://"+l.Addr().String(), itoa(pages), single)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	t.Logf("driver output:\n%s", out)
	if err != nil {
		t.Fatalf("driver: %v", err)
	}
	var res struct {
		OK    bool              `json:"ok"`
		Pages []json.RawMessage `json:"pages"`
	}
	line := out[strings.LastIndex(strings.TrimSpace(string(out)), "\n")+1:]
	if err := json.Unmarshal(line, &res); err != nil || !res.OK {
		t.Fatalf("not every page decoded every other page's video: %s (%v)", line, err)
	}
	mu.Lock()
	defer mu.Unlock()
	return maps.Clone(paths)
}

const browserPage = `<!doctype html><html><body><script src="/lk.js"></script><script>
window.state = {connected: false, error: null, events: []};
(async () => {
  const id = new URLSearchParams(location.search).get('id');
  const tok = await (await fetch('/token?identity=' + id)).text();
  const L = LivekitClient;
  const single = new URLSearchParams(location.search).get('single') !== '0';
  const room = new L.Room({adaptiveStream: true, dynacast: true, singlePeerConnection: single});
  window.state.t0 = performance.now();
  window.room = room;
  room.on(L.RoomEvent.TrackSubscribed, (track, pub, p) => {
    const el = track.attach();
    el.id = 'v-' + p.identity + '-' + track.kind;
    el.muted = true;
    if (track.kind === 'video') {
      el.width = 320; el.height = 240;
      // Join time: from connect() to the first decoded frame of each other page.
      if (el.requestVideoFrameCallback) el.requestVideoFrameCallback(() => {
        window.state.firstFrame = window.state.firstFrame || {};
        window.state.firstFrame[p.identity] = Math.round(performance.now() - window.state.t0);
      });
    }
    document.body.appendChild(el);
    window.state.events.push('subscribed ' + p.identity + ' ' + track.kind);
  });
  room.on(L.RoomEvent.Disconnected, (r) => window.state.events.push('disconnected ' + r));
  room.on(L.RoomEvent.TrackMuted, (pub, p) => window.state.events.push('muted ' + p.identity + ' ' + pub.kind));
  room.on(L.RoomEvent.DataReceived, (payload, p) => window.state.events.push('data ' + (p && p.identity) + ' ' + new TextDecoder().decode(payload)));
  room.on(L.RoomEvent.Reconnected, () => window.state.events.push('reconnected'));
  room.on(L.RoomEvent.ParticipantDisconnected, (p) => window.state.events.push('left ' + p.identity));
  room.on(L.RoomEvent.ActiveSpeakersChanged, (ps) => { for (const p of ps) window.state.events.push('speaking ' + p.identity); });
  await room.connect('ws://' + location.host + '/livekit/sfu', tok);
  window.state.connected = true;
  await room.localParticipant.enableCameraAndMicrophone();
  window.state.published = true;
})().catch(e => { window.state.error = String(e && e.stack || e); });
</script></body></html>`

const browserDriver = `
const { chromium } = require('playwright-core');
const base = process.argv[2], n = parseInt(process.argv[3]), single = process.argv[4] || '1';
(async () => {
  // Every page but one is in the background: without the last three flags
  // Chromium throttles its timers, and livekit-client answers the SFU's
  // requests for a new offer (single connection) on a timer.
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: [
    '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--use-fake-device-for-media-stream',
    '--use-fake-ui-for-media-stream', '--autoplay-policy=no-user-gesture-required', '--allow-loopback-in-peer-connection',
    '--disable-background-timer-throttling', '--disable-renderer-backgrounding', '--disable-backgrounding-occluded-windows'] });
  const ids = [...Array(n).keys()].map(i => 'p' + i);
  const pages = [];
  for (const id of ids) {
    const ctx = await browser.newContext({ permissions: ['camera', 'microphone'] });
    const page = await ctx.newPage();
    page.on('console', m => { if (m.type() === 'error' || m.type() === 'warning') console.error(id, m.type(), m.text()); });
    await page.goto(base + '/?id=' + id + '&single=' + single);
    pages.push({ id, page });
  }
  const deadline = Date.now() + 90000;
  let results;
  while (Date.now() < deadline) {
    results = [];
    for (const { id, page } of pages) {
      results.push(await page.evaluate((others) => {
        const seen = {};
        for (const o of others) {
          const v = document.getElementById('v-' + o + '-video');
          const q = v && v.getVideoPlaybackQuality ? v.getVideoPlaybackQuality() : null;
          seen[o] = v ? { w: v.videoWidth, frames: q ? q.totalVideoFrames : 0 } : null;
        }
        return { state: window.state, seen };
      }, ids.filter(x => x !== id)));
    }
    const ok = results.every(r => r.state.connected && Object.values(r.seen).every(s => s && s.w > 0 && s.frames > 0));
    if (ok || results.some(r => r.state.error)) break;
    await new Promise(r => setTimeout(r, 1000));
  }
  let ok = results.every(r => r.state.connected && Object.values(r.seen).every(s => s && s.w > 0 && s.frames > 0));
  // Then: p0 mutes its microphone and sends data; the last page leaves.
  const checks = {};
  if (ok) {
    await pages[0].page.evaluate(async () => {
      await window.room.localParticipant.setMicrophoneEnabled(false);
      await window.room.localParticipant.publishData(new TextEncoder().encode('hello'), { reliable: true });
    });
    const last = pages[pages.length - 1];
    await new Promise(r => setTimeout(r, 1500));
    await last.page.evaluate(() => window.room.disconnect());
    const want = { muted: 'muted p0 audio', data: 'data p0 hello', left: 'left ' + last.id };
    const until = Date.now() + 15000;
    while (Date.now() < until) {
      const evs = [];
      for (const { page } of pages.slice(1, -1)) evs.push(await page.evaluate(() => window.state.events));
      for (const [k, v] of Object.entries(want)) checks[k] = evs.every(e => e.includes(v));
      checks.speakers = evs.every(e => e.some(x => x.startsWith('speaking ')));
      if (Object.values(checks).every(Boolean)) break;
      await new Promise(r => setTimeout(r, 500));
    }
    // A network change on p1: the signal connection drops and resumes.
    const p1 = pages[1].page;
    const frames = () => p1.evaluate(() => document.getElementById('v-p0-video').getVideoPlaybackQuality().totalVideoFrames);
    await p1.evaluate(() => window.room.simulateScenario('signal-reconnect'));
    const until2 = Date.now() + 20000;
    while (Date.now() < until2 && !checks.resumed) {
      checks.resumed = (await p1.evaluate(() => window.state.events)).includes('reconnected');
      await new Promise(r => setTimeout(r, 500));
    }
    const f0 = await frames();
    await new Promise(r => setTimeout(r, 2000));
    checks.videoAfterResume = (await frames()) > f0;
    ok = Object.entries(checks).every(([k, v]) => v || k === 'speakers');
  }
  await browser.close();
  console.log(JSON.stringify({ ok, checks, pages: results }));
})().catch(e => { console.log(JSON.stringify({ ok: false, error: String(e) })); process.exit(1); });
`
