package route

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
)

func TestRoutesListsWhatWasRegistered(t *testing.T) {
	rt := New(slog.New(slog.DiscardHandler), nil, nil)
	ok := func(w http.ResponseWriter, r *http.Request) error { return nil }
	rt.Handle("/a/{x}", Methods{http.MethodPost: ok, http.MethodGet: ok})
	rt.Handle("/b", Methods{http.MethodPut: ok})
	want := []Route{{Path: "/a/{x}", Methods: []string{"GET", "POST"}}, {Path: "/b", Methods: []string{"PUT"}}}
	if got := rt.Routes(); !reflect.DeepEqual(got, want) {
		t.Fatalf("Routes() = %v, want %v", got, want)
	}
}

// A NUL or invalid UTF-8 in the path or a query parameter is refused
// before the handler (PostgreSQL cannot store either in text).
func TestNULAndInvalidUTF8Refused(t *testing.T) {
	rt := New(slog.New(slog.DiscardHandler), nil, nil)
	called := 0
	rt.Handle("/a/{x}", Methods{http.MethodGet: func(w http.ResponseWriter, r *http.Request) error { called++; return nil }})
	srv := httptest.NewServer(rt)
	defer srv.Close()
	for target, want := range map[string]int{"/a/x": 200, "/a/%C3%A9?q=%C3%A9": 200, "/a/%00": 400, "/a/%ff": 400, "/a/x?q=%00": 400, "/a/x?%ff=1": 400} {
		res, err := http.Get(srv.URL + target)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != want || want == 400 && !strings.Contains(string(b), `"M_INVALID_PARAM"`) {
			t.Errorf("%s: %d %s, want %d", target, res.StatusCode, b, want)
		}
	}
	if called != 2 {
		t.Errorf("the handler ran %d times, want 2", called)
	}
}
