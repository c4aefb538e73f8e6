package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/salonhq/salon/homeserver/store"
)

func testFederationKeys(t *testing.T, s store.Store) {
	ctx := context.Background()
	if err := s.UseOwnServerKey(ctx, "ed25519:a", []byte("pubA"), 100); err != nil {
		t.Fatal(err)
	}
	// The same key again (a restart) changes nothing.
	if err := s.UseOwnServerKey(ctx, "ed25519:a", []byte("pubA"), 150); err != nil {
		t.Fatal(err)
	}
	if err := s.UseOwnServerKey(ctx, "ed25519:b", []byte("pubB"), 200); err != nil {
		t.Fatal(err)
	}
	own, err := s.OwnServerKeys(ctx)
	if err != nil || len(own) != 2 {
		t.Fatalf("OwnServerKeys = %+v, %v", own, err)
	}
	if own[0].KeyID != "ed25519:b" || own[0].ExpiredTS != 0 || own[1].KeyID != "ed25519:a" || own[1].ExpiredTS != 200 || own[1].FetchedTS != 100 {
		t.Fatalf("after rotation: %+v", own)
	}
	if !bytes.Equal(own[1].Public, []byte("pubA")) {
		t.Fatalf("old key public = %q", own[1].Public)
	}

	k := store.ServerKey{ServerName: "remote.example", KeyID: "ed25519:x", Public: []byte("X"), ValidUntilTS: 1000, FetchedTS: 10}
	if err := s.PutRemoteServerKeys(ctx, []store.ServerKey{k}); err != nil {
		t.Fatal(err)
	}
	// An older answer does not shorten the validity.
	older := k
	older.ValidUntilTS, older.FetchedTS = 500, 20
	if err := s.PutRemoteServerKeys(ctx, []store.ServerKey{older}); err != nil {
		t.Fatal(err)
	}
	// Another public key under the same ID is ignored: key IDs are
	// never reused for another key.
	forged := k
	forged.Public, forged.ValidUntilTS = []byte("Y"), 5000
	if err := s.PutRemoteServerKeys(ctx, []store.ServerKey{forged}); err != nil {
		t.Fatal(err)
	}
	got, err := s.RemoteServerKeys(ctx, "remote.example")
	if err != nil || len(got) != 1 || got[0].ValidUntilTS != 1000 || string(got[0].Public) != "X" {
		t.Fatalf("RemoteServerKeys = %+v, %v", got, err)
	}
	if got, _ := s.RemoteServerKeys(ctx, "other.example"); len(got) != 0 {
		t.Fatalf("unknown server: %+v", got)
	}
}

func testFederationOutbox(t *testing.T, s store.Store) {
	ctx := context.Background()
	var items []store.OutboxItem
	for i := 0; i < 5; i++ {
		items = append(items, store.OutboxItem{Destination: "b.example", Kind: "edu", Body: []byte(fmt.Sprintf(`{"n":%d}`, i)), CreatedTS: 1})
	}
	items = append(items, store.OutboxItem{Destination: "c.example", Kind: "edu", Body: []byte(`{}`), CreatedTS: 1})
	if err := s.EnqueueFederation(ctx, items); err != nil {
		t.Fatal(err)
	}
	depth, err := s.FederationQueueDepths(ctx)
	if err != nil || depth["b.example"] != 5 || depth["c.example"] != 1 {
		t.Fatalf("depths = %v, %v", depth, err)
	}
	txn, got, err := s.NextFederationTxn(ctx, "b.example", "t1", 50, 3)
	if err != nil || txn != "t1" || len(got) != 3 || string(got[0].Body) != `{"n":0}` {
		t.Fatalf("first txn = %q %+v %v", txn, got, err)
	}
	// Not acknowledged: the same transaction again, whatever new ID is
	// offered.
	txn, again, err := s.NextFederationTxn(ctx, "b.example", "t2", 50, 3)
	if err != nil || txn != "t1" || len(again) != 3 || again[2].ID != got[2].ID {
		t.Fatalf("retried txn = %q %+v %v", txn, again, err)
	}
	if err := s.DeleteFederationTxn(ctx, "b.example", "t1"); err != nil {
		t.Fatal(err)
	}
	txn, rest, err := s.NextFederationTxn(ctx, "b.example", "t3", 50, 100)
	if err != nil || txn != "t3" || len(rest) != 2 || string(rest[1].Body) != `{"n":4}` {
		t.Fatalf("second txn = %q %+v %v", txn, rest, err)
	}
	if err := s.DeleteFederationTxn(ctx, "b.example", "t3"); err != nil {
		t.Fatal(err)
	}
	if txn, none, err := s.NextFederationTxn(ctx, "b.example", "t4", 50, 100); err != nil || txn != "" || none != nil {
		t.Fatalf("empty queue = %q %+v %v", txn, none, err)
	}

	r, err := s.FederationRetry(ctx, "b.example")
	if err != nil || r.Failures != 0 {
		t.Fatalf("no retry state = %+v %v", r, err)
	}
	if err := s.SetFederationRetry(ctx, store.DestinationRetry{Destination: "b.example", Failures: 3, RetryTS: 99}); err != nil {
		t.Fatal(err)
	}
	if r, _ := s.FederationRetry(ctx, "b.example"); r.Failures != 3 || r.RetryTS != 99 {
		t.Fatalf("retry = %+v", r)
	}
	if err := s.SetFederationRetry(ctx, store.DestinationRetry{Destination: "b.example"}); err != nil {
		t.Fatal(err)
	}
	if r, _ := s.FederationRetry(ctx, "b.example"); r.Failures != 0 {
		t.Fatalf("cleared retry = %+v", r)
	}

	if _, err := s.InboundTxn(ctx, "b.example", "x"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown inbound txn: %v", err)
	}
	if err := s.PutInboundTxn(ctx, "b.example", "x", []byte(`{"pdus":{}}`), 100, 0); err != nil {
		t.Fatal(err)
	}
	if a, err := s.InboundTxn(ctx, "b.example", "x"); err != nil || string(a) != `{"pdus":{}}` {
		t.Fatalf("inbound txn = %s %v", a, err)
	}
	// Expiry forgets old answers.
	if err := s.PutInboundTxn(ctx, "b.example", "y", []byte(`{}`), 300, 200); err != nil {
		t.Fatal(err)
	}
	if _, err := s.InboundTxn(ctx, "b.example", "x"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("expired inbound txn: %v", err)
	}
}
