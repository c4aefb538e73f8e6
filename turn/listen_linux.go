//go:build linux

package turn

import (
	"context"
	"net"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

func defaultUDPSockets() int { return min(runtime.GOMAXPROCS(0), 8) }

// listenUDP opens n UDP sockets on addr sharing the port with SO_REUSEPORT;
// the kernel hashes each client's address to one of them, so a client's
// allocation always lives behind the same socket.
func listenUDP(addr string, n int) ([]net.PacketConn, error) {
	if n <= 1 {
		c, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, err
		}
		return []net.PacketConn{c}, nil
	}
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	var conns []net.PacketConn
	for range n {
		c, err := lc.ListenPacket(context.Background(), "udp", addr)
		if err != nil {
			for _, c := range conns {
				c.Close()
			}
			return nil, err
		}
		conns = append(conns, c)
		// Port 0 means "any": the rest must share the port the first got.
		addr = c.LocalAddr().String()
	}
	return conns, nil
}
