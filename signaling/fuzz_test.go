package signaling

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"errors"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/livekit"
	"google.golang.org/protobuf/proto"
)

// wantRefusal fails t unless err is nil or an *authError with a 4xx status:
// what a client sends to /rtc is refused, never a 500 or a panic.
func wantRefusal(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	var ae *authError
	if !errors.As(err, &ae) || ae.status < 400 || ae.status > 499 {
		t.Fatalf("not a 4xx refusal: %T %v", err, err)
	}
}

// FuzzJoinRequest: any join_request parameter of /rtc/v1 (base64 of a
// WrappedJoinRequest, plain or gzip) is read or refused with a 400.
func FuzzJoinRequest(f *testing.F) {
	jr, _ := proto.Marshal(&livekit.JoinRequest{ClientInfo: &livekit.ClientInfo{Sdk: livekit.ClientInfo_JS},
		ConnectionSettings: &livekit.ConnectionSettings{AutoSubscribe: true}, ParticipantSid: "PA_x",
		AddTrackRequests: []*livekit.AddTrackRequest{{Cid: "c", Type: livekit.TrackType_AUDIO}},
		PublisherOffer:   &livekit.SessionDescription{Type: "offer", Sdp: "v=0\r\n"}})
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(jr)
	_ = zw.Close()
	for _, w := range []*livekit.WrappedJoinRequest{{JoinRequest: jr},
		{Compression: livekit.WrappedJoinRequest_GZIP, JoinRequest: gz.Bytes()},
		{Compression: livekit.WrappedJoinRequest_GZIP, JoinRequest: jr}, {Compression: 7}} {
		b, _ := proto.Marshal(w)
		f.Add(base64.RawURLEncoding.EncodeToString(b))
	}
	f.Add("")
	f.Add("====")
	f.Add("%%%")
	f.Fuzz(func(t *testing.T, param string) {
		req := httptest.NewRequest("GET", "/rtc/v1?join_request="+url.QueryEscape(param), nil)
		jp, err := readJoinParams(req, true)
		wantRefusal(t, err)
		if err == nil && (jp.clientInfo == nil || jp.offer != nil && jp.offer.Type != "offer") {
			t.Fatalf("join params %+v", jp)
		}
	})
}

// FuzzRTCToken: any access token or Authorization header on /rtc is
// verified or refused with a 4xx; only a token signed with a key of the
// key set gets through.
func FuzzRTCToken(f *testing.F) {
	ks, err := LoadOrCreateKeys(filepath.Join(f.TempDir(), "livekit_keys"))
	if err != nil {
		f.Fatal(err)
	}
	key, secret := ks.Current()
	good, _ := auth.NewAccessToken(key, secret).SetIdentity("@a:x|D").SetValidFor(time.Hour).
		SetVideoGrant(&auth.VideoGrant{RoomJoin: true, Room: "r"}).ToJWT()
	other, _ := auth.NewAccessToken(key, strings.Repeat("s", 40)).SetIdentity("@a:x|D").
		SetVideoGrant(&auth.VideoGrant{RoomJoin: true, Room: "r"}).ToJWT()
	for _, s := range []string{good, other, "", "a.b.c", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", good[:len(good)-3]} {
		f.Add(s, "")
		f.Add("", "Bearer "+s)
	}
	f.Add("", "Basic x")
	r := &RTC{p: RTCParams{Keys: ks}}
	f.Fuzz(func(t *testing.T, query, header string) {
		req := httptest.NewRequest("GET", "/rtc?access_token="+url.QueryEscape(query), nil)
		if header != "" {
			if strings.ContainsAny(header, "\r\n\x00") {
				return // not a header value that can reach us
			}
			req.Header.Set("Authorization", header)
		}
		c, err := r.verify(req)
		wantRefusal(t, err)
		if err == nil && (c.room == "" || c.identity == "" || c.apiKey != key) {
			t.Fatalf("claims %+v", c)
		}
	})
}

// FuzzTokenRequest: any body of POST /get_token or /sfu/get is a request
// or a 400/413 with a Matrix errcode.
func FuzzTokenRequest(f *testing.F) {
	for _, s := range []string{`{"room_id":"!r:x","slot_id":"m.call#ROOM","openid_token":{"access_token":"a","matrix_server_name":"x"},"member":{"id":"m","claimed_user_id":"@a:x","claimed_device_id":"D"}}`,
		`{"room":"!r:x","openid_token":{"access_token":"a","matrix_server_name":"x"},"device_id":"D","delay_id":"d","delay_timeout":1000,"delay_cs_api_url":"http://x"}`,
		`{}`, `{"room":1}`, `{"x":1}`, `{} {}`, `[`, ``} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, body []byte, legacy bool) {
		ep := endpointGetToken
		if legacy {
			ep = endpointSFUGet
		}
		w := httptest.NewRecorder()
		r := httptest.NewRequest("POST", "/", bytes.NewReader(body))
		_, jerr := decodeTokenRequest(ep, r, w)
		if jerr != nil {
			if st := jerr.HTTPStatus(); st < 400 || st > 499 || !strings.HasPrefix(string(jerr.Code), "M_") {
				t.Fatalf("%d %s %s", st, jerr.Code, jerr.Message)
			}
		}
	})
}

// FuzzKeysFile: a damaged livekit_keys file is an error, never a panic or
// a key set without its current key.
func FuzzKeysFile(f *testing.F) {
	for _, s := range []string{`{"current":"k","keys":[{"key":"k","secret":"` + strings.Repeat("s", 40) + `"}]}`,
		`{"current":"k","keys":[{"key":"k","secret":"short"}]}`, `{"current":"k","keys":[{"key":"k","secret":"` + strings.Repeat("s", 40) + `","not_after":"2020-01-01T00:00:00Z"}]}`,
		`{}`, `null`, `{"keys":[null]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		snap, err := parseKeys(b)
		if err == nil {
			if _, ok := snap.keys[snap.current]; !ok {
				t.Fatalf("current key %q missing", snap.current)
			}
		}
	})
}
