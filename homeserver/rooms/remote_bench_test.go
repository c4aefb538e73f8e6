package rooms

import (
	"context"
	"fmt"
	"testing"
)

// BenchmarkReceivePDU: messages of a remote member accepted one after the
// other into one room (each checked: signature, hash, auth events, state
// before, current state; stored through the commit path).
func BenchmarkReceivePDU(b *testing.B) {
	rr := newRemoteRoom(b, "11")
	ctx := context.Background()
	prev := rr.extremities()
	pdus := make([][]byte, b.N)
	for i := range pdus {
		ev := rr.message(fmt.Sprint("m", i), prev)
		prev = []string{ev.ID}
		pdus[i] = ev.JSON
	}
	b.ResetTimer()
	for i := range pdus {
		if _, err := rr.s.ReceivePDU(ctx, "rs", pdus[i]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pdus/s")
}
