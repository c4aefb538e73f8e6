package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/salonhq/salon/homeserver/mxtest"
)

// TestGzipJSONOverHTTP: the real server gzips /sync and /pushrules (over
// 4 KiB here) for a client that accepts it (browsers always do), and the
// bytes decompress to the same JSON a client without gzip gets; a small
// answer goes out as it is, gzip would save less than it costs.
func TestGzipJSONOverHTTP(t *testing.T) {
	srv := startServer(t, "sqlite:salon.db")
	alice := mxtest.Register(t, srv.URL, "alice", "password alice")
	for i := 0; i < 6; i++ {
		alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"name": "a room with a name"})
	}
	for i := 0; i < 12; i++ {
		alice.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/pushrules/global/content/%s", fmt.Sprintf("keyword%02d", i)),
			map[string]any{"pattern": fmt.Sprintf("keyword number %d of this test", i), "actions": []any{"notify"}})
	}
	raw := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	fetch := func(path, acceptEncoding string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+alice.Token)
		if acceptEncoding != "" {
			req.Header.Set("Accept-Encoding", acceptEncoding)
		}
		res, err := raw.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		return res, b
	}
	if res, small := fetch("/_matrix/client/v3/account/whoami", "gzip"); res.Header.Get("Content-Encoding") != "" || len(small) >= 4096 {
		t.Fatalf("whoami (%d bytes): Content-Encoding %q, want none under 4 KiB", len(small), res.Header.Get("Content-Encoding"))
	}
	for _, path := range []string{"/_matrix/client/v3/pushrules/", "/_matrix/client/v3/sync?timeout=0"} {
		res, zipped := fetch(path, "gzip, deflate, br")
		if res.StatusCode != 200 || res.Header.Get("Content-Encoding") != "gzip" {
			t.Fatalf("%s: status %d, Content-Encoding %q", path, res.StatusCode, res.Header.Get("Content-Encoding"))
		}
		zr, err := gzip.NewReader(bytes.NewReader(zipped))
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		body, err := io.ReadAll(zr)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatalf("%s: the decompressed body is not JSON: %v", path, err)
		}
		plainRes, plain := fetch(path, "")
		if plainRes.Header.Get("Content-Encoding") != "" {
			t.Fatalf("%s: compressed for a client that did not ask", path)
		}
		t.Logf("%s: %d bytes, %d gzipped", path, len(plain), len(zipped))
		if len(zipped) >= len(plain) {
			t.Errorf("%s: gzip did not shrink it (%d >= %d)", path, len(zipped), len(plain))
		}
		if path == "/_matrix/client/v3/pushrules/" {
			var p map[string]any
			if err := json.Unmarshal(plain, &p); err != nil || p["global"] == nil || m["global"] == nil {
				t.Fatalf("pushrules: plain %v, gzipped %v", p["global"] != nil, m["global"] != nil)
			}
		} else if m["next_batch"] == nil {
			t.Fatalf("sync: no next_batch in %s", body)
		}
	}
}
