package udpbatch

import (
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/ipv4"
)

// fakeWriter records what each WriteBatch call was given and fails as told.
type fakeWriter struct {
	mu    sync.Mutex
	calls [][]string // payloads per call, as sent
	// fail decides, per call, how many leading datagrams are sent and
	// the error returned.
	fail func(call int, ms []ipv4.Message) (int, error)
}

func (f *fakeWriter) WriteBatch(ms []ipv4.Message, _ int) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := len(ms), error(nil)
	if f.fail != nil {
		n, err = f.fail(len(f.calls), ms)
	}
	var sent []string
	for _, m := range ms[:n] {
		sent = append(sent, string(m.Buffers[0]))
	}
	f.calls = append(f.calls, sent)
	return n, err
}

func (f *fakeWriter) sent() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.calls {
		out = append(out, c...)
	}
	return out
}

func loopback(t *testing.T) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestHeldWritesLeaveInOneBatchInOrder(t *testing.T) {
	f := &fakeWriter{}
	c := newConn(loopback(t), f)
	addr := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9}
	c.Hold()
	for _, s := range []string{"a", "b", "c"} {
		buf := []byte(s)
		if n, err := c.WriteTo(buf, addr); err != nil || n != 1 {
			t.Fatalf("WriteTo: %d, %v", n, err)
		}
		buf[0] = 'x' // the caller reuses its buffer: the queued copy must not change
	}
	if len(f.calls) != 0 {
		t.Fatalf("sent while held: %v", f.calls)
	}
	c.Release()
	if len(f.calls) != 1 || len(f.calls[0]) != 3 {
		t.Fatalf("want one batch of 3, got %v", f.calls)
	}
	if got := f.sent(); got[0] != "a" || got[1] != "b" || got[2] != "c" {
		t.Fatalf("order or content changed: %v", got)
	}
	// Not held: a write leaves at once.
	_, _ = c.WriteTo([]byte("d"), addr)
	if len(f.calls) != 2 || f.calls[1][0] != "d" {
		t.Fatalf("unheld write not sent at once: %v", f.calls)
	}
	if c.Batches.Load() != 2 || c.Datagrams.Load() != 4 {
		t.Fatalf("counters: %d batches, %d datagrams", c.Batches.Load(), c.Datagrams.Load())
	}
}

func TestFullQueueIsSentWhileHeld(t *testing.T) {
	f := &fakeWriter{}
	c := newConn(loopback(t), f)
	addr := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9}
	c.Hold()
	for i := 0; i < MaxBatch+1; i++ {
		_, _ = c.WriteTo([]byte{byte(i)}, addr)
	}
	if len(f.calls) != 1 || len(f.calls[0]) != MaxBatch {
		t.Fatalf("want one full batch sent while held, got %d calls", len(f.calls))
	}
	c.Release()
	if got := f.sent(); len(got) != MaxBatch+1 || got[MaxBatch] != string([]byte{MaxBatch}) {
		t.Fatalf("the rest was not sent on release: %d", len(got))
	}
}

// TestPartialBatchFailure: the kernel sends some, then refuses one; the
// refused one is skipped and counted, the rest still go, in order.
func TestPartialBatchFailure(t *testing.T) {
	f := &fakeWriter{fail: func(call int, ms []ipv4.Message) (int, error) {
		for i, m := range ms {
			if string(m.Buffers[0]) == "bad" {
				if i == 0 {
					return 0, &net.OpError{Op: "sendmmsg", Err: syscall.EPERM}
				}
				return i, nil
			}
		}
		return len(ms), nil
	}}
	c := newConn(loopback(t), f)
	addr := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9}
	c.Hold()
	for _, s := range []string{"1", "2", "bad", "3", "bad", "4"} {
		if _, err := c.WriteTo([]byte(s), addr); err != nil {
			t.Fatal(err)
		}
	}
	c.Release()
	got := f.sent()
	want := []string{"1", "2", "3", "4"}
	if len(got) != len(want) {
		t.Fatalf("sent %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("sent %v, want %v", got, want)
		}
	}
	if c.Errors.Load() != 2 {
		t.Fatalf("%d errors counted, want 2", c.Errors.Load())
	}
	// The socket still works after a refused datagram.
	if _, err := c.WriteTo([]byte("5"), addr); err != nil {
		t.Fatal(err)
	}
}

// TestClosedMidBatch: the socket closes between two sendmmsg calls of one
// flush; the rest is dropped, the writer learns the socket is closed, and
// nothing spins.
func TestClosedMidBatch(t *testing.T) {
	f := &fakeWriter{fail: func(call int, ms []ipv4.Message) (int, error) {
		if call == 0 {
			return 2, nil // sent two, then the socket closed
		}
		return 0, &net.OpError{Op: "sendmmsg", Err: net.ErrClosed}
	}}
	c := newConn(loopback(t), f)
	addr := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9}
	c.Hold()
	for i := 0; i < 5; i++ {
		_, _ = c.WriteTo([]byte{byte('0' + i)}, addr)
	}
	c.holds.Add(-1)
	if err := c.Flush(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Flush: %v, want net.ErrClosed", err)
	}
	if got := f.sent(); len(got) != 2 {
		t.Fatalf("sent %v", got)
	}
	if c.Errors.Load() != 3 {
		t.Fatalf("%d dropped counted, want 3", c.Errors.Load())
	}
	if _, err := c.WriteTo([]byte("late"), addr); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write after close: %v", err)
	}
}

// TestRealSocketClosedWhileHeld: with the real sendmmsg, closing the socket
// while datagrams are queued fails the flush with net.ErrClosed.
func TestRealSocketClosedWhileHeld(t *testing.T) {
	u := loopback(t)
	pc, ok := New(u)
	if !ok {
		t.Fatal("a *net.UDPConn was not wrapped")
	}
	c := pc.(*Conn)
	c.Hold()
	_, _ = c.WriteTo([]byte("x"), loopback(t).LocalAddr())
	_ = u.Close()
	c.holds.Add(-1)
	if err := c.Flush(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Flush after close: %v", err)
	}
}

// TestOrderPerStreamOverLoopback: several goroutines each write a numbered
// stream to its own receiver through one batching socket, holding it around
// bursts as a fan-out does; every receiver gets its stream complete and in
// order, and the datagrams travelled in fewer sendmmsg calls than there
// were datagrams.
func TestOrderPerStreamOverLoopback(t *testing.T) {
	const streams, perStream, burst = 4, 200, 8
	pc, ok := New(loopback(t))
	if !ok {
		t.Fatal("not wrapped")
	}
	c := pc.(*Conn)
	rx := make([]*net.UDPConn, streams)
	for i := range rx {
		rx[i] = loopback(t)
		_ = rx[i].SetReadBuffer(4 << 20)
	}
	var wg sync.WaitGroup
	for s := 0; s < streams; s++ {
		wg.Add(1)
		go func(s int) {
			defer wg.Done()
			buf := make([]byte, 100)
			for i := 0; i < perStream; i += burst {
				c.Hold()
				for k := i; k < i+burst; k++ {
					binary.BigEndian.PutUint32(buf, uint32(k))
					if _, err := c.WriteTo(buf, rx[s].LocalAddr()); err != nil {
						t.Error(err)
					}
				}
				c.Release()
				if i%64 == 0 {
					time.Sleep(time.Millisecond) // let the receivers keep up
				}
			}
		}(s)
	}
	wg.Wait()
	for s, r := range rx {
		buf := make([]byte, 1500)
		for want := 0; want < perStream; want++ {
			_ = r.SetReadDeadline(time.Now().Add(2 * time.Second))
			n, _, err := r.ReadFrom(buf)
			if err != nil {
				t.Fatalf("stream %d: after %d datagrams: %v", s, want, err)
			}
			if got := int(binary.BigEndian.Uint32(buf[:n])); got != want {
				t.Fatalf("stream %d: datagram %d where %d was due", s, got, want)
			}
		}
	}
	if b, d := c.Batches.Load(), c.Datagrams.Load(); d != streams*perStream || b >= d {
		t.Fatalf("%d datagrams in %d batches", d, b)
	}
}

// TestReaderHandsOutABatchInOrder: one recvmmsg's datagrams come out one
// per ReadFrom, in order, with Buffered counting down, over loopback.
func TestReaderHandsOutABatchInOrder(t *testing.T) {
	rx, tx := loopback(t), loopback(t)
	for i := 0; i < 5; i++ {
		if _, err := tx.WriteTo([]byte{byte(i), 1, 2}, rx.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(50 * time.Millisecond) // all five queued at the receiver
	r := NewReader(rx, 4, 2)
	buf := make([]byte, 10)
	var firstAddr net.Addr
	for i := 0; i < 5; i++ {
		n, addr, err := r.ReadFrom(buf)
		if err != nil {
			t.Fatal(err)
		}
		if n != 2 || buf[0] != byte(i) {
			t.Fatalf("datagram %d: % x (cut to the 2-byte size)", i, buf[:n])
		}
		if addr.String() != tx.LocalAddr().String() {
			t.Fatalf("from %v, want %v", addr, tx.LocalAddr())
		}
		if i == 0 {
			firstAddr = addr
			if r.Buffered() != 3 {
				t.Fatalf("after the first of a batch of 4: %d buffered", r.Buffered())
			}
		} else if addr != firstAddr {
			t.Fatal("a repeated source address was not reused")
		}
	}
	_ = rx.Close()
	if _, _, err := r.ReadFrom(buf); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read after close: %v", err)
	}
}

// TestReaderNextKeepsHeadroom: Next hands out each datagram where it was
// read, behind headroom the caller may fill, without disturbing the
// datagrams still buffered.
func TestReaderNextKeepsHeadroom(t *testing.T) {
	rx, tx := loopback(t), loopback(t)
	for i := 0; i < 3; i++ {
		if _, err := tx.WriteTo([]byte{byte(i), 0xaa, 0xbb}, rx.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(50 * time.Millisecond)
	r := NewReaderHeadroom(rx, 4, 16, 4)
	for i := 0; i < 3; i++ {
		b, addr, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		if len(b) != 4+3 || b[4] != byte(i) || b[5] != 0xaa {
			t.Fatalf("datagram %d: % x, want 4 bytes of headroom then %02x aa bb", i, b, i)
		}
		if addr.String() != tx.LocalAddr().String() {
			t.Fatalf("from %v", addr)
		}
		copy(b, "HDR!") // the caller's to write
	}
	buf := make([]byte, 16)
	if _, err := tx.WriteTo([]byte("last"), rx.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	if n, _, err := r.ReadFrom(buf); err != nil || string(buf[:n]) != "last" {
		t.Fatalf("ReadFrom after Next: %q, %v (headroom must not show)", buf[:n], err)
	}
}

type discardWriter struct{}

func (discardWriter) WriteBatch(ms []ipv4.Message, _ int) (int, error) { return len(ms), nil }

// A fan-out's writes reuse the buffers of the last one: the per-packet
// path allocates nothing once warm.
func TestHeldFanOutDoesNotAllocate(t *testing.T) {
	c := newConn(loopback(t), discardWriter{})
	addr := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9}
	pkt := make([]byte, 1200)
	fanOut := func() {
		c.Hold()
		for range 8 {
			_, _ = c.WriteTo(pkt, addr)
		}
		c.Release()
	}
	fanOut()
	if n := testing.AllocsPerRun(100, fanOut); n != 0 {
		t.Fatalf("%v allocations per fan-out, want 0", n)
	}
	if got := c.Datagrams.Load(); got != 8*102 {
		t.Fatalf("sent %d datagrams, want %d", got, 8*102)
	}
}

// TestUnheldWriteIsNotCopied: with nothing held and nothing queued, a
// write goes to the socket at once, as the caller's own buffer (no copy
// kept, nothing allocated), one datagram per sendmmsg.
func TestUnheldWriteIsNotCopied(t *testing.T) {
	f := &fakeWriter{}
	c := newConn(loopback(t), f)
	addr := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9}
	if n, err := c.WriteTo([]byte("rtcp"), addr); err != nil || n != 4 {
		t.Fatalf("WriteTo: %d, %v", n, err)
	}
	if got := f.sent(); len(got) != 1 || got[0] != "rtcp" {
		t.Fatalf("sent %v", got)
	}
	c.mu.Lock()
	queued, free := len(c.queue), len(c.free)
	c.mu.Unlock()
	if queued != 0 || free != 0 {
		t.Fatalf("an unheld write went through the queue: %d queued, %d copies kept", queued, free)
	}
	d := newConn(loopback(t), discardWriter{})
	pkt := make([]byte, 1200)
	if n := testing.AllocsPerRun(100, func() { _, _ = d.WriteTo(pkt, addr) }); n != 0 {
		t.Fatalf("%v allocations per unheld write, want 0", n)
	}
}

// TestClaimTakesDatagramsBeforeTheReader sends datagrams to a wrapped
// socket, batched and not: the claim function takes those it wants, and
// ReadFrom returns the rest in order, each whole, with its source.
func TestClaimTakesDatagramsBeforeTheReader(t *testing.T) {
	for _, batched := range []bool{false, true} {
		name := "plain"
		if batched {
			name = "batched"
		}
		t.Run(name, func(t *testing.T) {
			srv := loopback(t)
			wc, _ := New(srv)
			c := wc.(*Conn)
			if batched {
				c.ReadBatches(8, 2048)
			}
			var mu sync.Mutex
			var claimed []string
			c.SetClaim(func(b []byte, from *net.UDPAddr) bool {
				if len(b) == 0 || b[0] != 'x' {
					return false
				}
				mu.Lock()
				claimed = append(claimed, string(b))
				mu.Unlock()
				return true
			})
			cl := loopback(t)
			sent := []string{"a1", "x1", "x2", "a2", "x3", "a3"}
			for _, s := range sent {
				if _, err := cl.WriteTo([]byte(s), srv.LocalAddr()); err != nil {
					t.Fatal(err)
				}
			}
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			buf := make([]byte, 64)
			for _, want := range []string{"a1", "a2", "a3"} {
				n, from, err := c.ReadFrom(buf)
				if err != nil {
					t.Fatal(err)
				}
				if string(buf[:n]) != want {
					t.Fatalf("read %q, want %q", buf[:n], want)
				}
				if from.(*net.UDPAddr).Port != cl.LocalAddr().(*net.UDPAddr).Port {
					t.Fatalf("from %v, want %v", from, cl.LocalAddr())
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if len(claimed) != 3 || claimed[0] != "x1" || claimed[2] != "x3" {
				t.Fatalf("claimed %q", claimed)
			}
			// Without a claim every datagram is the reader's again.
			c.SetClaim(nil)
			if _, err := cl.WriteTo([]byte("x4"), srv.LocalAddr()); err != nil {
				t.Fatal(err)
			}
			if n, _, err := c.ReadFrom(buf); err != nil || string(buf[:n]) != "x4" {
				t.Fatalf("read %q, %v", buf[:n], err)
			}
		})
	}
}

// TestClosedWhileReadingBatches: a read blocked in recvmmsg returns the
// socket's closed error, not a datagram or a hang.
func TestClosedWhileReadingBatches(t *testing.T) {
	srv := loopback(t)
	wc, _ := New(srv)
	c := wc.(*Conn)
	c.ReadBatches(4, 1500)
	done := make(chan error, 1)
	go func() {
		_, _, err := c.ReadFrom(make([]byte, 1500))
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	_ = c.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("read after close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("read still blocked after close")
	}
}
