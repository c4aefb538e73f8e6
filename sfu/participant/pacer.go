package participant

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/gcc"
	"github.com/pion/rtp"
)

// directPacer is the bandwidth estimator's "pacer" for the SFU: packets
// leave at once, as with gcc.NoOpPacer, but without its one mutex held
// across every write of the connection (SRTP and the socket included), so
// the publishers' reader goroutines that forward to one subscriber do not
// queue behind each other. Streams are looked up in a copy-on-write map.
type directPacer struct {
	mu      sync.Mutex // serializes AddStream
	writers atomic.Pointer[map[uint32]interceptor.RTPWriter]
}

var _ gcc.Pacer = (*directPacer)(nil)

func newDirectPacer() *directPacer {
	p := &directPacer{}
	p.writers.Store(&map[uint32]interceptor.RTPWriter{})
	return p
}

// AddStream registers the writer of the stream with ssrc.
func (p *directPacer) AddStream(ssrc uint32, w interceptor.RTPWriter) {
	p.mu.Lock()
	defer p.mu.Unlock()
	old := *p.writers.Load()
	next := make(map[uint32]interceptor.RTPWriter, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	next[ssrc] = w
	p.writers.Store(&next)
}

// Write sends the packet on its stream's writer.
func (p *directPacer) Write(h *rtp.Header, payload []byte, a interceptor.Attributes) (int, error) {
	if w, ok := (*p.writers.Load())[h.SSRC]; ok {
		return w.Write(h, payload, a)
	}
	return 0, fmt.Errorf("%w: %d", gcc.ErrUnknownStream, h.SSRC)
}

// SetTargetBitrate is ignored: nothing is paced.
func (p *directPacer) SetTargetBitrate(int) {}

// Close has nothing to release.
func (p *directPacer) Close() error { return nil }
