package signaling_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/pion/webrtc/v3"

	"github.com/salonhq/salon/sfu"
	"github.com/salonhq/salon/sfu/lktest"
)

// A client whose address reaches the SFU only through its connectivity
// checks (its trickled candidate never comes: on loopback the check
// overtook the candidate in about one join in ten) is connected without
// pion's one-second wait before a controlling agent nominates a
// peer-reflexive pair. That wait is a lower bound: with it, no such join
// took less than a second. One attempt in three under 900 ms passes, so a
// busy machine does not fail the test; the wait never would.
func TestJoinOnPeerReflexiveCandidate(t *testing.T) {
	s := startServer(t, sfu.Config{})
	var took []time.Duration
	for i := range 3 {
		ctx := ctxT(t, 15*time.Second)
		start := time.Now()
		c, err := lktest.Connect(ctx, s.base, token(t, "call", fmt.Sprintf("p%d", i)), lktest.Options{AutoSubscribe: true, NoTrickle: true})
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
		err = c.WaitFor(ctx, "subscriber connected", func() bool { return c.SubscriberState() == webrtc.PeerConnectionStateConnected })
		d := time.Since(start)
		c.Close()
		if err != nil {
			t.Fatalf("without trickled candidates: %v", err)
		}
		if d < 900*time.Millisecond {
			return
		}
		took = append(took, d)
	}
	t.Fatalf("joins on a peer-reflexive candidate took %v: the SFU waited before nominating", took)
}
