package media

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"
)

// create reserves a media ID and returns it and its expiry.
func (e *env) create(token string) (string, int64) {
	e.t.Helper()
	v := mustJSON(e.t, e.req("POST", "/_matrix/media/v1/create", token, strings.NewReader("{}"), "Content-Type", "application/json"))
	uri, _ := v["content_uri"].(string)
	_, id, ok := parseMXC(uri)
	if !ok {
		e.t.Fatalf("content_uri = %q", uri)
	}
	exp, _ := v["unused_expires_at"].(float64)
	return id, int64(exp)
}

func putPath(id string) string { return "/_matrix/media/v3/upload/test/" + id }

func TestAsyncUpload(t *testing.T) {
	e := newEnv(t)
	before := time.Now()
	id, exp := e.create(alice)
	if d := time.UnixMilli(exp).Sub(before); d < 23*time.Hour || d > 25*time.Hour {
		t.Fatalf("unused_expires_at is %s away, want 24h", d)
	}
	// Not uploaded yet: 504 after timeout_ms.
	start := time.Now()
	mustErr(t, e.req("GET", download(id)+"?timeout_ms=200", alice, nil), 504, "M_NOT_YET_UPLOADED")
	if d := time.Since(start); d < 200*time.Millisecond || d > 5*time.Second {
		t.Fatalf("waited %s for timeout_ms=200", d)
	}
	mustErr(t, e.req("GET", thumbPath(id, 32, 32, "crop")+"&timeout_ms=0", alice, nil), 504, "M_NOT_YET_UPLOADED")
	mustErr(t, e.req("GET", download(id)+"?timeout_ms=-5", alice, nil), 504, "M_NOT_YET_UPLOADED")
	// Reserved under the freeze: the legacy path says no at once.
	mustErr(t, e.req("GET", "/_matrix/media/v3/download/test/"+id+"?timeout_ms=10000", "", nil), 404, "M_NOT_FOUND")

	// Someone else may not fill it.
	mustErr(t, e.req("PUT", putPath(id), bob, strings.NewReader("mine")), 403, "M_FORBIDDEN")

	// A download waiting when the content arrives gets it.
	data := pngBytes(t, 64, 48)
	got := make(chan []byte, 1)
	go func() {
		resp, err := e.srv.Client().Get(e.srv.URL + download(id) + "?timeout_ms=10000&access_token=" + alice)
		if err != nil {
			got <- nil
			return
		}
		defer resp.Body.Close()
		b, _ := readAllErr(resp)
		got <- b
	}()
	time.Sleep(100 * time.Millisecond)
	if v := mustJSON(t, e.req("PUT", putPath(id)+"?filename=graph.png", alice, bytes.NewReader(data), "Content-Type", "image/png")); len(v) != 0 {
		t.Fatalf("PUT answered %v, want {}", v)
	}
	select {
	case b := <-got:
		if !bytes.Equal(b, data) {
			t.Fatalf("waiting download got %d bytes", len(b))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("waiting download was not woken")
	}
	resp := e.req("GET", download(id), alice, nil)
	if resp.Header.Get("Content-Type") != "image/png" || resp.Header.Get("Content-Disposition") != `inline; filename="graph.png"` {
		t.Fatalf("headers %v", resp.Header)
	}

	// Twice: 409, and the first content stays.
	mustErr(t, e.req("PUT", putPath(id), alice, strings.NewReader("again")), 409, "M_CANNOT_OVERWRITE_MEDIA")
	if b := readAll(t, e.req("GET", download(id), alice, nil)); !bytes.Equal(b, data) {
		t.Fatal("content changed by a refused overwrite")
	}
	// Unknown and foreign IDs.
	mustErr(t, e.req("PUT", putPath("neverCreated"), alice, strings.NewReader("x")), 404, "M_NOT_FOUND")
	mustErr(t, e.req("PUT", "/_matrix/media/v3/upload/other.server/"+id, alice, strings.NewReader("x")), 404, "M_NOT_FOUND")
	mustErr(t, e.req("PUT", "/_matrix/media/v3/upload/test/bad.id", alice, strings.NewReader("x")), 404, "M_NOT_FOUND")
	if tmp := e.files("tmp"); len(tmp) != 0 {
		t.Fatalf("temporary files left: %v", tmp)
	}
}

func TestAsyncUploadLimits(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.PendingUploads.MaxPerUser = 2; c.MaxUploadBytes = 100; c.UserQuotaBytes = 150 })
	a, _ := e.create(alice)
	b, _ := e.create(alice)
	mustErr(t, e.req("POST", "/_matrix/media/v1/create", alice, nil), 429, "M_LIMIT_EXCEEDED")
	e.create(bob) // Bob has his own allowance

	// Too large, then over quota: the reservation stays usable.
	mustErr(t, e.req("PUT", putPath(a), alice, bytes.NewReader(make([]byte, 101))), 413, "M_TOO_LARGE")
	mustJSON(t, e.req("PUT", putPath(a), alice, bytes.NewReader(make([]byte, 100))))
	mustErr(t, e.req("PUT", putPath(b), alice, bytes.NewReader(bytes.Repeat([]byte{1}, 60))), 403, "M_FORBIDDEN")
	mustJSON(t, e.req("PUT", putPath(b), alice, bytes.NewReader(bytes.Repeat([]byte{1}, 50))))
	// Both filled: Alice may create again.
	e.create(alice)

	// An expired reservation is gone.
	later := time.Now().Add(25 * time.Hour)
	c, _ := e.create(bob)
	e.clock.Store(&later)
	mustErr(t, e.req("PUT", putPath(c), bob, strings.NewReader("late")), 404, "M_NOT_FOUND")
	mustErr(t, e.req("GET", download(c)+"?timeout_ms=0", bob, nil), 404, "M_NOT_FOUND")
	if tmp := e.files("tmp"); len(tmp) != 0 {
		t.Fatalf("temporary files left: %v", tmp)
	}
}

// TestConcurrentPutsToOneID races two uploads into one reservation: one
// wins, the other gets 409, and no stray file stays.
func TestConcurrentPutsToOneID(t *testing.T) {
	e := newEnv(t)
	id, _ := e.create(alice)
	codes := make(chan int, 2)
	for i := 0; i < 2; i++ {
		go func(i int) {
			req, _ := newRequest(e, putPath(id))
			req.Method = "PUT"
			req.Body = io.NopCloser(bytes.NewReader(bytes.Repeat([]byte{byte(i)}, 1<<20)))
			req.ContentLength = 1 << 20
			resp, err := e.srv.Client().Do(req)
			if err != nil {
				codes <- 0
				return
			}
			resp.Body.Close()
			codes <- resp.StatusCode
		}(i)
	}
	a, b := <-codes, <-codes
	if !(a == 200 && b == 409 || a == 409 && b == 200) {
		t.Fatalf("statuses %d and %d, want 200 and 409", a, b)
	}
	if blobs := e.files("blobs"); len(blobs) != 1 {
		t.Fatalf("blobs = %v", blobs)
	}
	if tmp := e.files("tmp"); len(tmp) != 0 {
		t.Fatalf("temporary files left: %v", tmp)
	}
}
