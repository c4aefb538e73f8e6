package main

import (
	"bufio"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// livekitAccessLog writes the access log line of a request to the MatrixRTC
// JWT service or the SFU's signalling (everything under /livekit/), the
// same line the homeserver's routes write (http.access_log): method, route,
// status, duration. The route is the request's path: these paths name an
// endpoint and carry no identifier, while the query, which carries the
// SFU's access_token, is never logged. A WebSocket that upgrades logs 101
// when it is handed over, not when the call ends.
func livekitAccessLog(access *slog.Logger, h http.Handler) http.Handler {
	if access == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &livekitStatus{ResponseWriter: w, status: http.StatusOK}
		route := r.URL.Path
		defer func() {
			if !sw.hijacked {
				access.LogAttrs(r.Context(), slog.LevelInfo, "request",
					slog.String("method", r.Method), slog.String("route", route),
					slog.Int("status", sw.status), slog.Duration("duration", time.Since(start)))
			}
		}()
		sw.log = func() {
			access.LogAttrs(r.Context(), slog.LevelInfo, "request",
				slog.String("method", r.Method), slog.String("route", route),
				slog.Int("status", http.StatusSwitchingProtocols), slog.Duration("duration", time.Since(start)))
		}
		h.ServeHTTP(sw, r)
	})
}

// livekitStatus remembers a response's status; it hands the connection
// over for WebSockets (gorilla/websocket asserts http.Hijacker itself).
type livekitStatus struct {
	http.ResponseWriter
	status   int
	wrote    bool
	hijacked bool
	log      func()
}

func (w *livekitStatus) WriteHeader(code int) {
	if !w.wrote && code >= 200 {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *livekitStatus) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

// Unwrap gives http.ResponseController the underlying writer.
func (w *livekitStatus) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Hijack hands the connection to a WebSocket; its line is logged then.
func (w *livekitStatus) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil {
		w.hijacked = true
		w.log()
	}
	return c, rw, err
}
