package signaling_test

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/livekit"
	"google.golang.org/protobuf/proto"

	"github.com/salonhq/salon/sfu"
	"github.com/salonhq/salon/sfu/lktest"
	"github.com/salonhq/salon/signaling"
)

const (
	testKey    = "salon-test-key"
	testSecret = "salon-test-secret-at-least-32-bytes-long"
)

type keys map[string]string

func (k keys) Secret(apiKey string) (string, bool) {
	s, ok := k[apiKey]
	return s, ok
}

type server struct {
	base string // ws://127.0.0.1:PORT/livekit/sfu
	http string // http://127.0.0.1:PORT/livekit/sfu
	sfu  *sfu.SFU
	rtc  *signaling.RTC
	srv  *httptest.Server
}

func testLogger() *slog.Logger {
	level := slog.LevelWarn
	if os.Getenv("SALON_SFU_DEBUG") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

func startServer(t testing.TB, cfg sfu.Config) *server {
	t.Helper()
	sv := startServerNoCleanup(t, cfg)
	t.Cleanup(sv.close)
	return sv
}

func startServerNoCleanup(t testing.TB, cfg sfu.Config) *server {
	return startServerOpts(t, cfg, nil)
}

func startServerWith(t testing.TB, cfg sfu.Config, opt func(*signaling.RTCParams)) *server {
	t.Helper()
	sv := startServerOpts(t, cfg, opt)
	t.Cleanup(sv.close)
	return sv
}

func startServerOpts(t testing.TB, cfg sfu.Config, opt func(*signaling.RTCParams)) *server {
	t.Helper()
	udp, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tcp, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s, err := sfu.New(sfu.Params{Config: cfg, Logger: testLogger(), UDPConn: udp, TCPListener: tcp})
	if err != nil {
		t.Fatal(err)
	}
	params := signaling.RTCParams{
		SFU:    s,
		Keys:   keys{testKey: testSecret},
		Logger: testLogger(),
		ICEServers: func(identity, _ string) []*livekit.ICEServer {
			return []*livekit.ICEServer{{Urls: []string{"turn:127.0.0.1:3478?transport=udp"}, Username: "1:" + identity, Credential: "x"}}
		},
	}
	if opt != nil {
		opt(&params)
	}
	rtc := signaling.NewRTC(params)
	mux := http.NewServeMux()
	mux.Handle("/livekit/sfu/", http.StripPrefix("/livekit/sfu", rtc.Handler()))
	srv := httptest.NewUnstartedServer(mux)
	srv.Config.RegisterOnShutdown(rtc.Close)
	srv.Start()
	sv := &server{
		base: "ws" + strings.TrimPrefix(srv.URL, "http") + "/livekit/sfu",
		http: srv.URL + "/livekit/sfu",
		sfu:  s, rtc: rtc, srv: srv,
	}
	return sv
}

func (s *server) close() {
	s.rtc.Close()
	s.srv.Close()
	_ = s.sfu.Close()
}

type tokenOpt func(*auth.AccessToken, *auth.VideoGrant)

func token(t testing.TB, room, identity string, opts ...tokenOpt) string {
	t.Helper()
	at := auth.NewAccessToken(testKey, testSecret)
	g := &auth.VideoGrant{RoomJoin: true, Room: room}
	at.SetIdentity(identity).SetName(identity).SetValidFor(time.Hour)
	for _, o := range opts {
		o(at, g)
	}
	at.SetVideoGrant(g)
	jwt, err := at.ToJWT()
	if err != nil {
		t.Fatal(err)
	}
	return jwt
}

func connect(t testing.TB, s *server, room, identity string) *lktest.Client {
	t.Helper()
	c := connectNoCleanup(t, s, room, identity)
	t.Cleanup(c.Close)
	return c
}

func connectNoCleanup(t testing.TB, s *server, room, identity string) *lktest.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := lktest.Connect(ctx, s.base, token(t, room, identity), lktest.Options{AutoSubscribe: true, KeepMessages: true})
	if err != nil {
		t.Fatalf("%s: connect: %v", identity, err)
	}
	return c
}

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// audioCall starts a server with alice and bob in "call", alice
// publishing audio that bob already receives; ctx ends after d.
func audioCall(t testing.TB, d time.Duration) (*server, *lktest.Client, *lktest.Client, *lktest.Source, context.Context) {
	t.Helper()
	s := startServer(t, sfu.Config{})
	a := connect(t, s, "call", "alice")
	b := connect(t, s, "call", "bob")
	ctx := ctxT(t, d)
	audio, err := a.PublishAudio(ctx, "mic", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(audio.Stop)
	if err := b.WaitPackets(ctx, "audio", audio.Info.Sid, 3); err != nil {
		t.Fatal(err)
	}
	return s, a, b, audio, ctx
}

// update returns the participant info about sid in a participant update.
func update(sid string) func(*livekit.SignalResponse) *livekit.ParticipantInfo {
	return func(m *livekit.SignalResponse) *livekit.ParticipantInfo {
		for _, p := range m.GetUpdate().GetParticipants() {
			if p.Sid == sid {
				return p
			}
		}
		return nil
	}
}

func mustMarshal(m *livekit.SignalRequest) []byte {
	b, err := proto.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}

func signalingPermission(publish bool) signaling.Permission {
	return signaling.Permission{CanPublish: publish, CanSubscribe: true, CanPublishData: true}
}

// expiredToken signs a token whose exp is an hour ago (AccessToken
// refuses to make one).
func expiredToken(t testing.TB, room, identity string) string {
	t.Helper()
	claims := jwt.MapClaims{
		"iss":   testKey,
		"sub":   identity,
		"nbf":   time.Now().Add(-2 * time.Hour).Unix(),
		"exp":   time.Now().Add(-time.Hour).Unix(),
		"video": map[string]any{"roomJoin": true, "room": room},
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(testSecret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}
