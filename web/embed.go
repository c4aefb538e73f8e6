// Package web holds Salon's TypeScript web client (web/src, built by Vite
// into web/dist) and exposes the built bundle to the Go binary through
// Handler. It imports no other package of the project: the homeserver's
// API is reached by the browser over HTTP, never through Go.
//
// A checkout where the client was never built still compiles: dist then
// holds only .gitkeep and Handler answers every page with a short notice
// saying how to build the client.
package web

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"
)

//go:embed all:dist
var dist embed.FS

// Handler serves the web client from the bundle embedded at build time.
//
// It is meant to be mounted at "/" next to the homeserver's routes:
//
//	mux.Handle("/_matrix/", hs.Handler())
//	mux.Handle("/.well-known/matrix/", hs.Handler())
//	mux.Handle("/", web.Handler())
//
// Files of the bundle are served as they are; hashed files under /assets/
// are cacheable for a year. A missing file under /assets/ or with the
// extension of a static file is a 404; any other path is a client-side
// route and gets index.html. Paths under /_matrix/ and
// /.well-known/ that reach this handler are API routes nobody serves and
// get the Matrix 404 (M_UNRECOGNIZED), never HTML.
func Handler() http.Handler {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		// fs.Sub fails only on an invalid path name; "dist" is valid.
		sub = dist
	}
	return newHandler(sub)
}

// file is one file of the bundle. Its bytes stay in the binary's
// read-only data (embed.FS) and are streamed from there on each request:
// reading the whole bundle into the heap at start (about 12 MB, the
// encryption's wasm included) made every server hold it, and the
// collector's heap goal twice that, whether or not anyone loaded the web
// client. What is derived from the bytes (the ETag, a gzip the build did
// not write) is made on the first request for the file.
type file struct {
	name        string
	gzName      string // the build's name.gz, when it compresses well; "" otherwise
	contentType string
	compress    bool // no .gz from the build, but worth compressing here

	once sync.Once
	etag string
	gz   []byte // compressed here (compress), when it compresses well
}

type handler struct {
	fsys  fs.FS            // the bundle
	files map[string]*file // by path relative to the bundle root, no leading slash
	built bool             // whether the bundle holds an index.html
}

// immutablePrefix is where Vite writes content-hashed files.
const immutablePrefix = "assets/"

// staticExt are the extensions of files a page loads; a missing one is a
// 404. Other paths, room IDs with dots included (/room/!a:example.org),
// are client-side routes.
var staticExt = map[string]bool{
	".js": true, ".mjs": true, ".css": true, ".map": true, ".json": true,
	".wasm": true, ".html": true, ".txt": true, ".xml": true, ".webmanifest": true,
	".png": true, ".jpg": true, ".jpeg": true, ".gif": true, ".webp": true,
	".avif": true, ".svg": true, ".ico": true, ".woff": true, ".woff2": true,
	".ttf": true, ".mp3": true, ".ogg": true, ".opus": true, ".mp4": true, ".webm": true,
}

func newHandler(fsys fs.FS) *handler {
	h := &handler{fsys: fsys, files: make(map[string]*file)}
	_ = fs.WalkDir(fsys, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if hidden(name) || strings.HasSuffix(name, ".gz") {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		ct, err := contentType(fsys, name)
		if err != nil {
			return nil
		}
		f := &file{name: name, contentType: ct}
		// build.sh writes name.gz next to large text files; compress here
		// only what it did not, so an unbuilt or hand-built bundle works too.
		if gi, err := fs.Stat(fsys, name+".gz"); err == nil {
			if gi.Size() < info.Size()*9/10 {
				f.gzName = name + ".gz"
			}
		} else {
			f.compress = compressible(ct) && info.Size() > 1024
		}
		h.files[name] = f
		return nil
	})
	_, h.built = h.files["index.html"]
	return h
}

// derive computes the ETag and, when the build wrote no .gz, the gzip.
func (f *file) derive(fsys fs.FS) {
	f.once.Do(func() {
		body, err := fs.ReadFile(fsys, f.name)
		if err != nil {
			f.etag = `"unreadable"`
			return
		}
		sum := sha256.Sum256(body)
		f.etag = `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`
		if f.compress {
			if gz := gzipBytes(body); gz != nil && len(gz) < len(body)*9/10 {
				f.gz = gz
			}
		}
	})
}

// hidden reports whether any element of a slash-separated path starts
// with a dot (.gitkeep, .vite/manifest.json): those are build leftovers,
// not part of the site.
func hidden(name string) bool {
	for _, el := range strings.Split(name, "/") {
		if strings.HasPrefix(el, ".") {
			return true
		}
	}
	return false
}

// contentType is the file's media type: by extension, else sniffed from
// its first 512 bytes.
func contentType(fsys fs.FS, name string) (string, error) {
	switch path.Ext(name) {
	case ".js", ".mjs":
		return "text/javascript; charset=utf-8", nil
	case ".wasm":
		return "application/wasm", nil
	case ".webmanifest":
		return "application/manifest+json", nil
	}
	if t := mime.TypeByExtension(path.Ext(name)); t != "" {
		return t, nil
	}
	fh, err := fsys.Open(name)
	if err != nil {
		return "", err
	}
	defer fh.Close()
	head := make([]byte, 512)
	n, _ := io.ReadFull(fh, head)
	return http.DetectContentType(head[:n]), nil
}

func compressible(ct string) bool {
	return strings.HasPrefix(ct, "text/") || strings.Contains(ct, "json") ||
		strings.Contains(ct, "javascript") || strings.HasPrefix(ct, "image/svg") ||
		ct == "application/wasm"
}

func gzipBytes(b []byte) []byte {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	_, _ = zw.Write(b)
	if err := zw.Close(); err != nil {
		return nil
	}
	return buf.Bytes()
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	if strings.HasPrefix(p, "/_matrix/") || strings.HasPrefix(p, "/.well-known/") || p == "/_matrix" {
		// An API route that no component serves: answer as the
		// homeserver would, so clients read a Matrix error, not a page.
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, `{"errcode":"M_UNRECOGNIZED","error":"Unrecognized request"}`)
		return
	}
	setSecurityHeaders(w.Header(), r.Host)
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if !h.built {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusServiceUnavailable)
		if r.Method == http.MethodGet {
			_, _ = io.WriteString(w, notBuiltPage)
		}
		return
	}
	name := strings.TrimPrefix(path.Clean("/"+p), "/")
	if name == "" {
		name = "index.html"
	}
	f, ok := h.files[name]
	switch {
	case ok:
	case strings.HasPrefix(name, immutablePrefix) || staticExt[path.Ext(name)] || hidden(name):
		// A missing file, not a client route: an old hashed asset after
		// an upgrade must fail loudly rather than load index.html as JS.
		w.Header().Set("Cache-Control", "no-store")
		http.Error(w, "not found", http.StatusNotFound)
		return
	default:
		name, f = "index.html", h.files["index.html"]
	}
	if strings.HasPrefix(name, immutablePrefix) {
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		w.Header().Set("Cache-Control", "no-cache")
	}
	h.serveFile(w, r, f)
}

func (h *handler) serveFile(w http.ResponseWriter, r *http.Request, f *file) {
	f.derive(h.fsys)
	hd := w.Header()
	hd.Set("Content-Type", f.contentType)
	name, etag := f.name, f.etag
	var body []byte
	if f.gzName != "" || f.gz != nil {
		hd.Add("Vary", "Accept-Encoding")
		if acceptsGzip(r.Header.Get("Accept-Encoding")) {
			hd.Set("Content-Encoding", "gzip")
			etag = strings.TrimSuffix(f.etag, `"`) + `-gz"`
			name, body = f.gzName, f.gz
		}
	}
	hd.Set("ETag", etag)
	// ServeContent answers If-None-Match and Range; the zero time leaves
	// out Last-Modified, which the embedded files do not have.
	if body != nil {
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
		return
	}
	fh, err := h.fsys.Open(name)
	if err != nil {
		http.Error(w, "unreadable", http.StatusInternalServerError)
		return
	}
	defer fh.Close()
	rs, ok := fh.(io.ReadSeeker) // embed.FS files are
	if !ok {
		b, err := io.ReadAll(fh)
		if err != nil {
			http.Error(w, "unreadable", http.StatusInternalServerError)
			return
		}
		rs = bytes.NewReader(b)
	}
	http.ServeContent(w, r, "", time.Time{}, rs)
}

func acceptsGzip(ae string) bool {
	for _, part := range strings.Split(ae, ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(coding), "gzip") {
			q := strings.ReplaceAll(strings.TrimSpace(params), " ", "")
			return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
		}
	}
	return false
}

// setSecurityHeaders sets the Content-Security-Policy and its companions.
// The policy allows only this origin: scripts and styles from the bundle,
// media also from blob: and data: (authenticated media is fetched with the
// access token and shown through blob: URLs), and connections to this
// origin over HTTP and WebSocket. Nothing is loaded from elsewhere.
func setSecurityHeaders(hd http.Header, host string) {
	connect := "'self'"
	if validHost(host) {
		// CSP Level 3 browsers let 'self' cover ws(s) to the same host;
		// naming them keeps older ones working.
		connect += " ws://" + host + " wss://" + host
	}
	hd.Set("Content-Security-Policy", strings.Join([]string{
		"default-src 'none'",
		// WebAssembly (the end-to-end encryption of matrix-js-sdk) is
		// compiled from the bundle's own .wasm file; no eval of strings.
		"script-src 'self' 'wasm-unsafe-eval'",
		"style-src 'self'",
		"img-src 'self' blob: data:",
		"media-src 'self' blob: data:",
		"font-src 'self'",
		"connect-src " + connect,
		"worker-src 'self' blob:",
		"manifest-src 'self'",
		"form-action 'self'",
		"base-uri 'none'",
		"object-src 'none'",
		"frame-ancestors 'none'",
	}, "; "))
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	hd.Set("Permissions-Policy", "camera=(self), microphone=(self), display-capture=(self), geolocation=()")
}

// validHost accepts host[:port] made of the characters a DNS name, an IPv4
// or a bracketed IPv6 literal use, so a Host header cannot inject into the
// policy.
func validHost(h string) bool {
	if h == "" || len(h) > 255 {
		return false
	}
	for _, c := range h {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '.', c == '-', c == ':', c == '[', c == ']':
		default:
			return false
		}
	}
	return true
}

const notBuiltPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Salon</title></head>
<body>
<h1>Salon</h1>
<p>The homeserver is running, but this binary was built without its web client.</p>
<p>Build it with <code>make build</code> (which runs <code>web/build.sh</code>, needing Node.js and npm), then restart Salon.
Matrix clients such as Element can connect to this server meanwhile.</p>
<hr>
<p lang="fr">Le serveur fonctionne, mais ce binaire a été construit sans son client web :
lancez <code>make build</code> puis redémarrez Salon.</p>
</body></html>
`
