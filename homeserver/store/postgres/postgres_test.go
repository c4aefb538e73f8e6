package postgres_test

import (
	"context"
	"testing"

	"github.com/salonhq/salon/homeserver/store"
	"github.com/salonhq/salon/homeserver/store/postgres"
	"github.com/salonhq/salon/homeserver/store/postgres/pgtest"
	"github.com/salonhq/salon/homeserver/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return pgtest.Open(t)
	})
}

func TestReopenSameAnswers(t *testing.T) {
	storetest.RunReopen(t, reopener)
}

func TestReopenKeys(t *testing.T) {
	storetest.RunReopenKeys(t, reopener)
}

func reopener(t *testing.T) (store.Store, func(*testing.T, store.Store) store.Store) {
	url := pgtest.URL(t)
	open := func(t *testing.T) store.Store {
		s, err := postgres.Open(context.Background(), url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	return open(t), func(t *testing.T, s store.Store) store.Store {
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		return open(t)
	}
}

// TestQueryTimeoutParameter: salon_query_timeout in the URL is Salon's
// (not sent to PostgreSQL as a session setting, which would refuse the
// connection); a value that is not a duration is refused at Open.
func TestQueryTimeoutParameter(t *testing.T) {
	url := pgtest.URL(t)
	s, err := postgres.Open(context.Background(), url+"&salon_query_timeout=5s")
	if err != nil {
		t.Fatalf("Open with salon_query_timeout=5s: %v", err)
	}
	if err := s.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := postgres.Open(context.Background(), url+"&salon_query_timeout=soon"); err == nil {
		t.Fatal("Open with salon_query_timeout=soon succeeded")
	}
}
