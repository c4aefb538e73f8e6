package storetest

import (
	"errors"
	"testing"

	"github.com/salonhq/salon/homeserver/store"
)

func hash(s string) []byte {
	b := make([]byte, 32)
	copy(b, s)
	return b
}

// testRefreshTokens: rotation makes the new access token the device's;
// the replaced refresh token works until the new tokens are used, then
// never again; a new login or a logout ends the chain.
func testRefreshTokens(t *testing.T, s store.Store) {
	const user, dev = "@a:test", "D"
	if err := s.UpsertDevice(ctx, store.Device{UserID: user, DeviceID: dev, TokenHash: hash("A1"), CreatedTS: 1}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddRefreshToken(ctx, store.RefreshToken{TokenHash: hash("R1"), UserID: user, DeviceID: dev, AccessHash: hash("A1"), AccessExpiresTS: 100}); err != nil {
		t.Fatal(err)
	}
	if exp, err := s.UseAccessToken(ctx, hash("A1")); err != nil || exp != 100 {
		t.Fatalf("A1 expiry = %d, %v", exp, err)
	}
	if _, err := s.UseAccessToken(ctx, hash("plain")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("token without refresh: %v", err)
	}
	rotate := func(old, rt, at string, exp int64) error {
		got, err := s.RotateRefreshToken(ctx, hash(old), store.RefreshToken{TokenHash: hash(rt), AccessHash: hash(at), AccessExpiresTS: exp})
		if err == nil && (got.UserID != user || got.DeviceID != dev) {
			t.Fatalf("rotated token of %q %q", got.UserID, got.DeviceID)
		}
		return err
	}
	owner := func(at string) string {
		d, err := s.DeviceByToken(ctx, hash(at))
		if err != nil {
			return ""
		}
		return d.DeviceID
	}
	if err := rotate("R1", "R2", "A2", 200); err != nil {
		t.Fatal(err)
	}
	if owner("A1") != "" || owner("A2") != dev {
		t.Fatal("rotation did not replace the access token")
	}
	// The answer was lost: R1 again, before A2 is used.
	if err := rotate("R1", "R3", "A3", 300); err != nil {
		t.Fatalf("repeat before use: %v", err)
	}
	if owner("A2") != "" || owner("A3") != dev {
		t.Fatal("repeat did not replace the access token")
	}
	if err := rotate("R2", "X", "AX", 1); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("superseded R2: %v", err)
	}
	if exp, err := s.UseAccessToken(ctx, hash("A3")); err != nil || exp != 300 {
		t.Fatalf("A3 = %d, %v", exp, err)
	}
	if err := rotate("R1", "X", "AX", 1); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("replay of R1 after A3 was used: %v", err)
	}
	// Using the new refresh token also ends the old one.
	if err := rotate("R3", "R4", "A4", 400); err != nil {
		t.Fatal(err)
	}
	if err := rotate("R4", "R5", "A5", 500); err != nil {
		t.Fatal(err)
	}
	if err := rotate("R3", "X", "AX", 1); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("replay of R3 after R4 was used: %v", err)
	}
	// A new login on the device ends the chain.
	if err := s.UpsertDevice(ctx, store.Device{UserID: user, DeviceID: dev, TokenHash: hash("L"), CreatedTS: 1}); err != nil {
		t.Fatal(err)
	}
	if err := rotate("R5", "X", "AX", 1); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("refresh after a new login: %v", err)
	}
	// So does a logout.
	if err := s.AddRefreshToken(ctx, store.RefreshToken{TokenHash: hash("S1"), UserID: user, DeviceID: dev, AccessHash: hash("L"), AccessExpiresTS: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeleteDevices(ctx, user, []string{dev}, ""); err != nil {
		t.Fatal(err)
	}
	if err := rotate("S1", "X", "AX", 1); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("refresh after logout: %v", err)
	}
}
