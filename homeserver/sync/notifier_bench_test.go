package sync

import (
	"strconv"
	"sync/atomic"
	"testing"
)

// BenchmarkNotifierListenStop: 2,000 users' long-polls registering and
// unregistering at once, as after a message into their room.
func BenchmarkNotifierListenStop(b *testing.B) {
	n := NewNotifier()
	users := make([]string, 2000)
	for i := range users {
		users[i] = "@u" + strconv.Itoa(i) + ":bench"
	}
	var next atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			u := users[next.Add(1)%int64(len(users))]
			n.Listen(u).Stop()
		}
	})
}
