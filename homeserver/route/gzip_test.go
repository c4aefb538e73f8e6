package route

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/salonhq/salon/internal/mxerr"
)

// mediumJSON is a JSON body under gzipMinSize (3 KiB): a woken /sync's
// answer, sent as it is.
var mediumJSON = []byte(`{"events":"` + strings.Repeat("0123456789abcdef", 192) + `"}`)

func gzipTestServer(t *testing.T) *httptest.Server {
	t.Helper()
	rt := New(slog.New(slog.NewTextHandler(io.Discard, nil)), nil, nil)
	big := map[string]any{"events": strings.Repeat(`{"type":"m.room.message","content":{"body":"hello"}},`, 200)}
	rt.Handle("/big", Methods{http.MethodGet: func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Content-Type", "application/json")
		return json.NewEncoder(w).Encode(big)
	}})
	rt.Handle("/small", Methods{http.MethodGet: func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Content-Type", "application/json")
		_, err := w.Write([]byte(`{"ok":true}`))
		return err
	}})
	rt.Handle("/medium", Methods{http.MethodGet: func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Content-Type", "application/json")
		_, err := w.Write(mediumJSON)
		return err
	}})
	rt.Handle("/png", Methods{http.MethodGet: func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Content-Type", "image/png")
		_, err := w.Write(bytes.Repeat([]byte{0x89}, 4096))
		return err
	}})
	rt.Handle("/error", Methods{http.MethodGet: func(w http.ResponseWriter, r *http.Request) error {
		return mxerr.New(mxerr.Forbidden, "%s", strings.Repeat("no ", 2000))
	}})
	rt.Handle("/empty", Methods{http.MethodPut: func(w http.ResponseWriter, r *http.Request) error {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}})
	srv := httptest.NewServer(rt)
	t.Cleanup(srv.Close)
	return srv
}

// get fetches a path with the given Accept-Encoding, with Go's transparent
// decompression off, so the test sees the bytes on the wire.
func get(t *testing.T, method, url, acceptEncoding string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if acceptEncoding != "" {
		req.Header.Set("Accept-Encoding", acceptEncoding)
	}
	c := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, body
}

func gunzip(t *testing.T, b []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("not gzip: %v", err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("corrupt gzip: %v", err)
	}
	return out
}

func TestGzipJSONWhenAccepted(t *testing.T) {
	srv := gzipTestServer(t)
	plainRes, plain := get(t, http.MethodGet, srv.URL+"/big", "")
	if plainRes.Header.Get("Content-Encoding") != "" {
		t.Fatalf("compressed without Accept-Encoding: %q", plainRes.Header.Get("Content-Encoding"))
	}
	for _, ae := range []string{"gzip", "gzip, deflate, br, zstd", "br;q=1.0, gzip;q=0.8", "*"} {
		res, body := get(t, http.MethodGet, srv.URL+"/big", ae)
		if res.StatusCode != http.StatusOK || res.Header.Get("Content-Encoding") != "gzip" {
			t.Fatalf("Accept-Encoding %q: status %d, Content-Encoding %q", ae, res.StatusCode, res.Header.Get("Content-Encoding"))
		}
		if !strings.Contains(res.Header.Get("Vary"), "Accept-Encoding") {
			t.Errorf("Accept-Encoding %q: no Vary: Accept-Encoding", ae)
		}
		if got := gunzip(t, body); !bytes.Equal(got, plain) {
			t.Fatalf("Accept-Encoding %q: the decompressed body differs from the plain one", ae)
		}
		if len(body)*4 > len(plain) {
			t.Errorf("Accept-Encoding %q: %d bytes gzipped for %d plain", ae, len(body), len(plain))
		}
	}
}

func TestGzipNotWhenRefusedOrNotWorthIt(t *testing.T) {
	srv := gzipTestServer(t)
	cases := []struct{ method, path, ae string }{
		{http.MethodGet, "/big", "gzip;q=0"},
		{http.MethodGet, "/big", "identity"},
		{http.MethodGet, "/big", "br"},
		{http.MethodGet, "/small", "gzip"},
		{http.MethodGet, "/medium", "gzip"},
		{http.MethodGet, "/png", "gzip"},
		{http.MethodHead, "/big", "gzip"},
		{http.MethodPut, "/empty", "gzip"},
	}
	for _, c := range cases {
		res, body := get(t, c.method, srv.URL+c.path, c.ae)
		if ce := res.Header.Get("Content-Encoding"); ce != "" {
			t.Errorf("%s %s with %q: Content-Encoding %q", c.method, c.path, c.ae, ce)
		}
		switch c.path {
		case "/small":
			if string(body) != `{"ok":true}` || res.Header.Get("Content-Length") != "11" {
				t.Errorf("small JSON: body %q, Content-Length %q", body, res.Header.Get("Content-Length"))
			}
		case "/medium":
			if !bytes.Equal(body, mediumJSON) || res.Header.Get("Content-Length") != strconv.Itoa(len(mediumJSON)) {
				t.Errorf("medium JSON: %d bytes, Content-Length %q", len(body), res.Header.Get("Content-Length"))
			}
		case "/png":
			if len(body) != 4096 {
				t.Errorf("png: %d bytes", len(body))
			}
		case "/empty":
			if res.StatusCode != http.StatusNoContent || len(body) != 0 {
				t.Errorf("empty: %d, %d bytes", res.StatusCode, len(body))
			}
		}
	}
}

func TestGzipMatrixErrors(t *testing.T) {
	srv := gzipTestServer(t)
	res, body := get(t, http.MethodGet, srv.URL+"/error", "gzip")
	if res.StatusCode != http.StatusForbidden || res.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("status %d, Content-Encoding %q", res.StatusCode, res.Header.Get("Content-Encoding"))
	}
	var e struct {
		Errcode string `json:"errcode"`
	}
	if err := json.Unmarshal(gunzip(t, body), &e); err != nil || e.Errcode != "M_FORBIDDEN" {
		t.Fatalf("error body: %v %+v", err, e)
	}
	// An unknown path is not a route's: the 404 is plain and still right.
	res, body = get(t, http.MethodGet, srv.URL+"/nowhere", "gzip")
	if res.StatusCode != http.StatusNotFound || !strings.Contains(string(body), "M_UNRECOGNIZED") {
		t.Fatalf("unknown path: %d %s", res.StatusCode, body)
	}
}

func TestAcceptsGzip(t *testing.T) {
	for ae, want := range map[string]bool{
		"":                    false,
		"gzip":                true,
		"GZIP":                true,
		"x-gzip":              true,
		"deflate, gzip;q=0.5": true,
		"gzip;q=0":            false,
		"gzip; q=0.000":       false,
		"*;q=0":               false,
		"identity":            false,
		"br, zstd":            false,
	} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		if ae != "" {
			r.Header.Set("Accept-Encoding", ae)
		}
		if got := acceptsGzip(r); got != want {
			t.Errorf("acceptsGzip(%q) = %v, want %v", ae, got, want)
		}
	}
}

// TestGzipBoundedCompressors: while every compressor slot is taken (a
// fan-out to thousands of long-polls at once), a JSON answer goes out
// whole and uncompressed; once one is free, answers are compressed again
// and each gives its slot back.
func TestGzipBoundedCompressors(t *testing.T) {
	srv := gzipTestServer(t)
	_, plain := get(t, http.MethodGet, srv.URL+"/big", "")
	n := cap(gzipSlots)
	for range n {
		gzipSlots <- struct{}{}
	}
	res, body := get(t, http.MethodGet, srv.URL+"/big", "gzip")
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Encoding") != "" || !bytes.Equal(body, plain) {
		t.Fatalf("with no compressor free: status %d, Content-Encoding %q, %d bytes for %d", res.StatusCode,
			res.Header.Get("Content-Encoding"), len(body), len(plain))
	}
	for range n {
		<-gzipSlots
	}
	for range n + 2 {
		res, body = get(t, http.MethodGet, srv.URL+"/big", "gzip")
		if res.Header.Get("Content-Encoding") != "gzip" || !bytes.Equal(gunzip(t, body), plain) {
			t.Fatalf("with compressors free again: Content-Encoding %q", res.Header.Get("Content-Encoding"))
		}
	}
	if len(gzipSlots) != 0 {
		t.Fatalf("%d slots still taken after the answers", len(gzipSlots))
	}
}

// BenchmarkGzipSmallAnswer: what compressing a long-poll's answer (one
// room, two messages, their senders' member events: 1.5 KB) costs and
// saves, against a 10 KB body, with the compressors the router uses.
func BenchmarkGzipSmallAnswer(b *testing.B) {
	ev := `{"content":{"body":"message 1234 from the load generator, hello everybody","msgtype":"m.text"},"event_id":"$aGVsbG8gd29ybGQgdGhpcyBpcyBhbiBldmVudCBpZA","origin_server_ts":1733360000000,"sender":"@user1234:localhost","type":"m.room.message","unsigned":{"age":12,"membership":"join"}}`
	mem := `{"content":{"displayname":"user1234","membership":"join"},"event_id":"$bWVtYmVyIGV2ZW50IGlkIGZvciB1c2VyMTIzNA","origin_server_ts":1733350000000,"sender":"@user1234:localhost","state_key":"@user1234:localhost","type":"m.room.member","unsigned":{"age":10000012,"membership":"join"}}`
	small := `{"next_batch":"s1234_5_6_7_8_9_10","rooms":{"join":{"!abcdefghijklmnop:localhost":{"timeline":{"events":[` +
		ev + "," + strings.ReplaceAll(ev, "1234", "1235") + `],"limited":false,"prev_batch":"t1233"},"state":{"events":[` +
		mem + "," + strings.ReplaceAll(mem, "1234", "1235") + `]},"unread_notifications":{"notification_count":17,"highlight_count":0}}}}}`
	for _, body := range []string{small, strings.Repeat(ev, 32)} {
		b.Run(strconv.Itoa(len(body)/100*100)+"B", func(b *testing.B) {
			var out bytes.Buffer
			for b.Loop() {
				out.Reset()
				w := gzipWriters.Get().(*gzip.Writer)
				w.Reset(&out)
				_, _ = w.Write([]byte(body))
				_ = w.Close()
				gzipWriters.Put(w)
			}
			b.ReportMetric(float64(len(body)-out.Len()), "saved-bytes")
		})
	}
}
