package turn_test

import (
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/salonhq/salon/turn"
)

// How cmd/salon wires the relay: decode over Defaults (here set in code),
// fill realm and secret, start, advertise, close.
func ExampleNew() {
	cfg := turn.Defaults()
	cfg.Realm = "example.org"
	cfg.SharedSecret = "an example secret, 16+ bytes" // normally LoadOrCreateSecret(dataDir + "/turn_secret")
	if err := cfg.Validate(); err != nil {
		fmt.Println(err)
		return
	}
	// Port 0 here so the example runs anywhere; the default is 3478.
	udp, _ := net.ListenPacket("udp4", "127.0.0.1:0")
	tcp, _ := net.Listen("tcp4", "127.0.0.1:0")
	srv, err := turn.New(turn.Params{Config: cfg, Logger: slog.New(slog.DiscardHandler), UDPConn: udp, TCPListener: tcp})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()

	for _, uri := range srv.URIs("turn.example.org") {
		scheme, rest, _ := strings.Cut(uri, ":")
		_, transport, _ := strings.Cut(rest, "?")
		fmt.Println(scheme, transport)
	}
	username, _, ttl := srv.Credentials("@alice:example.org", time.Unix(1700000000, 0))
	fmt.Println(username, ttl)
	// Output:
	// turn transport=udp
	// turn transport=tcp
	// 1700003600:@alice:example.org 1h0m0s
}
