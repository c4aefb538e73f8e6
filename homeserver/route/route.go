// Package route is the HTTP routing both of the homeserver's APIs (the
// Client-Server API and the media repository) use: handlers that return
// errors written as Matrix errors, per-path method tables with 405
// M_UNRECOGNIZED and CORS preflight answers, panic recovery, and request
// metrics. It knows nothing of what the handlers do.
package route

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/salonhq/salon/internal/mxerr"
	"github.com/salonhq/salon/internal/redact"
)

// HandlerFunc is a handler that reports failure by returning an error,
// which the router writes as a Matrix error unless the response started.
type HandlerFunc func(w http.ResponseWriter, r *http.Request) error

// Methods maps HTTP methods to the handlers of one path.
type Methods map[string]HandlerFunc

// Router is a ServeMux of method tables.
type Router struct {
	mux      *http.ServeMux
	log      *slog.Logger
	requests *prometheus.CounterVec   // labels: route, method, status
	duration *prometheus.HistogramVec // label: route
	access   *slog.Logger             // nil: no access log
	routes   []Route
}

// Route is one registered path and the methods it answers (besides HEAD
// and OPTIONS).
type Route struct {
	Path    string
	Methods []string
}

// Routes lists the registered paths in registration order, for tests
// that walk every endpoint (the HTTP fuzzer in cmd/salon).
func (rt *Router) Routes() []Route { return append([]Route(nil), rt.routes...) }

// SetAccessLog turns on the access log: one info line per request with
// the method, the route template (never the URL, so never a query's
// access_token), the status, the duration and the authenticated user.
// nil turns it off. Call it before serving.
func (rt *Router) SetAccessLog(l *slog.Logger) { rt.access = l }

type requestUserKey struct{}

// requestUser is where an authenticating handler leaves the user for the
// access log.
type requestUser struct{ id string }

// SetUser records the authenticated user of r for the access log; the
// router's handlers get a request that can hold it.
func SetUser(r *http.Request, userID string) {
	if u, ok := r.Context().Value(requestUserKey{}).(*requestUser); ok {
		u.id = userID
	}
}

func (rt *Router) logAccess(r *http.Request, route string, status int, d time.Duration, user string) {
	if rt.access == nil {
		return
	}
	attrs := []slog.Attr{
		slog.String("method", r.Method), slog.String("route", route),
		slog.Int("status", status), slog.Duration("duration", d),
	}
	if user != "" {
		attrs = append(attrs, slog.String("user", user))
	}
	rt.access.LogAttrs(r.Context(), slog.LevelInfo, "request", attrs...)
}

// New returns a Router whose unknown paths answer 404 M_UNRECOGNIZED.
// requests (route, method, status) and duration (route) may be nil.
func New(log *slog.Logger, requests *prometheus.CounterVec, duration *prometheus.HistogramVec) *Router {
	rt := &Router{mux: http.NewServeMux(), log: log, requests: requests, duration: duration}
	rt.mux.HandleFunc("/", rt.notFound)
	return rt
}

// ServeHTTP routes a request.
func (rt *Router) ServeHTTP(w http.ResponseWriter, r *http.Request) { rt.mux.ServeHTTP(w, r) }

// Handle registers path for the given methods; HEAD follows GET, other
// methods get 405 M_UNRECOGNIZED, OPTIONS gets the CORS preflight answer.
func (rt *Router) Handle(path string, ms Methods) {
	allowed := make([]string, 0, len(ms)+2)
	for m := range ms {
		allowed = append(allowed, m)
		if m == http.MethodGet {
			allowed = append(allowed, http.MethodHead)
		}
	}
	own := make([]string, 0, len(ms))
	for m := range ms {
		own = append(own, m)
	}
	sort.Strings(own)
	rt.routes = append(rt.routes, Route{Path: path, Methods: own})
	allowed = append(allowed, http.MethodOptions)
	sort.Strings(allowed)
	allow := strings.Join(allowed, ", ")
	route := path
	rt.mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		// JSON answers are gzipped for clients that accept it (/sync
		// and /pushrules shrink to a fifth or less).
		var gz *gzipWriter
		if r.Method != http.MethodHead && acceptsGzip(r) {
			gz = newGzipWriter(w)
			w = gz
		}
		sw := &StatusWriter{ResponseWriter: w, status: http.StatusOK}
		user := &requestUser{}
		if rt.access != nil {
			r = r.WithContext(context.WithValue(r.Context(), requestUserKey{}, user))
		}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					if gz != nil {
						gz.abandon()
					}
					panic(v)
				}
				rt.log.Error("panic serving request", "route", route, "panic", v, "stack", string(debug.Stack()))
				if !sw.wrote {
					mxerr.Write(sw, nil, mxerr.New(mxerr.Unknown, "Internal server error"))
				}
			}
			if gz != nil {
				if err := gz.Close(); err != nil && r.Context().Err() == nil {
					rt.log.Debug("finishing a gzipped response", "route", route, "err", err)
				}
			}
			if rt.requests != nil {
				rt.requests.WithLabelValues(route, r.Method, strconv.Itoa(sw.status)).Inc()
			}
			if rt.duration != nil {
				rt.duration.WithLabelValues(route).Observe(time.Since(start).Seconds())
			}
			rt.logAccess(r, route, sw.status, time.Since(start), user.id)
		}()
		if r.Method == http.MethodOptions {
			sw.Header().Set("Allow", allow)
			sw.WriteHeader(http.StatusOK)
			return
		}
		if !textOK(r) {
			mxerr.Write(sw, rt.log, mxerr.InvalidParamf("The request's path and query must be UTF-8 without NUL characters"))
			return
		}
		h, ok := ms[r.Method]
		if !ok && r.Method == http.MethodHead {
			h, ok = ms[http.MethodGet]
		}
		if !ok {
			sw.Header().Set("Allow", allow)
			mxerr.Write(sw, rt.log, mxerr.New(mxerr.Unrecognized, "Method %s not allowed on this endpoint", r.Method).WithStatus(http.StatusMethodNotAllowed))
			return
		}
		if err := h(sw, r); err != nil {
			if sw.wrote {
				rt.log.Warn("error after response started", "route", route, "err", err)
				return
			}
			if ctxErr := r.Context().Err(); ctxErr != nil && errors.Is(err, ctxErr) {
				return // the client went away
			}
			mxerr.Write(sw, rt.log.With("route", route), err)
		}
	})
}

// textOK reports whether the request's path and query parameters are
// valid UTF-8 without NUL. No Matrix identifier or parameter holds
// either, and PostgreSQL refuses both in text: unchecked, a %00 in a
// device ID answered M_UNKNOWN 500 on PostgreSQL and 404 on SQLite.
func textOK(r *http.Request) bool {
	ok := func(s string) bool { return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 }
	if !ok(r.URL.Path) {
		return false
	}
	for k, vs := range r.URL.Query() {
		if !ok(k) {
			return false
		}
		for _, v := range vs {
			if !ok(v) {
				return false
			}
		}
	}
	return true
}

func (rt *Router) notFound(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if r.Method == http.MethodOptions {
		w.WriteHeader(http.StatusOK)
		rt.logAccess(r, "unknown", http.StatusOK, time.Since(start), "")
		return
	}
	if rt.requests != nil {
		rt.requests.WithLabelValues("unknown", r.Method, "404").Inc()
	}
	mxerr.Write(w, rt.log, mxerr.New(mxerr.Unrecognized, "Unrecognized request"))
	rt.logAccess(r, "unknown", http.StatusNotFound, time.Since(start), "")
}

// CORS sets the headers the Client-Server API asks for, so web clients on
// other origins work ("Web Browser Clients").
func CORS(h http.Header) {
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Access-Control-Allow-Methods", "GET, HEAD, POST, PUT, DELETE, OPTIONS")
	h.Set("Access-Control-Allow-Headers", "X-Requested-With, Content-Type, Authorization")
	h.Set("Cross-Origin-Resource-Policy", "cross-origin")
}

// AccessToken reads the Authorization header, or the deprecated
// access_token query parameter.
func AccessToken(r *http.Request) redact.Secret {
	if h := r.Header.Get("Authorization"); h != "" {
		// The scheme is case-insensitive (RFC 9110, section 11.1):
		// "bearer" and "BEARER" are Bearer.
		if scheme, tok, ok := strings.Cut(strings.TrimSpace(h), " "); ok && strings.EqualFold(scheme, "Bearer") {
			return redact.Secret(strings.TrimSpace(tok))
		}
		return ""
	}
	return redact.Secret(r.URL.Query().Get("access_token"))
}

// StatusWriter remembers the status for metrics and whether the response
// has started.
type StatusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

// WriteHeader records the status.
func (w *StatusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status = code
		// 1xx responses are not the final answer.
		w.wrote = code >= 200
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *StatusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

// Unwrap gives http.ResponseController the underlying writer (flushing,
// deadlines, sendfile through ReadFrom).
func (w *StatusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// ReadFrom keeps net/http's sendfile path (media downloads).
func (w *StatusWriter) ReadFrom(src io.Reader) (int64, error) {
	w.wrote = true
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(src)
	}
	return io.Copy(struct{ io.Writer }{w.ResponseWriter}, src)
}

// Wrote reports whether the response has started.
func (w *StatusWriter) Wrote() bool { return w.wrote }
