// Package mxtest is a small Matrix client for tests that talk to a real
// Salon over HTTP: register, log in, call endpoints, check Matrix errors.
package mxtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"
)

// Client is one logged-in (or anonymous) user.
type Client struct {
	T        testing.TB
	Base     string // http://127.0.0.1:PORT
	Token    string
	UserID   string
	DeviceID string
	HTTP     *http.Client
}

// New returns an anonymous client of the server at base.
func New(t testing.TB, base string) *Client {
	return &Client{T: t, Base: base, HTTP: &http.Client{Timeout: 60 * time.Second}}
}

// Response is a decoded answer.
type Response struct {
	Status int
	Body   map[string]any
	Raw    []byte
	Header http.Header
}

// Errcode is the Matrix errcode of the answer, or "".
func (r Response) Errcode() string {
	s, _ := r.Body["errcode"].(string)
	return s
}

// Str returns a top-level string member.
func (r Response) Str(key string) string {
	s, _ := r.Body[key].(string)
	return s
}

// Do sends a request. body may be nil, []byte (sent as is) or a value to
// encode as JSON.
func (c *Client) Do(method, path string, body any) Response {
	c.T.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = bytes.NewReader([]byte(b))
	default:
		j, err := json.Marshal(b)
		if err != nil {
			c.T.Fatalf("encode body: %v", err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, c.Base+path, rd)
	if err != nil {
		c.T.Fatalf("%s %s: %v", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	res, err := c.HTTP.Do(req)
	if err != nil {
		c.T.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		c.T.Fatalf("%s %s: read: %v", method, path, err)
	}
	out := Response{Status: res.StatusCode, Raw: raw, Header: res.Header}
	if len(raw) > 0 && raw[0] == '{' {
		if err := json.Unmarshal(raw, &out.Body); err != nil {
			c.T.Fatalf("%s %s: answer is not JSON: %v: %s", method, path, err, raw)
		}
	}
	return out
}

// Must sends a request and fails the test unless the status is want.
func (c *Client) Must(want int, method, path string, body any) Response {
	c.T.Helper()
	r := c.Do(method, path, body)
	if r.Status != want {
		c.T.Fatalf("%s %s: status %d, want %d: %s", method, path, r.Status, want, r.Raw)
	}
	return r
}

// MustErr sends a request and fails the test unless it gets the Matrix
// error errcode with the given status.
func (c *Client) MustErr(status int, errcode, method, path string, body any) Response {
	c.T.Helper()
	r := c.Do(method, path, body)
	if r.Status != status || r.Errcode() != errcode {
		c.T.Fatalf("%s %s: got %d %s, want %d %s: %s", method, path, r.Status, r.Errcode(), status, errcode, r.Raw)
	}
	return r
}

// Register creates an account with m.login.dummy and logs it in.
func Register(t testing.TB, base, user, password string) *Client {
	t.Helper()
	return New(t, base).Register(user, password)
}

// Register creates an account with m.login.dummy through c (and its HTTP
// client) and logs c in as it.
func (c *Client) Register(user, password string) *Client {
	t := c.T
	t.Helper()
	first := c.Do("POST", "/_matrix/client/v3/register", map[string]any{"username": user, "password": password})
	if first.Status != 401 {
		t.Fatalf("register %s: first step status %d: %s", user, first.Status, first.Raw)
	}
	r := c.Must(200, "POST", "/_matrix/client/v3/register", map[string]any{
		"username": user, "password": password,
		"auth": map[string]any{"type": "m.login.dummy", "session": first.Str("session")},
	})
	c.Token, c.UserID, c.DeviceID = r.Str("access_token"), r.Str("user_id"), r.Str("device_id")
	return c
}

// Login logs an existing account in on a new device.
func Login(t testing.TB, base, user, password string) *Client {
	t.Helper()
	c := New(t, base)
	r := c.Must(200, "POST", "/_matrix/client/v3/login", map[string]any{
		"type":       "m.login.password",
		"identifier": map[string]any{"type": "m.id.user", "user": user},
		"password":   password,
	})
	c.Token, c.UserID, c.DeviceID = r.Str("access_token"), r.Str("user_id"), r.Str("device_id")
	return c
}

// Path joins path segments, escaping each (room IDs, event types).
func Path(format string, args ...any) string {
	esc := make([]any, len(args))
	for i, a := range args {
		esc[i] = pathEscape(fmt.Sprint(a))
	}
	return fmt.Sprintf(format, esc...)
}
