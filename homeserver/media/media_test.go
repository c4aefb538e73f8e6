package media

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/salonhq/salon/homeserver/store/sqlite"
	"github.com/salonhq/salon/homeserver/store/sqlstore"
	"github.com/salonhq/salon/internal/mxerr"
	"github.com/salonhq/salon/internal/redact"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var bg = context.Background()

// fakeAuth maps access tokens to user IDs.
type fakeAuth map[string]string

func (f fakeAuth) Authenticate(_ context.Context, token redact.Secret, _ string) (string, error) {
	if u, ok := f[string(token)]; ok {
		return u, nil
	}
	return "", mxerr.New(mxerr.UnknownToken, "Unknown access token")
}

const (
	alice = "alice-token"
	bob   = "bob-token"
)

// env is a media repository over a real SQLite store, served over HTTP on
// a loopback port.
type env struct {
	t     testing.TB
	dir   string
	st    *sqlstore.Store
	repo  *Repo
	srv   *httptest.Server
	reg   *prometheus.Registry
	clock atomic.Pointer[time.Time] // nil: real time
	// events stands in for the rooms (media.restrict_to_rooms).
	events fakeEvents
}

func newEnv(t testing.TB, edit ...func(*Config)) *env {
	t.Helper()
	cfg := Defaults()
	for _, e := range edit {
		e(&cfg)
	}
	e := &env{t: t, dir: t.TempDir(), reg: prometheus.NewRegistry(), events: fakeEvents{}}
	st, err := sqlite.Open(bg, filepath.Join(e.dir, "salon.db"), sqlite.Options{Synchronous: "normal"})
	if err != nil {
		t.Fatal(err)
	}
	e.st = st
	e.repo, err = New(Params{
		Config: cfg, ServerName: "test", DataDir: e.dir, Store: st,
		Auth:       fakeAuth{alice: "@alice:test", bob: "@bob:test"},
		Registerer: e.reg,
		Events:     e.events,
		Now: func() time.Time {
			if c := e.clock.Load(); c != nil {
				return *c
			}
			return time.Now()
		},
	})
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	e.srv = httptest.NewServer(e.repo.Handler())
	t.Cleanup(func() {
		e.srv.Close()
		st.Close()
	})
	return e
}

// req sends a request; token "" sends none.
func (e *env) req(method, path, token string, body io.Reader, header ...string) *http.Response {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	e.t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func readAll(t testing.TB, resp *http.Response) []byte {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// mustErr checks a Matrix error answer.
func mustErr(t testing.TB, resp *http.Response, status int, code string) {
	t.Helper()
	b := readAll(t, resp)
	var body struct{ Errcode string }
	_ = json.Unmarshal(b, &body)
	if resp.StatusCode != status || body.Errcode != code {
		t.Fatalf("%s %s = %d %s, want %d %s", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, b, status, code)
	}
}

func mustJSON(t testing.TB, resp *http.Response) map[string]any {
	t.Helper()
	b := readAll(t, resp)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s = %d %s", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, b)
	}
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return v
}

// upload posts data and returns the media ID.
func (e *env) upload(token, contentType, filename string, data []byte) string {
	e.t.Helper()
	path := "/_matrix/media/v3/upload"
	if filename != "" {
		path += "?filename=" + urlEscape(filename)
	}
	var hdr []string
	if contentType != "" {
		hdr = []string{"Content-Type", contentType}
	}
	v := mustJSON(e.t, e.req("POST", path, token, bytes.NewReader(data), hdr...))
	uri, _ := v["content_uri"].(string)
	server, id, ok := parseMXC(uri)
	if !ok || server != "test" {
		e.t.Fatalf("content_uri = %q", uri)
	}
	return id
}

func urlEscape(s string) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

func download(id string) string { return "/_matrix/client/v1/media/download/test/" + id }

// files lists the regular files under dir/media/sub.
func (e *env) files(sub string) []string {
	var out []string
	_ = filepath.WalkDir(filepath.Join(e.dir, "media", sub), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// mediaRows counts media IDs by purging a copy of nothing: it asks the
// usage of each user we use.
func (e *env) usage(user string) int64 {
	n, err := e.st.MediaUsage(bg, user)
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

func TestUploadDownloadRoundTrip(t *testing.T) {
	e := newEnv(t)
	data := []byte("%PDF-1.4 lecture notes\n")
	id := e.upload(alice, "application/pdf", "Week 1 notes.pdf", data)

	resp := e.req("GET", download(id), alice, nil)
	if got := readAll(t, resp); resp.StatusCode != 200 || !bytes.Equal(got, data) {
		t.Fatalf("download = %d %q", resp.StatusCode, got)
	}
	sum := sha256.Sum256(data)
	want := map[string]string{
		"Content-Type":                 "application/pdf",
		"Content-Disposition":          `attachment; filename="Week 1 notes.pdf"`,
		"Content-Length":               fmt.Sprint(len(data)),
		"ETag":                         `"` + hex.EncodeToString(sum[:]) + `"`,
		"Cache-Control":                "private, max-age=31536000, immutable",
		"X-Content-Type-Options":       "nosniff",
		"Cross-Origin-Resource-Policy": "cross-origin",
		"Access-Control-Allow-Origin":  "*",
		"Accept-Ranges":                "bytes",
	}
	for k, v := range want {
		if got := resp.Header.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.HasPrefix(csp, "sandbox; default-src 'none'; script-src 'none';") {
		t.Errorf("Content-Security-Policy = %q", csp)
	}

	// The file name in the path overrides the uploaded one.
	resp = e.req("GET", download(id)+"/other.pdf", alice, nil)
	if cd := resp.Header.Get("Content-Disposition"); cd != `attachment; filename="other.pdf"` {
		t.Fatalf("override Content-Disposition = %q", cd)
	}
	// The access token may come in the query string.
	resp = e.req("GET", download(id)+"?access_token="+alice, "", nil)
	if got := readAll(t, resp); !bytes.Equal(got, data) {
		t.Fatalf("download with access_token = %d", resp.StatusCode)
	}
	// Uploaded under the authenticated media freeze: not on the legacy
	// unauthenticated path (TestAuthenticatedMediaFreeze).
	mustErr(t, e.req("GET", "/_matrix/media/v3/download/test/"+id, "", nil), 404, "M_NOT_FOUND")
	// HEAD answers the headers only.
	resp = e.req("HEAD", download(id), alice, nil)
	if resp.StatusCode != 200 || resp.ContentLength != int64(len(data)) {
		t.Fatalf("HEAD = %d, length %d", resp.StatusCode, resp.ContentLength)
	}
	// No file name at upload: no file name in the header.
	id2 := e.upload(alice, "image/png", "", []byte("png-ish"))
	resp = e.req("GET", download(id2), alice, nil)
	if cd := resp.Header.Get("Content-Disposition"); cd != "inline" {
		t.Fatalf("Content-Disposition without a name = %q", cd)
	}
}

func TestUploadStoresContentOnce(t *testing.T) {
	e := newEnv(t)
	data := bytes.Repeat([]byte("same slides "), 1000)
	a := e.upload(alice, "application/pdf", "a.pdf", data)
	b := e.upload(bob, "application/pdf", "b.pdf", data)
	if a == b {
		t.Fatal("two uploads got the same media ID")
	}
	blobs := e.files("blobs")
	if len(blobs) != 1 {
		t.Fatalf("blobs on disk = %v, want one", blobs)
	}
	// Sharded by hash prefix, named by the hash, never by the file name.
	sum := sha256.Sum256(data)
	h := hex.EncodeToString(sum[:])
	if want := filepath.Join(e.dir, "media", "blobs", h[:2], h[2:4], h); blobs[0] != want {
		t.Fatalf("blob path = %s, want %s", blobs[0], want)
	}
	if tmp := e.files("tmp"); len(tmp) != 0 {
		t.Fatalf("temporary files left: %v", tmp)
	}
	for _, id := range []string{a, b} {
		if got := readAll(t, e.req("GET", download(id), alice, nil)); !bytes.Equal(got, data) {
			t.Fatalf("%s differs", id)
		}
	}
}

func TestRangeAndConditionalRequests(t *testing.T) {
	e := newEnv(t)
	data := make([]byte, 10000)
	for i := range data {
		data[i] = byte(i * 7)
	}
	id := e.upload(alice, "video/mp4", "lecture.mp4", data)
	etag := e.req("HEAD", download(id), alice, nil).Header.Get("ETag")

	for _, tc := range []struct {
		name, rng  string
		status     int
		from, to   int // inclusive byte range of the body
		contentRng string
	}{
		{"middle", "bytes=100-199", 206, 100, 199, "bytes 100-199/10000"},
		{"open end", "bytes=9990-", 206, 9990, 9999, "bytes 9990-9999/10000"},
		{"suffix", "bytes=-10", 206, 9990, 9999, "bytes 9990-9999/10000"},
		{"past the end clipped", "bytes=9000-20000", 206, 9000, 9999, "bytes 9000-9999/10000"},
		{"unsatisfiable", "bytes=20000-", 416, 0, -1, "bytes */10000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := e.req("GET", download(id), alice, nil, "Range", tc.rng)
			body := readAll(t, resp)
			if resp.StatusCode != tc.status || resp.Header.Get("Content-Range") != tc.contentRng {
				t.Fatalf("status %d, Content-Range %q", resp.StatusCode, resp.Header.Get("Content-Range"))
			}
			if tc.status == 206 && !bytes.Equal(body, data[tc.from:tc.to+1]) {
				t.Fatalf("body is not bytes %d-%d", tc.from, tc.to)
			}
		})
	}
	t.Run("multiple ranges", func(t *testing.T) {
		resp := e.req("GET", download(id), alice, nil, "Range", "bytes=0-9,100-109")
		if resp.StatusCode != 206 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "multipart/byteranges") {
			t.Fatalf("status %d, %q", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	})
	t.Run("If-None-Match", func(t *testing.T) {
		resp := e.req("GET", download(id), alice, nil, "If-None-Match", etag)
		if resp.StatusCode != http.StatusNotModified || len(readAll(t, resp)) != 0 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		resp = e.req("GET", download(id), alice, nil, "If-None-Match", `"something else"`)
		if resp.StatusCode != 200 {
			t.Fatalf("other ETag: status %d", resp.StatusCode)
		}
	})
	t.Run("If-Range", func(t *testing.T) {
		resp := e.req("GET", download(id), alice, nil, "Range", "bytes=0-9", "If-Range", etag)
		if resp.StatusCode != 206 {
			t.Fatalf("matching If-Range: %d", resp.StatusCode)
		}
		resp = e.req("GET", download(id), alice, nil, "Range", "bytes=0-9", "If-Range", `"stale"`)
		if resp.StatusCode != 200 || len(readAll(t, resp)) != len(data) {
			t.Fatalf("stale If-Range: %d", resp.StatusCode)
		}
	})
}

// TestSafeTypes checks that nothing a user uploads can run script in the
// server's origin: only image, audio and video types are inline, and every
// response is sandboxed.
func TestSafeTypes(t *testing.T) {
	// Without the freeze, so the legacy path serves new uploads too.
	e := newEnv(t, func(c *Config) { c.AuthenticatedMedia = false })
	for _, tc := range []struct {
		name, sent, served, disposition string
	}{
		{"html", "text/html", "text/html", "attachment"},
		{"html with charset", "text/html; charset=utf-8", "text/html; charset=utf-8", "attachment"},
		{"svg", "image/svg+xml", "image/svg+xml", "attachment"},
		{"xhtml", "application/xhtml+xml", "application/xhtml+xml", "attachment"},
		{"javascript", "application/javascript", "application/javascript", "attachment"},
		{"plain text", "text/plain", "text/plain", "attachment"},
		{"pdf", "application/pdf", "application/pdf", "attachment"},
		{"png", "image/png", "image/png", "inline"},
		{"jpeg upper case", "IMAGE/JPEG", "image/jpeg", "inline"},
		{"webm video", "video/webm", "video/webm", "inline"},
		{"ogg audio", "audio/ogg", "audio/ogg", "inline"},
		{"missing", "", "application/octet-stream", "attachment"},
		{"garbage", "not a type", "application/octet-stream", "attachment"},
		{"parameters dropped", "image/png; evil=\"<script>\"", "image/png", "inline"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := e.upload(alice, tc.sent, "f", []byte("<html><script>alert(document.cookie)</script></html>"))
			for _, path := range []string{download(id), "/_matrix/media/v3/download/test/" + id} {
				resp := e.req("GET", path, alice, nil)
				if ct := resp.Header.Get("Content-Type"); ct != tc.served {
					t.Errorf("Content-Type = %q, want %q", ct, tc.served)
				}
				if cd := resp.Header.Get("Content-Disposition"); cd != tc.disposition+`; filename="f"` {
					t.Errorf("Content-Disposition = %q, want %s", cd, tc.disposition)
				}
				if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "sandbox") || !strings.Contains(csp, "script-src 'none'") {
					t.Errorf("Content-Security-Policy = %q", csp)
				}
				if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
					t.Error("no X-Content-Type-Options: nosniff")
				}
			}
		})
	}
}

func TestFileNames(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct{ sent, header string }{
		{"../../etc/passwd", `attachment; filename="_.._etc_passwd"`},
		{`..\..\boot.ini`, `attachment; filename="_.._boot.ini"`},
		{"evil\r\nSet-Cookie: x=1", `attachment; filename="evilSet-Cookie: x=1"`},
		{"tab\tand\x00nul", `attachment; filename="tabandnul"`},
		{"rapport\u202Efdp.exe", `attachment; filename="rapportfdp.exe"`},
		{"Übung 1.pdf", `attachment; filename*=utf-8''%C3%9Cbung%201.pdf`},
		{`quote".pdf`, `attachment; filename="quote\".pdf"`},
		{strings.Repeat("a", 300), `attachment; filename="` + strings.Repeat("a", 255) + `"`},
		{"...", "attachment"},
	} {
		t.Run(tc.sent, func(t *testing.T) {
			id := e.upload(alice, "application/octet-stream", tc.sent, []byte("x"))
			resp := e.req("GET", download(id), alice, nil)
			if cd := resp.Header.Get("Content-Disposition"); cd != tc.header {
				t.Fatalf("Content-Disposition = %q, want %q", cd, tc.header)
			}
		})
	}
	// The override in the path is sanitised the same way; an encoded slash
	// is part of the name, not of the path.
	id := e.upload(alice, "text/plain", "a.txt", []byte("x"))
	resp := e.req("GET", download(id)+"/..%2F..%2Fx.txt", alice, nil)
	if cd := resp.Header.Get("Content-Disposition"); cd != `attachment; filename="_.._x.txt"` {
		t.Fatalf("override Content-Disposition = %q (status %d)", cd, resp.StatusCode)
	}
	// Nothing but hashes and the database in the data directory.
	_ = filepath.WalkDir(e.dir, func(p string, d fs.DirEntry, err error) error {
		if strings.Contains(p, "passwd") || strings.Contains(p, "boot") || strings.Contains(p, "a.txt") {
			t.Errorf("a client's file name reached the disk: %s", p)
		}
		return nil
	})
}

func TestSizeLimit(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxUploadBytes = 1000; c.UserQuotaBytes = 0 })
	if v := mustJSON(t, e.req("GET", "/_matrix/client/v1/media/config", alice, nil)); v["m.upload.size"] != float64(1000) {
		t.Fatalf("config = %v", v)
	}
	// Exactly the limit is fine.
	e.upload(alice, "", "", make([]byte, 1000))
	// Refused by Content-Length before any byte is read.
	mustErr(t, e.req("POST", "/_matrix/media/v3/upload", alice, bytes.NewReader(make([]byte, 1001))), 413, "M_TOO_LARGE")
	// Refused while streaming when the length is not announced.
	body := io.MultiReader(bytes.NewReader(make([]byte, 600)), bytes.NewReader(make([]byte, 600)))
	mustErr(t, e.req("POST", "/_matrix/media/v3/upload", alice, io.NopCloser(body)), 413, "M_TOO_LARGE")
	if tmp := e.files("tmp"); len(tmp) != 0 {
		t.Fatalf("temporary files left: %v", tmp)
	}
	if blobs := e.files("blobs"); len(blobs) != 1 {
		t.Fatalf("blobs = %v, want only the first upload", blobs)
	}
}

func TestQuota(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxUploadBytes = 400; c.UserQuotaBytes = 1000 })
	e.upload(alice, "", "", make([]byte, 400))
	e.upload(alice, "", "", bytes.Repeat([]byte{1}, 400))
	// 800 used: 300 more is over (announced by Content-Length) ...
	mustErr(t, e.req("POST", "/_matrix/media/v3/upload", alice, bytes.NewReader(bytes.Repeat([]byte{2}, 300))), 403, "M_FORBIDDEN")
	// ... and so is it when only counted at the end.
	mustErr(t, e.req("POST", "/_matrix/media/v3/upload", alice, io.NopCloser(bytes.NewReader(bytes.Repeat([]byte{3}, 300)))), 403, "M_FORBIDDEN")
	if got := e.usage("@alice:test"); got != 800 {
		t.Fatalf("usage = %d", got)
	}
	// 200 fits; Bob has a quota of his own.
	e.upload(alice, "", "", bytes.Repeat([]byte{4}, 200))
	e.upload(bob, "", "", bytes.Repeat([]byte{5}, 400))
	if tmp := e.files("tmp"); len(tmp) != 0 {
		t.Fatalf("temporary files left: %v", tmp)
	}
	if blobs := e.files("blobs"); len(blobs) != 4 {
		t.Fatalf("blobs = %d, want 4", len(blobs))
	}
}

// TestInterruptedUpload sends half a body over a raw connection and hangs
// up: no partial blob, no temporary file and no media ID may remain.
func TestInterruptedUpload(t *testing.T) {
	e := newEnv(t)
	for _, chunked := range []bool{false, true} {
		conn, err := net.Dial("tcp", e.srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		const size = 1 << 20
		head := "POST /_matrix/media/v3/upload?filename=half.bin HTTP/1.1\r\nHost: test\r\n" +
			"Authorization: Bearer " + alice + "\r\nContent-Type: application/octet-stream\r\n"
		half := bytes.Repeat([]byte("x"), size/2)
		if chunked {
			head += "Transfer-Encoding: chunked\r\n\r\n"
			half = append([]byte(fmt.Sprintf("%x\r\n", len(half))), half...)
		} else {
			head += fmt.Sprintf("Content-Length: %d\r\n\r\n", size)
		}
		if _, err := conn.Write([]byte(head)); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Write(half); err != nil {
			t.Fatal(err)
		}
		conn.Close()
	}
	// Close waits for every request in flight to finish.
	e.srv.Close()
	if tmp := e.files("tmp"); len(tmp) != 0 {
		t.Fatalf("temporary files left: %v", tmp)
	}
	if blobs := e.files("blobs"); len(blobs) != 0 {
		t.Fatalf("blobs left: %v", blobs)
	}
	if u := e.usage("@alice:test"); u != 0 {
		t.Fatalf("usage after interrupted uploads = %d", u)
	}
	if r, err := e.st.PurgeMedia(bg, 1<<62, 1<<62, 100, func([]byte) error { return nil }); err != nil || r.Media != 0 {
		t.Fatalf("media rows left: %+v, %v", r, err)
	}
}

func TestNotFound(t *testing.T) {
	e := newEnv(t)
	id := e.upload(alice, "text/plain", "", []byte("x"))
	for _, path := range []string{
		download("doesNotExist123"),
		"/_matrix/client/v1/media/download/other.server/" + id, // no federation yet
		download("bad.id"),
		download("%2E%2E"),
		"/_matrix/client/v1/media/thumbnail/test/nope?width=32&height=32",
		"/_matrix/client/v1/media/thumbnail/other.server/" + id + "?width=32&height=32",
		"/_matrix/media/v3/download/test/nope",
	} {
		mustErr(t, e.req("GET", path, alice, nil), 404, "M_NOT_FOUND")
	}
}

func TestAuthAndRouting(t *testing.T) {
	e := newEnv(t)
	id := e.upload(alice, "text/plain", "", []byte("x"))
	for _, path := range []string{download(id), "/_matrix/client/v1/media/config",
		"/_matrix/client/v1/media/thumbnail/test/" + id + "?width=1&height=1", "/_matrix/media/v3/config"} {
		mustErr(t, e.req("GET", path, "", nil), 401, "M_MISSING_TOKEN")
		mustErr(t, e.req("GET", path, "wrong", nil), 401, "M_UNKNOWN_TOKEN")
	}
	mustErr(t, e.req("POST", "/_matrix/media/v3/upload", "", strings.NewReader("x")), 401, "M_MISSING_TOKEN")
	mustErr(t, e.req("POST", "/_matrix/media/v1/create", "wrong", nil), 401, "M_UNKNOWN_TOKEN")

	mustErr(t, e.req("GET", "/_matrix/media/v3/nonsense", alice, nil), 404, "M_UNRECOGNIZED")
	mustErr(t, e.req("GET", "/_matrix/client/v1/media/nonsense", alice, nil), 404, "M_UNRECOGNIZED")
	resp := e.req("DELETE", download(id), alice, nil)
	if allow := resp.Header.Get("Allow"); allow != "GET, HEAD, OPTIONS" {
		t.Errorf("Allow = %q", allow)
	}
	mustErr(t, resp, 405, "M_UNRECOGNIZED")
	mustErr(t, e.req("GET", "/_matrix/media/v3/upload", alice, nil), 405, "M_UNRECOGNIZED")
	resp = e.req("OPTIONS", "/_matrix/media/v3/upload", "", nil)
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Headers") == "" {
		t.Fatalf("preflight = %d %v", resp.StatusCode, resp.Header)
	}
}

func TestLegacyEndpointsOff(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.LegacyEndpoints = false })
	id := e.upload(alice, "image/png", "", pngBytes(t, 40, 40))
	for _, path := range []string{
		"/_matrix/media/v3/download/test/" + id,
		"/_matrix/media/v3/download/test/" + id + "/x.png",
		"/_matrix/media/v3/thumbnail/test/" + id + "?width=32&height=32",
		"/_matrix/media/v3/config",
		"/_matrix/media/v3/preview_url?url=https://example.org",
	} {
		mustErr(t, e.req("GET", path, alice, nil), 404, "M_NOT_FOUND")
	}
	// The authenticated endpoints still work.
	if resp := e.req("GET", download(id), alice, nil); resp.StatusCode != 200 {
		t.Fatalf("authenticated download = %d", resp.StatusCode)
	}
}

func TestMetrics(t *testing.T) {
	e := newEnv(t)
	e.upload(alice, "text/plain", "", []byte("12345"))
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, mf := range mfs {
		found[mf.GetName()] = true
		if mf.GetName() == "salon_media_uploaded_bytes_total" && mf.GetMetric()[0].GetCounter().GetValue() != 5 {
			t.Errorf("uploaded bytes = %v", mf.GetMetric()[0].GetCounter().GetValue())
		}
	}
	for _, n := range []string{"salon_media_requests_total", "salon_media_request_duration_seconds", "salon_media_uploaded_bytes_total"} {
		if !found[n] {
			t.Errorf("metric %s missing", n)
		}
	}
}

func TestTempFilesSwept(t *testing.T) {
	// New sweeps temporary files a crash left behind (older than a day).
	dir := t.TempDir()
	tmp := filepath.Join(dir, "media", "tmp")
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	old, fresh := filepath.Join(tmp, "up-old"), filepath.Join(tmp, "up-fresh")
	for _, p := range []string{old, fresh} {
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	past := time.Now().Add(-48 * time.Hour)
	if err := os.Chtimes(old, past, past); err != nil {
		t.Fatal(err)
	}
	if _, err := NewLocalBlobs(filepath.Join(dir, "media")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Error("old temporary file kept")
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Error("fresh temporary file removed (an upload may be writing it)")
	}
}
