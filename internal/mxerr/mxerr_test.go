package mxerr

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
)

type outage struct{ down bool }

func (o outage) Error() string     { return "connection refused (secret detail)" }
func (o outage) Unavailable() bool { return o.down }

func TestWriteUnavailable(t *testing.T) {
	for _, tc := range []struct {
		name       string
		err        error
		status     int
		retryAfter string
		logMsg     string
	}{
		{"unavailable wrapped", fmt.Errorf("send: %w", outage{true}), 503, "5", "storage unavailable"},
		{"says not unavailable", outage{false}, 500, "", "internal error"},
		{"plain error", errors.New("boom (secret detail)"), 500, "", "internal error"},
		{"matrix error wins", fmt.Errorf("%w %w", Forbid("no"), outage{true}), 403, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logBuf bytes.Buffer
			log := slog.New(slog.NewTextHandler(&logBuf, nil))
			rec := httptest.NewRecorder()
			Write(rec, log, tc.err)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d", rec.Code, tc.status)
			}
			if got := rec.Header().Get("Retry-After"); got != tc.retryAfter {
				t.Errorf("Retry-After %q, want %q", got, tc.retryAfter)
			}
			var body map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatal(err)
			}
			if tc.status >= 500 && body["errcode"] != "M_UNKNOWN" {
				t.Errorf("errcode %v", body["errcode"])
			}
			if strings.Contains(rec.Body.String(), "secret detail") {
				t.Errorf("cause reached the client: %s", rec.Body.String())
			}
			lines := strings.Count(logBuf.String(), "\n")
			if tc.logMsg == "" {
				if lines != 0 {
					t.Errorf("logged %q", logBuf.String())
				}
				return
			}
			if lines != 1 || !strings.Contains(logBuf.String(), "msg=\""+tc.logMsg+"\"") || !strings.Contains(logBuf.String(), "secret detail") {
				t.Errorf("log %q, want one %q line with the cause", logBuf.String(), tc.logMsg)
			}
		})
	}
}
