package media

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/salonhq/salon/homeserver/netguard"
)

func TestPublicAddr(t *testing.T) {
	for _, tc := range []struct {
		ip     string
		public bool
	}{
		{"127.0.0.1", false}, {"127.1.2.3", false}, {"::1", false},
		{"10.1.2.3", false}, {"172.16.0.1", false}, {"172.31.255.255", false}, {"192.168.1.1", false},
		{"100.64.0.1", false}, {"100.127.255.254", false}, // carrier-grade NAT
		{"169.254.169.254", false}, {"fd00:ec2::254", false}, // cloud metadata
		{"0.0.0.0", false}, {"::", false}, {"255.255.255.255", false}, {"224.0.0.1", false}, {"ff02::1", false},
		{"fe80::1", false}, {"fc00::1", false}, {"fec0::1", false},
		{"::ffff:127.0.0.1", false}, {"::ffff:10.0.0.1", false}, // IPv4-mapped
		{"64:ff9b::a00:1", false}, {"2002:a00:1::", false}, {"2001:0:a00:1::", false}, // IPv4 embedded
		{"192.0.2.1", false}, {"198.18.0.1", false}, {"2001:db8::1", false},
		{"8.8.8.8", true}, {"1.1.1.1", true}, {"93.184.216.34", true}, {"172.32.0.1", true}, {"100.128.0.1", true},
		{"2606:4700:4700::1111", true}, {"2001:4860:4860::8888", true}, {"::ffff:8.8.8.8", true},
	} {
		if got := netguard.PublicAddr(netip.MustParseAddr(tc.ip)); got != tc.public {
			t.Errorf("netguard.PublicAddr(%s) = %v, want %v", tc.ip, got, tc.public)
		}
	}
}

func TestParseOpenGraph(t *testing.T) {
	for _, tc := range []struct {
		name, html, ct string
		want           map[string]any
	}{
		{"og tags", `<html><head><meta property="og:title" content="Lecture 5 &amp; more">
			<meta property="og:description" content="Sorting"><meta property="og:image:width" content="999">
			<title>ignored</title></head><body><meta property="og:title" content="late"></body>`, "text/html",
			map[string]any{"og:title": "Lecture 5 & more", "og:description": "Sorting"}},
		{"title and description fallback", `<title>  A
			 page </title><meta name="description" content="About it">`, "text/html",
			map[string]any{"og:title": "A page", "og:description": "About it"}},
		{"latin-1", "<title>Caf\xe9</title>", "text/html; charset=iso-8859-1", map[string]any{"og:title": "Café"}},
		{"name instead of property", `<meta name="og:title" content="Mistake">`, "text/html", map[string]any{"og:title": "Mistake"}},
		{"stops at body", `<body><title>no</title>`, "text/html", map[string]any{}},
		{"script is not title", `<title>T</title><script>var s = "<title>x</title>";</script>`, "text/html", map[string]any{"og:title": "T"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := parseOpenGraph(strings.NewReader(tc.html), tc.ct)
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
	long := parseOpenGraph(strings.NewReader(`<meta property="og:title" content="`+strings.Repeat("é", 5000)+`">`), "text/html")
	if s := long["og:title"].(string); len([]rune(s)) != maxOGValue+1 {
		t.Fatalf("long title kept %d runes", len([]rune(s)))
	}
}

// origin is a web server to preview, on loopback.
func origin(t *testing.T) *httptest.Server {
	png := pngBytes(t, 20, 10)
	mux := http.NewServeMux()
	mux.HandleFunc("/page", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, `<!doctype html><html><head><title>Fallback</title>
			<meta property="og:title" content="Lecture 5">
			<meta property="og:description" content="Sorting algorithms">
			<meta property="og:image" content="/img.png"></head><body>…</body></html>`)
	})
	mux.HandleFunc("/img.png", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/png")
		_, _ = w.Write(png)
	})
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) {
		_, port, _ := strings.Cut(r.Host, ":")
		http.Redirect(w, r, "http://127.0.0.2:"+port+"/page", http.StatusFound)
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, "<html><head>")
		chunk := strings.Repeat("<!-- padding -->", 4096)
		for i := 0; i < 200 && r.Context().Err() == nil; i++ { // 13 MB
			if _, err := fmt.Fprint(w, chunk); err != nil {
				return
			}
		}
		fmt.Fprint(w, `<meta property="og:title" content="too far"></head>`)
	})
	mux.HandleFunc("/missing", http.NotFound)
	mux.HandleFunc("/file.zip", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/zip")
		_, _ = w.Write([]byte("PK"))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func previewPath(u string) string {
	return "/_matrix/client/v1/media/preview_url?url=" + url.QueryEscape(u)
}

func TestURLPreviewDisabledByDefault(t *testing.T) {
	e := newEnv(t)
	mustErr(t, e.req("GET", previewPath("https://example.org/"), alice, nil), 404, "M_UNRECOGNIZED")
}

func TestURLPreviewRefusesNonPublicAddresses(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.URLPreview.Enabled = true })
	o := origin(t)
	_, port, _ := strings.Cut(o.Listener.Addr().String(), ":")
	for _, u := range []string{
		o.URL + "/page",                      // loopback by address
		"http://localhost:" + port + "/page", // loopback after DNS
		"http://[::1]:" + port + "/page",     // IPv6 loopback
		"http://[::ffff:127.0.0.1]:" + port,  // IPv4-mapped loopback
	} {
		mustErr(t, e.req("GET", previewPath(u), alice, nil), 403, "M_FORBIDDEN")
	}
	for _, u := range []string{"file:///etc/passwd", "ftp://example.org/", "gopher://x", "http://", "not a url"} {
		mustErr(t, e.req("GET", previewPath(u), alice, nil), 400, "M_INVALID_PARAM")
	}
	mustErr(t, e.req("GET", "/_matrix/client/v1/media/preview_url", alice, nil), 400, "M_MISSING_PARAM")
	mustErr(t, e.req("GET", previewPath(o.URL), "", nil), 401, "M_MISSING_TOKEN")
}

func TestURLPreview(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.URLPreview.Enabled = true
		c.URLPreview.MaxBytes = 64 << 10
		c.URLPreview.Timeout = Duration(time.Second)
		// Let the test origin through, as a test deployment would:
		// 127.0.0.1 only, so 127.0.0.2 (the redirect target) stays
		// refused.
		c.URLPreview.AllowNetworks = []string{"127.0.0.1/32"}
	})
	o := origin(t)

	og := mustJSON(t, e.req("GET", previewPath(o.URL+"/page#frag"), alice, nil))
	if og["og:title"] != "Lecture 5" || og["og:description"] != "Sorting algorithms" ||
		og["og:image:type"] != "image/png" || og["og:image:width"] != float64(20) || og["og:image:height"] != float64(10) {
		t.Fatalf("preview = %v", og)
	}
	server, id, ok := parseMXC(fmt.Sprint(og["og:image"]))
	if !ok || server != "test" {
		t.Fatalf("og:image = %v", og["og:image"])
	}
	img := readAll(t, e.req("GET", download(id), alice, nil))
	if !bytes.Equal(img, pngBytes(t, 20, 10)) || og["matrix:image:size"] != float64(len(img)) {
		t.Fatalf("stored preview image: %d bytes, matrix:image:size %v", len(img), og["matrix:image:size"])
	}
	// The legacy path answers the same (from the cache).
	og2 := mustJSON(t, e.req("GET", "/_matrix/media/v3/preview_url?url="+url.QueryEscape(o.URL+"/page"), alice, nil))
	if og2["og:image"] != og["og:image"] {
		t.Fatalf("second preview = %v", og2)
	}

	// An image URL previews as the image.
	og = mustJSON(t, e.req("GET", previewPath(o.URL+"/img.png"), alice, nil))
	if _, _, ok := parseMXC(fmt.Sprint(og["og:image"])); !ok {
		t.Fatalf("image preview = %v", og)
	}
	// Neither HTML nor an image: empty.
	if og := mustJSON(t, e.req("GET", previewPath(o.URL+"/file.zip"), alice, nil)); len(og) != 0 {
		t.Fatalf("zip preview = %v", og)
	}
	// Read no further than max_bytes: the title past it is not seen.
	start := time.Now()
	if og := mustJSON(t, e.req("GET", previewPath(o.URL+"/big"), alice, nil)); len(og) != 0 {
		t.Fatalf("big page preview = %v", og)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("big page took %s", d)
	}
	// A redirect to a refused address is refused.
	mustErr(t, e.req("GET", previewPath(o.URL+"/redirect"), alice, nil), 403, "M_FORBIDDEN")
	// Errors of the origin.
	mustErr(t, e.req("GET", previewPath(o.URL+"/missing"), alice, nil), 502, "M_UNKNOWN")
	start = time.Now()
	mustErr(t, e.req("GET", previewPath(o.URL+"/slow"), alice, nil), 504, "M_UNKNOWN")
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("slow page took %s with a 1s timeout", d)
	}
}
