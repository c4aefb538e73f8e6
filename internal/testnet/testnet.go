// Package testnet hands tests loopback ports to bind later, for servers a
// test must start (or restart) at an address it knows in advance.
//
// A port the kernel picks for "127.0.0.1:0" comes from the ephemeral range,
// the same range it draws from for every outgoing connection: once the
// probe listener is closed, any test running beside it may be given that
// port for a dial before the server binds it ("address already in use").
// The ports here are drawn at random from below the ephemeral range, which
// the kernel never hands out on its own, and are checked free for both TCP
// and UDP when handed out; one process never gets the same port twice.
package testnet

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
)

var (
	mu     sync.Mutex
	handed = map[int]bool{}
)

// lowest and highest bound the ports handed out: from 20000 to just below
// the start of the kernel's ephemeral range.
const lowest = 20000

func highest() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if lo, err := strconv.Atoi(f[0]); err == nil && lo > lowest+1000 {
				return lo - 1
			}
		}
	}
	return 32767
}

// Port returns a loopback port free for TCP and UDP right now.
func Port(t testing.TB) int {
	t.Helper()
	hi := highest()
	mu.Lock()
	defer mu.Unlock()
	for range 1000 {
		p := lowest + rand.IntN(hi-lowest+1)
		if handed[p] || !free(p) {
			continue
		}
		handed[p] = true
		return p
	}
	t.Fatalf("testnet: no free loopback port in %d-%d", lowest, hi)
	return 0
}

// Addr is Port as "127.0.0.1:PORT".
func Addr(t testing.TB) string {
	t.Helper()
	return fmt.Sprintf("127.0.0.1:%d", Port(t))
}

func free(p int) bool {
	addr := fmt.Sprintf("127.0.0.1:%d", p)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	defer ln.Close()
	c, err := net.ListenPacket("udp", addr)
	if err != nil {
		return false
	}
	c.Close()
	return true
}
