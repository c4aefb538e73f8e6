package signaling_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/salonhq/salon/sfu"
	"github.com/salonhq/salon/sfu/lktest"
)

// BenchmarkJoin measures a join as a participant sees it: from opening the
// signal connection to the first packet of a microphone already published
// in the call (audio: a video's first packet waits for a keyframe, and the
// SFU asks for one at most every sfu.keyframe_interval, which would time
// that instead), over /rtc (two peer connections: the SFU offers the subscriber
// connection after the join response) and /rtc/v1 (one connection,
// offered with the join request). One op is one join and leave; the
// figure of interest is ms/join.
func BenchmarkJoin(b *testing.B) {
	for _, tc := range []struct {
		name string
		opts lktest.Options
	}{
		{"rtc", lktest.Options{AutoSubscribe: true}},
		{"rtc-v1", lktest.Options{AutoSubscribe: true, SinglePeerConnection: true, GzipJoinRequest: true}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			s := startServer(b, sfu.Config{})
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			pub, err := lktest.Connect(ctx, s.base, token(b, "bench", "publisher"), lktest.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer pub.Close()
			audio, err := pub.PublishAudio(ctx, "mic", nil)
			if err != nil {
				b.Fatal(err)
			}
			defer audio.Stop()
			sid := audio.Info.Sid
			var total time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				tok := token(b, "bench", fmt.Sprintf("viewer-%d", i))
				start := time.Now()
				c, err := lktest.Connect(ctx, s.base, tok, tc.opts)
				if err != nil {
					b.Fatal(err)
				}
				if err := c.WaitPackets(ctx, "first audio packet", sid, 0); err != nil {
					b.Fatal(err)
				}
				total += time.Since(start)
				b.StopTimer()
				c.Leave()
				b.StartTimer()
			}
			b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms/join")
		})
	}
}
