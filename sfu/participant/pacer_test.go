package participant

import (
	"errors"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/gcc"
	"github.com/pion/rtp"
)

// TestDirectPacerNoLockAcrossWrites: a write that blocks on one stream
// (a slow socket) does not hold up another stream's writes.
func TestDirectPacerNoLockAcrossWrites(t *testing.T) {
	p := newDirectPacer()
	release := make(chan struct{})
	entered := make(chan struct{})
	p.AddStream(1, interceptor.RTPWriterFunc(func(*rtp.Header, []byte, interceptor.Attributes) (int, error) {
		close(entered)
		<-release
		return 1, nil
	}))
	got := make(chan uint32, 1)
	p.AddStream(2, interceptor.RTPWriterFunc(func(h *rtp.Header, _ []byte, _ interceptor.Attributes) (int, error) {
		got <- h.SSRC
		return 2, nil
	}))
	go func() { _, _ = p.Write(&rtp.Header{SSRC: 1}, nil, nil) }()
	<-entered
	done := make(chan struct{})
	go func() {
		defer close(done)
		if n, err := p.Write(&rtp.Header{SSRC: 2}, nil, nil); n != 2 || err != nil {
			t.Errorf("write on stream 2: %d %v", n, err)
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("stream 2 waited for stream 1's write")
	}
	close(release)
	if s := <-got; s != 2 {
		t.Fatalf("delivered to %d", s)
	}
	if _, err := p.Write(&rtp.Header{SSRC: 3}, nil, nil); !errors.Is(err, gcc.ErrUnknownStream) {
		t.Fatalf("unknown stream: %v", err)
	}
}

// TestDirectPacerConcurrentAdd: streams added while others write (run with
// -race).
func TestDirectPacerConcurrentAdd(t *testing.T) {
	p := newDirectPacer()
	ok := interceptor.RTPWriterFunc(func(*rtp.Header, []byte, interceptor.Attributes) (int, error) { return 0, nil })
	p.AddStream(0, ok)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
				if _, err := p.Write(&rtp.Header{SSRC: 0}, nil, nil); err != nil {
					t.Error(err)
					return
				}
			}
		}
	}()
	for i := uint32(1); i < 200; i++ {
		p.AddStream(i, ok)
	}
	close(stop)
	<-done
	for i := uint32(0); i < 200; i++ {
		if _, err := p.Write(&rtp.Header{SSRC: i}, nil, nil); err != nil {
			t.Fatalf("stream %d: %v", i, err)
		}
	}
}
