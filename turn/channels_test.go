package turn

import (
	"bytes"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/salonhq/salon/turn/internal/turnload"
)

// echoRound sends payload on ch and reports whether it came back on ch
// within wait.
func echoRound(t *testing.T, c *turnload.Client, ch uint16, payload []byte, wait time.Duration) bool {
	t.Helper()
	if err := c.SendChannelData(ch, payload); err != nil {
		t.Fatal(err)
	}
	for {
		got, data, err := c.ReadChannelData(time.Now().Add(wait))
		if err != nil {
			return false
		}
		if got == ch && bytes.Equal(data, payload) {
			return true
		}
	}
}

// fastCounts sums the packets the fast path relayed over the live
// allocations, each way.
func fastCounts(ts *testServer) (up, down uint64) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	for r := range ts.relays {
		up += r.fast[clientToPeer].Load()
		down += r.fast[peerToClient].Load()
	}
	return up, down
}

// onlyRelay is the server's one live allocation.
func onlyRelay(t *testing.T, ts *testServer) *relayConn {
	t.Helper()
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if len(ts.relays) != 1 {
		t.Fatalf("%d allocations, want 1", len(ts.relays))
	}
	for r := range ts.relays {
		return r
	}
	return nil
}

// Bound ChannelData goes both ways on the fast path, byte for byte, with
// the relay's counters as on pion's path; Send indications and ChannelData
// on a channel never bound are pion's (the first relayed, the second not).
func TestChannelFastPath(t *testing.T) {
	ts := startServer(t, testConfig("127.0.0.0/8"), nil)
	peer := echoPeer(t)
	c := ts.boundClient(t, "@alice:test.example", 0x4001, peer)
	for i := range 50 {
		payload := []byte(fmt.Sprintf("frame %d %s", i, bytes.Repeat([]byte{byte(i)}, i*20)))
		if !echoRound(t, c, 0x4001, payload, 2*time.Second) {
			t.Fatalf("frame %d did not come back", i)
		}
	}
	up, down := fastCounts(ts)
	if up != 50 || down != 50 {
		t.Fatalf("fast path relayed %d up, %d down; want 50 each", up, down)
	}
	// The traffic counters count a packet once it has left, so the last
	// echo may come back before its count.
	for _, dir := range []string{"client_to_peer", "peer_to_client"} {
		waitFor(t, "relayed_packets_total{"+dir+"} = 50", func() bool {
			return ts.metric(t, "salon_turn_relayed_packets_total", "direction", dir) == 50
		})
	}

	// A channel never bound: nothing reaches the peer (pion drops it).
	if echoRound(t, c, 0x4002, []byte("unbound"), 200*time.Millisecond) {
		t.Fatal("ChannelData on an unbound channel was relayed")
	}
	// A Send indication is pion's; its answer comes back on the channel.
	if err := c.SendIndication(peer, []byte("indication")); err != nil {
		t.Fatal(err)
	}
	if _, data, err := c.ReadChannelData(time.Now().Add(2 * time.Second)); err != nil || string(data) != "indication" {
		t.Fatalf("echo of a Send indication: %q, %v", data, err)
	}
	if up2, down2 := fastCounts(ts); up2 != up || down2 != down+1 {
		t.Fatalf("after a Send indication: fast %d up, %d down; want %d, %d", up2, down2, up, down+1)
	}

	// Deleting the allocation ends the fast path with it.
	sess := onlyRelay(t, ts).sess
	if err := c.Refresh(0); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the allocation to go", func() bool { return ts.AllocationCount() == 0 })
	if echoRound(t, c, 0x4001, []byte("after delete"), 200*time.Millisecond) {
		t.Fatal("ChannelData relayed after the allocation was deleted")
	}
	sess.fastMu.RLock()
	n := len(sess.fast)
	sess.fastMu.RUnlock()
	if n != 0 {
		t.Fatalf("%d allocations left on the fast path", n)
	}
}

// A binding ends on the fast path before it ends in pion, and a refresh
// brings it back; once pion's has ended too nothing is relayed.
func TestChannelFastPathExpiry(t *testing.T) {
	udp, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	const life = 2400 * time.Millisecond // the fast path's ends 300 ms earlier
	s, err := New(Params{Config: testConfig("127.0.0.0/8"), Logger: testLogger(), Registerer: prometheus.NewRegistry(),
		UDPConn: udp, channelLifetime: life})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ts := &testServer{Server: s, udpAddr: udp.LocalAddr().String()}
	peer := echoPeer(t)
	c := ts.boundClient(t, "@alice:test.example", 0x4000, peer)
	bound := time.Now()
	if !echoRound(t, c, 0x4000, []byte("fresh"), time.Second) {
		t.Fatal("no echo on a fresh binding")
	}
	if up, _ := fastCounts(ts); up != 1 {
		t.Fatalf("fresh binding: %d packets on the fast path, want 1", up)
	}

	// Between the two ends: pion still relays, the fast path does not.
	// (On a machine too slow to send within the binding's last 300 ms,
	// pion's has ended too and only the second part is checked.)
	time.Sleep(time.Until(bound.Add(life - channelMargin(life) + 50*time.Millisecond)))
	if !echoRound(t, c, 0x4000, []byte("late"), 100*time.Millisecond) && time.Since(bound) < life {
		t.Fatal("no echo while pion's binding lasts")
	}
	if up, _ := fastCounts(ts); up != 1 {
		t.Fatalf("a binding past the fast path's end was relayed on it (%d)", up)
	}

	// A refresh (the same ChannelBind again) brings the fast path back.
	if err := c.ChannelBind(0x4000, peer); err != nil {
		t.Fatal(err)
	}
	if !echoRound(t, c, 0x4000, []byte("refreshed"), time.Second) {
		t.Fatal("no echo after a refresh")
	}
	if up, _ := fastCounts(ts); up != 2 {
		t.Fatalf("after a refresh: %d packets on the fast path, want 2", up)
	}

	// Past pion's end nothing is relayed.
	time.Sleep(life + 300*time.Millisecond)
	if echoRound(t, c, 0x4000, []byte("expired"), 200*time.Millisecond) {
		t.Fatal("ChannelData relayed on an expired binding")
	}
}

// A ChannelBind the relay refuses (a peer outside allow_peers) leaves
// nothing on the fast path, and a client cannot use another client's
// binding.
func TestChannelFastPathRefusedAndForeign(t *testing.T) {
	ts := startServer(t, testConfig("127.0.0.0/8"), nil)
	peer := echoPeer(t)
	alice := ts.rawClient(t, "udp", "@alice:test.example")
	if _, err := alice.Allocate(); err != nil {
		t.Fatal(err)
	}
	if err := alice.ChannelBind(0x4000, &net.UDPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 9}); err == nil {
		t.Fatal("ChannelBind to a refused peer succeeded")
	}
	if echoRound(t, alice, 0x4000, []byte("refused"), 200*time.Millisecond) {
		t.Fatal("relayed on a refused channel")
	}
	if err := alice.ChannelBind(0x4000, peer); err != nil {
		t.Fatal(err)
	}
	bob := ts.rawClient(t, "udp", "@bob:test.example")
	if _, err := bob.Allocate(); err != nil {
		t.Fatal(err)
	}
	if echoRound(t, bob, 0x4000, []byte("bob on alice's channel"), 200*time.Millisecond) {
		t.Fatal("one client's ChannelData used another's binding")
	}
	if !echoRound(t, alice, 0x4000, []byte("alice"), time.Second) {
		t.Fatal("no echo for alice")
	}
	if up, down := fastCounts(ts); up != 1 || down != 1 {
		t.Fatalf("fast path: %d up, %d down; want 1 each (alice's)", up, down)
	}
}

func TestParseChannelData(t *testing.T) {
	tests := []struct {
		in   []byte
		num  uint16
		data string
		ok   bool
	}{
		{[]byte{0x40, 0x00, 0x00, 0x02, 'h', 'i'}, 0x4000, "hi", true},
		{[]byte{0x7f, 0xff, 0x00, 0x01, 'x', 0, 0, 0}, 0x7fff, "x", true}, // padded
		{[]byte{0x40, 0x00, 0x00, 0x00}, 0x4000, "", true},
		{[]byte{0x40, 0x00, 0x00, 0x03, 'h', 'i'}, 0, "", false}, // longer than the datagram
		{[]byte{0x3f, 0xff, 0x00, 0x00}, 0, "", false},           // not a channel number
		{[]byte{0x80, 0x00, 0x00, 0x00}, 0, "", false},
		{[]byte{0x40, 0x00, 0x00}, 0, "", false},
		{nil, 0, "", false},
	}
	for _, tt := range tests {
		num, data, ok := parseChannelData(tt.in)
		if ok != tt.ok || (ok && (num != tt.num || string(data) != tt.data)) {
			t.Errorf("parseChannelData(% x) = %#x, %q, %v; want %#x, %q, %v", tt.in, num, data, ok, tt.num, tt.data, tt.ok)
		}
	}
}

// The fast path's per-packet work allocates nothing.
func TestChannelFastPathAllocatesNothing(t *testing.T) {
	ts := startServer(t, testConfig("127.0.0.0/8"), nil)
	sink := sinkPeer(t)
	ts.boundClient(t, "@alice:test.example", 0x4000, sink.LocalAddr().(*net.UDPAddr))
	r := onlyRelay(t, ts)
	sess := r.sess
	pkt := append([]byte{0x40, 0x00, 0x04, 0xb0}, make([]byte, 1200)...)
	from := r.fastKey
	if n := testing.AllocsPerRun(200, func() {
		if !sess.fromClient(pkt, from) {
			t.Fatal("not relayed")
		}
	}); n != 0 {
		t.Fatalf("%v allocations per packet, client to peer", n)
	}
	// Peer to client, within one read batch (the client socket held, as
	// the relay's read loop holds it while a batch lasts: the writes are
	// queued into buffers kept from the last batch; the send itself is
	// udpbatch's, tested there).
	back := make([]byte, channelHeader+1200)
	peer := sink.LocalAddr()
	batch := func(n int) {
		for range n {
			if !r.toClient(back, peer) {
				t.Fatal("not relayed")
			}
		}
	}
	r.out.Hold()
	batch(60)
	r.out.Release()
	r.out.Hold()
	n := testing.AllocsPerRun(50, func() { batch(1) })
	r.out.Release()
	if n != 0 {
		t.Fatalf("%v allocations per packet, peer to client", n)
	}
}
