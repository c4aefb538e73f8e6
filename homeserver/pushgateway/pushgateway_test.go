package pushgateway

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/salonhq/salon/homeserver/store"
)

func TestRefusePrivate(t *testing.T) {
	for addr, refused := range map[string]bool{
		"127.0.0.1:443": true, "[::1]:443": true, "10.1.2.3:80": true, "192.168.0.1:80": true, "172.16.0.1:80": true,
		"169.254.169.254:80": true, "[fe80::1]:80": true, "0.0.0.0:80": true, "[::ffff:127.0.0.1]:80": true, "[fc00::1]:80": true,
		"93.184.216.34:443": false, "[2606:4700::1111]:443": false,
	} {
		err := refusePrivate("tcp", addr, nil)
		if got := errors.Is(err, errPrivateTarget); got != refused {
			t.Errorf("%s: refused %v, want %v (%v)", addr, got, refused, err)
		}
	}
}

// TestPrivateGatewayNotDialled: without AllowPrivate, a gateway on
// loopback is never reached, even though its URL is valid.
func TestPrivateGatewayNotDialled(t *testing.T) {
	hit := make(chan struct{}, 1)
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hit <- struct{}{} }))
	defer gw.Close()
	s := New(Params{})
	_, err := s.post(context.Background(), outgoing{pusher: store.Pusher{PushKey: "k"}, url: gw.URL + "/_matrix/push/v1/notify", body: []byte(`{}`)})
	if !errors.Is(err, errPrivateTarget) {
		t.Fatalf("post to loopback: %v", err)
	}
	select {
	case <-hit:
		t.Fatal("loopback gateway was reached")
	default:
	}
	s = New(Params{AllowPrivate: true})
	if _, err := s.post(context.Background(), outgoing{url: gw.URL + "/_matrix/push/v1/notify", body: []byte(`{}`)}); err != nil {
		t.Fatalf("allowed: %v", err)
	}
	<-hit
}
