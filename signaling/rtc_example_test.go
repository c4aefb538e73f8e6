package signaling_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/livekit/protocol/livekit"

	"github.com/salonhq/salon/sfu"
	"github.com/salonhq/salon/signaling"
)

// Example shows the wiring `salon serve` does: the SFU with its media
// sockets, the signalling endpoint mounted at /livekit/sfu/ (so the
// client URL is ws(s)://HOST/livekit/sfu), shutdown in order.
func Example() {
	log := slog.New(slog.DiscardHandler)
	udp, _ := net.ListenPacket("udp4", "127.0.0.1:0") // production: nil, sfu.udp_port is used
	media, err := sfu.New(sfu.Params{Config: sfu.Config{TCPPort: -1}, Logger: log, UDPConn: udp})
	if err != nil {
		panic(err)
	}
	rtc := signaling.NewRTC(signaling.RTCParams{
		SFU:  media,
		Keys: keys{"APIkey": "a secret of at least thirty-two bytes"}, // the JWT service's key set
		ICEServers: func(identity, _ string) []*livekit.ICEServer {
			return []*livekit.ICEServer{{Urls: []string{"turn:turn.example.org:3478?transport=udp"}, Username: "exp:" + identity, Credential: "from turn/credential"}}
		},
		Logger: log,
	})
	mux := http.NewServeMux()
	mux.Handle("/livekit/sfu/", http.StripPrefix("/livekit/sfu", rtc.Handler()))
	srv := &http.Server{Handler: mux}
	srv.RegisterOnShutdown(rtc.Close) // Shutdown does not wait for WebSockets

	l, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(l)
	res, _ := http.Get("http://" + l.Addr().String() + "/livekit/sfu/rtc/validate")
	fmt.Println(res.StatusCode)
	res.Body.Close()

	// A grant change from the homeserver, applied without a rejoin:
	fmt.Println(rtc.UpdatePermissions("!room:example.org", "@alice:example.org:DEVICE", signaling.Permission{CanSubscribe: true}))

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(ctx) // closes the signal connections via RegisterOnShutdown
	_ = media.Close()     // then the calls and the media sockets
	// Output:
	// 401
	// false
}
