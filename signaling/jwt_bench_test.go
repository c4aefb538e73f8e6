package signaling

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
)

// benchService is a JWT service for the embedded SFU with the in-memory
// fake Authority (two map look-ups under a mutex): what is measured is the
// service's own work, the OpenID check, the membership check and HS256
// signing with livekit/protocol/auth.
func benchService(b *testing.B) *JWTService {
	b.Helper()
	keys, err := LoadOrCreateKeys(filepath.Join(b.TempDir(), "livekit_keys"))
	if err != nil {
		b.Fatal(err)
	}
	a := newFakeAuthority()
	a.set(alice, testRoom, member)
	svc, err := NewJWTService(JWTParams{
		Keys: keys, Authority: a, ServerName: testServer,
		SFUURL: func() string { return testSFUURL },
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		b.Fatal(err)
	}
	return svc
}

// BenchmarkTokenIssuance measures tokens issued per second: OpenID
// validation, membership check and signing ("issue"), and the same behind
// the HTTP handler with JSON decoding, validation and encoding ("http",
// "http-parallel" on every core).
func BenchmarkTokenIssuance(b *testing.B) {
	report := func(b *testing.B) {
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
	}
	b.Run("issue", func(b *testing.B) {
		svc := benchService(b)
		req := &tokenRequest{endpoint: endpointGetToken, roomID: testRoom, slotID: LegacySlotID,
			openID:      openIDToken{AccessToken: aliceToken, MatrixServerName: testServer},
			claimedUser: alice, deviceID: "DEVICE1", memberID: "member-1"}
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			if _, jerr := svc.issue(ctx, req); jerr != nil {
				b.Fatal(jerr.Message)
			}
		}
		report(b)
	})
	body, _ := json.Marshal(getTokenBody(aliceToken, alice, testRoom))
	serve := func(b *testing.B, h http.Handler) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/get_token", bytes.NewReader(body)))
		if rec.Code != http.StatusOK {
			b.Fatalf("%d %s", rec.Code, rec.Body)
		}
	}
	b.Run("http", func(b *testing.B) {
		h := benchService(b).Handler()
		b.ReportAllocs()
		for b.Loop() {
			serve(b, h)
		}
		report(b)
	})
	b.Run("http-parallel", func(b *testing.B) {
		h := benchService(b).Handler()
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				serve(b, h)
			}
		})
		report(b)
	})
}
