package signaling_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/salonhq/salon/sfu"
	"github.com/salonhq/salon/sfu/lktest"
)

// TestOnRTPSeesForwardedPackets: lktest's OnRTP hook (what
// web/internal/sfuprobe records through) sees every packet the SFU
// forwards on a subscribed track, whole and parseable as RTP.
func TestOnRTPSeesForwardedPackets(t *testing.T) {
	s := startServer(t, sfu.Config{})
	a := connect(t, s, "call", "alice")
	var seen, bad atomic.Uint64
	onRTP := func(rt *lktest.RemoteTrack, pkt []byte) {
		var p rtp.Packet
		if !strings.EqualFold(rt.Mime, "video/VP8") {
			return
		}
		if p.Unmarshal(pkt) != nil || len(p.Payload) == 0 {
			bad.Add(1)
			return
		}
		seen.Add(1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := lktest.Connect(ctx, s.base, token(t, "call", "bob"), lktest.Options{AutoSubscribe: true, OnRTP: onRTP})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)

	ctx = ctxT(t, 30*time.Second)
	video, err := a.PublishVideo(ctx, "cam", lktest.DefaultSimulcast)
	if err != nil {
		t.Fatal(err)
	}
	var vt *lktest.RemoteTrack
	if err := b.WaitFor(ctx, "video on B", func() bool {
		vt = b.Track(video.Info.Sid)
		return vt != nil && vt.Packets.Load() > 20
	}); err != nil {
		t.Fatal(err)
	}
	b.Close() // readers ended: counts are final
	if got, want := seen.Load(), vt.Packets.Load(); got != want || bad.Load() != 0 {
		t.Fatalf("OnRTP saw %d packets (%d unparseable), the track counted %d", got, bad.Load(), want)
	}
}
