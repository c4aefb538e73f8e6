package web

import (
	"bytes"
	"compress/gzip"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
)

var bigJS = strings.Repeat("console.log('salon');\n", 200)

func testBundle() fstest.MapFS {
	return fstest.MapFS{
		".gitkeep":                  {Data: nil},
		".vite/manifest.json":       {Data: []byte(`{}`)},
		"index.html":                {Data: []byte(`<!doctype html><div id="app"></div>`)},
		"favicon.svg":               {Data: []byte(`<svg xmlns="http://www.w3.org/2000/svg"></svg>`)},
		"assets/index-AbC123.js":    {Data: []byte(bigJS)},
		"assets/index-AbC123.js.gz": {Data: gzipBytes([]byte(bigJS))},
		"assets/index-XyZ789.css":   {Data: []byte(`body{margin:0}`)},
		"assets/crypto-Wa5m00.wasm": {Data: []byte("\x00asm\x01\x00\x00\x00")},
	}
}

func do(t *testing.T, h http.Handler, method, target string, hdr map[string]string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func body(t *testing.T, res *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestHandlerRoutes(t *testing.T) {
	h := newHandler(testBundle())
	tests := []struct {
		name, method, path string
		status             int
		wantBody           string // substring
		cache              string
		contentType        string
	}{
		{"root is index", "GET", "/", 200, `<div id="app">`, "no-cache", "text/html; charset=utf-8"},
		{"index by name", "GET", "/index.html", 200, `<div id="app">`, "no-cache", "text/html; charset=utf-8"},
		{"client route falls back to index", "GET", "/room/!abc:example.org", 200, `<div id="app">`, "no-cache", "text/html; charset=utf-8"},
		{"nested client route", "GET", "/settings/language", 200, `<div id="app">`, "no-cache", "text/html; charset=utf-8"},
		{"hashed asset is immutable", "GET", "/assets/index-XyZ789.css", 200, "margin:0", "public, max-age=31536000, immutable", "text/css; charset=utf-8"},
		{"js content type", "GET", "/assets/index-AbC123.js", 200, "salon", "public, max-age=31536000, immutable", "text/javascript; charset=utf-8"},
		{"unhashed file revalidates", "GET", "/favicon.svg", 200, "<svg", "no-cache", "image/svg+xml"},
		{"wasm content type", "GET", "/assets/crypto-Wa5m00.wasm", 200, "asm", "public, max-age=31536000, immutable", "application/wasm"},
		{"missing asset is 404", "GET", "/assets/index-OLD.js", 404, "not found", "no-store", ""},
		{"missing asset without extension under assets is 404", "GET", "/assets/nothing", 404, "not found", "no-store", ""},
		{"missing file with extension is 404", "GET", "/robots.txt", 404, "not found", "no-store", ""},
		{"dotfiles are not served", "GET", "/.gitkeep", 404, "", "", ""},
		{"build manifest is not served", "GET", "/.vite/manifest.json", 404, "", "", ""},
		{"unserved API path is a Matrix 404", "GET", "/_matrix/client/v3/sync", 404, `"M_UNRECOGNIZED"`, "", "application/json"},
		{"unserved well-known is a Matrix 404", "GET", "/.well-known/matrix/server", 404, `"M_UNRECOGNIZED"`, "", "application/json"},
		{"POST is refused", "POST", "/", 405, "", "", ""},
		{"path traversal stays inside", "GET", "/../../etc/passwd", 200, `<div id="app">`, "no-cache", ""},
		{"HEAD has no body", "HEAD", "/", 200, "", "no-cache", "text/html; charset=utf-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := do(t, h, tt.method, tt.path, nil)
			if res.StatusCode != tt.status {
				t.Fatalf("status = %d, want %d", res.StatusCode, tt.status)
			}
			b := body(t, res)
			if tt.wantBody != "" && !strings.Contains(b, tt.wantBody) {
				t.Errorf("body = %q, want it to contain %q", b, tt.wantBody)
			}
			if tt.method == "HEAD" && b != "" {
				t.Errorf("HEAD body = %q", b)
			}
			if tt.cache != "" {
				if got := res.Header.Get("Cache-Control"); got != tt.cache {
					t.Errorf("Cache-Control = %q, want %q", got, tt.cache)
				}
			}
			if tt.contentType != "" {
				if got := res.Header.Get("Content-Type"); got != tt.contentType {
					t.Errorf("Content-Type = %q, want %q", got, tt.contentType)
				}
			}
		})
	}
}

func TestHandlerSecurityHeaders(t *testing.T) {
	h := newHandler(testBundle())
	res := do(t, h, "GET", "http://salon.example.org:8448/", nil)
	csp := res.Header.Get("Content-Security-Policy")
	for _, want := range []string{
		"default-src 'none'",
		"script-src 'self' 'wasm-unsafe-eval';",
		"style-src 'self'",
		"img-src 'self' blob: data:",
		"media-src 'self' blob: data:",
		"connect-src 'self' ws://salon.example.org:8448 wss://salon.example.org:8448",
		"frame-ancestors 'none'",
		"object-src 'none'",
	} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	for _, bad := range []string{"unsafe-inline", "'unsafe-eval'", "http:", "https:", "*"} {
		if strings.Contains(csp, bad) {
			t.Errorf("CSP %q allows %q", csp, bad)
		}
	}
	if got := res.Header.Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("X-Content-Type-Options = %q", got)
	}

	t.Run("hostile Host header is left out of the policy", func(t *testing.T) {
		req := httptest.NewRequest("GET", "/", nil)
		req.Host = "evil.example; script-src *"
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		csp := rec.Result().Header.Get("Content-Security-Policy")
		if strings.Contains(csp, "evil") || strings.Contains(csp, "*") {
			t.Errorf("CSP = %q", csp)
		}
		if !strings.Contains(csp, "connect-src 'self';") {
			t.Errorf("CSP = %q, want connect-src 'self' alone", csp)
		}
	})
}

func TestHandlerGzip(t *testing.T) {
	h := newHandler(testBundle())
	tests := []struct {
		name, ae string
		gz       bool
	}{
		{"gzip accepted", "gzip, deflate, br", true},
		{"gzip with q", "br;q=1.0, gzip;q=0.8", true},
		{"gzip refused with q=0", "gzip;q=0", false},
		{"no Accept-Encoding", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := do(t, h, "GET", "/assets/index-AbC123.js", map[string]string{"Accept-Encoding": tt.ae})
			if res.Header.Get("Vary") != "Accept-Encoding" {
				t.Errorf("Vary = %q", res.Header.Get("Vary"))
			}
			raw, _ := io.ReadAll(res.Body)
			got := string(raw)
			if tt.gz {
				if res.Header.Get("Content-Encoding") != "gzip" {
					t.Fatalf("Content-Encoding = %q", res.Header.Get("Content-Encoding"))
				}
				zr, err := gzip.NewReader(bytes.NewReader(raw))
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(zr)
				got = string(b)
			} else if res.Header.Get("Content-Encoding") != "" {
				t.Fatalf("Content-Encoding = %q", res.Header.Get("Content-Encoding"))
			}
			if got != bigJS {
				t.Errorf("body differs from the file (%d bytes, want %d)", len(got), len(bigJS))
			}
		})
	}

	t.Run("small files are sent as they are", func(t *testing.T) {
		res := do(t, h, "GET", "/assets/index-XyZ789.css", map[string]string{"Accept-Encoding": "gzip"})
		if res.Header.Get("Content-Encoding") != "" || res.Header.Get("Vary") != "" {
			t.Errorf("headers = %v", res.Header)
		}
	})
	t.Run("the .gz file itself is not a route", func(t *testing.T) {
		res := do(t, h, "GET", "/assets/index-AbC123.js.gz", nil)
		if res.StatusCode != 404 {
			t.Errorf("status = %d", res.StatusCode)
		}
	})
}

func TestHandlerETag(t *testing.T) {
	h := newHandler(testBundle())
	res := do(t, h, "GET", "/", nil)
	etag := res.Header.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	res = do(t, h, "GET", "/", map[string]string{"If-None-Match": etag})
	if res.StatusCode != http.StatusNotModified {
		t.Errorf("status = %d, want 304", res.StatusCode)
	}
	res = do(t, h, "GET", "/assets/index-AbC123.js", map[string]string{"Accept-Encoding": "gzip"})
	if gzTag := res.Header.Get("ETag"); !strings.HasSuffix(gzTag, `-gz"`) {
		t.Errorf("gzip ETag = %q, want a distinct tag", gzTag)
	}
}

func TestHandlerNotBuilt(t *testing.T) {
	h := newHandler(fstest.MapFS{".gitkeep": {Data: nil}})
	for _, p := range []string{"/", "/room/x", "/assets/index.js"} {
		res := do(t, h, "GET", p, nil)
		if res.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("%s: status = %d, want 503", p, res.StatusCode)
		}
		if b := body(t, res); !strings.Contains(b, "make build") {
			t.Errorf("%s: body = %q, want build instructions", p, b)
		}
	}
	res := do(t, h, "GET", "/_matrix/client/versions", nil)
	if res.StatusCode != 404 {
		t.Errorf("API path: status = %d", res.StatusCode)
	}
}

// TestEmbeddedBundle checks the bundle compiled into this package: either
// the placeholder of an unbuilt checkout or a real build with index.html
// pointing at hashed assets that exist.
func TestEmbeddedBundle(t *testing.T) {
	h := Handler()
	res := do(t, h, "GET", "/", nil)
	b := body(t, res)
	switch res.StatusCode {
	case http.StatusServiceUnavailable:
		t.Log("web/dist holds no build; the placeholder is served")
		return
	case http.StatusOK:
	default:
		t.Fatalf("status = %d", res.StatusCode)
	}
	refs := 0
	for _, part := range strings.Split(b, `"/assets/`)[1:] {
		name, _, ok := strings.Cut(part, `"`)
		if !ok {
			continue
		}
		refs++
		r := do(t, h, "GET", "/assets/"+name, nil)
		if r.StatusCode != 200 {
			t.Errorf("index.html refers to /assets/%s, which answers %d", name, r.StatusCode)
		}
	}
	if refs == 0 {
		t.Errorf("index.html refers to no /assets/ file:\n%s", b)
	}
	if strings.Contains(b, "http://") || strings.Contains(b, "https://") {
		t.Errorf("index.html refers to another origin:\n%s", b)
	}
}

// countingFS counts the bytes read from its files.
type countingFS struct {
	fstest.MapFS
	read *int
}

func (c countingFS) Open(name string) (fs.File, error) {
	f, err := c.MapFS.Open(name)
	if err != nil {
		return nil, err
	}
	return countingFile{f.(readSeekFile), c.read}, nil
}

type readSeekFile interface {
	fs.File
	io.ReadSeeker
}

type countingFile struct {
	readSeekFile
	read *int
}

func (f countingFile) Read(p []byte) (int, error) {
	n, err := f.readSeekFile.Read(p)
	*f.read += n
	return n, err
}

// The bundle stays where it is (the binary's read-only data) until a file
// is asked for: starting the handler reads no file's bytes, a request
// streams one, and a large text file the build left uncompressed is
// compressed on its first request.
func TestHandlerReadsFilesOnDemand(t *testing.T) {
	bundle := testBundle()
	bigJSON := strings.Repeat(`{"salon":"matrix"},`, 200)
	bundle["manifest-big.json"] = &fstest.MapFile{Data: []byte(bigJSON)}
	read := 0
	h := newHandler(countingFS{bundle, &read})
	if read != 0 {
		t.Fatalf("starting the handler read %d bytes of the bundle", read)
	}
	res := do(t, h, "GET", "/assets/crypto-Wa5m00.wasm", nil)
	if b := body(t, res); b != "\x00asm\x01\x00\x00\x00" || res.Header.Get("Content-Type") != "application/wasm" {
		t.Fatalf("wasm: %q, %v", b, res.Header)
	}
	if read == 0 {
		t.Fatal("a request read nothing")
	}
	res = do(t, h, "GET", "/manifest-big.json", map[string]string{"Accept-Encoding": "gzip"})
	if res.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("a large JSON file without a .gz: Content-Encoding %q", res.Header.Get("Content-Encoding"))
	}
	zr, err := gzip.NewReader(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(zr); string(b) != bigJSON {
		t.Fatalf("compressed body differs (%d bytes)", len(b))
	}
	res = do(t, h, "GET", "/manifest-big.json", map[string]string{"Range": "bytes=0-7"})
	if b := body(t, res); res.StatusCode != http.StatusPartialContent || b != bigJSON[:8] {
		t.Fatalf("range: %d %q", res.StatusCode, b)
	}
}
