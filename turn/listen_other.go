//go:build !linux

package turn

import "net"

func defaultUDPSockets() int { return 1 }

// listenUDP opens one socket: SO_REUSEPORT load-spreading is Linux-only.
func listenUDP(addr string, _ int) ([]net.PacketConn, error) {
	c, err := net.ListenPacket("udp", addr)
	if err != nil {
		return nil, err
	}
	return []net.PacketConn{c}, nil
}
