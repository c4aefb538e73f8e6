package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/salonhq/salon/homeserver/mxtest"
)

// browser is what a person's browser does in a single sign-on: it keeps
// cookies, follows redirects and submits forms; it stops at the client's
// page (clientPath), where the login token arrives.
type browser struct {
	t          testing.TB
	c          *http.Client
	clientPath string
}

func newBrowser(t testing.TB, clientPath string) *browser {
	jar, _ := cookiejar.New(nil)
	b := &browser{t: t, clientPath: clientPath}
	b.c = &http.Client{Jar: jar, Timeout: 60 * time.Second, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		// Stop at the client's page, and before leaving loopback (a
		// configured client origin such as https://app.example.org).
		if req.URL.Path == b.clientPath || req.URL.Hostname() != "127.0.0.1" || len(via) > 20 {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	return b
}

// page is an answer the browser got.
type page struct {
	Status   int
	URL      *url.URL // where it was answered
	Location string   // for a redirect the browser stopped at
	Body     string
	Header   http.Header
}

func (b *browser) do(req *http.Request) page {
	b.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return page{Status: resp.StatusCode, URL: resp.Request.URL, Location: resp.Header.Get("Location"), Body: string(body), Header: resp.Header}
}

func (b *browser) get(u string) page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.do(req)
}

func (b *browser) post(u string, form url.Values) page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

var (
	formRe   = regexp.MustCompile(`(?is)<form[^>]*action="([^"]*)"[^>]*>(.*?)</form>`)
	inputRe  = regexp.MustCompile(`(?is)<input[^>]*>`)
	attrRe   = regexp.MustCompile(`(?is)\b(name|value|type)="([^"]*)"`)
	anchorRe = regexp.MustCompile(`(?is)<a[^>]*href="([^"]*)"[^>]*>(.*?)</a>`)
)

// submit fills the first form of p with fields (over its own inputs) and
// posts it where its action says.
func (b *browser) submit(p page, fields map[string]string) page {
	b.t.Helper()
	m := formRe.FindStringSubmatch(p.Body)
	if m == nil {
		b.t.Fatalf("no form at %s (status %d): %.2000s", p.URL, p.Status, p.Body)
	}
	form := url.Values{}
	for _, in := range inputRe.FindAllString(m[2], -1) {
		var name, value, typ string
		for _, a := range attrRe.FindAllStringSubmatch(in, -1) {
			switch strings.ToLower(a[1]) {
			case "name":
				name = html.UnescapeString(a[2])
			case "value":
				value = html.UnescapeString(a[2])
			case "type":
				typ = strings.ToLower(a[2])
			}
		}
		if name == "" || typ == "submit" {
			continue
		}
		form.Set(name, value)
	}
	for k, v := range fields {
		form.Set(k, v)
	}
	action, err := p.URL.Parse(html.UnescapeString(m[1]))
	if err != nil {
		b.t.Fatal(err)
	}
	return b.post(action.String(), form)
}

// link returns the href of the first link whose text contains text.
func link(t testing.TB, p page, text string) string {
	t.Helper()
	for _, m := range anchorRe.FindAllStringSubmatch(p.Body, -1) {
		if strings.Contains(html.UnescapeString(m[2]), text) {
			u, err := p.URL.Parse(html.UnescapeString(m[1]))
			if err != nil {
				t.Fatal(err)
			}
			return u.String()
		}
	}
	t.Fatalf("no link %q at %s: %.2000s", text, p.URL, p.Body)
	return ""
}

// loginToken is the token in the redirect to the client.
func loginToken(t testing.TB, p page, clientURL string) string {
	t.Helper()
	if p.Status != http.StatusFound || !strings.HasPrefix(p.Location, clientURL) {
		t.Fatalf("want a redirect to %s, got %d Location %q: %.1000s", clientURL, p.Status, p.Location, p.Body)
	}
	u, _ := url.Parse(p.Location)
	tok := u.Query().Get("loginToken")
	if tok == "" {
		t.Fatalf("no loginToken in %s", p.Location)
	}
	return tok
}

// exchange logs in with a login token.
func exchange(t testing.TB, base, token string) *mxtest.Client {
	t.Helper()
	c := mxtest.New(t, base)
	r := c.Must(200, "POST", "/_matrix/client/v3/login", map[string]any{"type": "m.login.token", "token": token})
	c.Token, c.UserID, c.DeviceID = r.Str("access_token"), r.Str("user_id"), r.Str("device_id")
	return c
}

// casUser is a person known to the test CAS server.
type casUser struct {
	Password string
	Attrs    map[string]string
}

// casServer is a CAS 3.0 server at the protocol level (CAS Protocol 3.0
// specification, sections 2.1, 2.2, 2.5 and appendix A): /login shows a
// form and, on good credentials, sends the browser to the service with a
// service ticket; /p3/serviceValidate validates a ticket once, for the
// service it was issued to, and answers the user and their attributes.
type casServer struct {
	*httptest.Server
	mu      sync.Mutex
	users   map[string]casUser
	tickets map[string][2]string // ticket → service, user
}

func newCASServer(t testing.TB, users map[string]casUser) *casServer {
	s := &casServer{users: users, tickets: map[string][2]string{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /cas/login", func(w http.ResponseWriter, r *http.Request) {
		service := r.URL.Query().Get("service")
		if service == "" {
			http.Error(w, "no service", http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, `<html><body><form method="post" action="/cas/login?service=%s">
<input type="text" name="username"><input type="password" name="password"><input type="submit" value="Log in"></form></body></html>`,
			html.EscapeString(url.QueryEscape(service)))
	})
	mux.HandleFunc("POST /cas/login", func(w http.ResponseWriter, r *http.Request) {
		service := r.URL.Query().Get("service")
		user := r.PostFormValue("username")
		s.mu.Lock()
		u, ok := s.users[user]
		s.mu.Unlock()
		if !ok || u.Password != r.PostFormValue("password") {
			http.Error(w, "Invalid credentials", http.StatusUnauthorized)
			return
		}
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		st := "ST-" + hex.EncodeToString(b)
		s.mu.Lock()
		s.tickets[st] = [2]string{service, user}
		s.mu.Unlock()
		sep := "?"
		if strings.Contains(service, "?") {
			sep = "&"
		}
		http.Redirect(w, r, service+sep+"ticket="+url.QueryEscape(st), http.StatusFound)
	})
	mux.HandleFunc("GET /cas/p3/serviceValidate", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		w.Header().Set("Content-Type", "application/xml; charset=utf-8")
		fail := func(code, msg string) {
			fmt.Fprintf(w, `<cas:serviceResponse xmlns:cas="http://www.yale.edu/tp/cas">
  <cas:authenticationFailure code="%s">%s</cas:authenticationFailure>
</cas:serviceResponse>`, code, html.EscapeString(msg))
		}
		if q.Get("service") == "" || q.Get("ticket") == "" {
			fail("INVALID_REQUEST", "service and ticket are required")
			return
		}
		s.mu.Lock()
		tk, ok := s.tickets[q.Get("ticket")]
		delete(s.tickets, q.Get("ticket")) // a ticket is validated once (2.5.3)
		u := s.users[tk[1]]
		s.mu.Unlock()
		switch {
		case !ok:
			fail("INVALID_TICKET", "Ticket "+q.Get("ticket")+" not recognized")
			return
		case tk[0] != q.Get("service"):
			fail("INVALID_SERVICE", "Ticket was issued for another service")
			return
		}
		var attrs strings.Builder
		for k, v := range u.Attrs {
			fmt.Fprintf(&attrs, "      <cas:%s>%s</cas:%s>\n", k, html.EscapeString(v), k)
		}
		fmt.Fprintf(w, `<cas:serviceResponse xmlns:cas="http://www.yale.edu/tp/cas">
  <cas:authenticationSuccess>
    <cas:user>%s</cas:user>
    <cas:attributes>
%s    </cas:attributes>
  </cas:authenticationSuccess>
</cas:serviceResponse>`, html.EscapeString(tk[1]), attrs.String())
	})
	s.Server = httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

func (s *casServer) setAttr(user, k, v string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[user].Attrs[k] = v
}

// casSignIn runs a whole CAS sign-in from Salon's redirect endpoint to the
// page the browser stops at.
func casSignIn(t testing.TB, b *browser, salon, idp, redirectURL, user, password string) page {
	t.Helper()
	p := b.get(salon + "/_matrix/client/v3/login/sso/redirect/" + idp + "?redirectUrl=" + url.QueryEscape(redirectURL))
	if p.Status != 200 || !strings.Contains(p.URL.Path, "/cas/login") {
		t.Fatalf("redirect did not reach the CAS login page: %d %s", p.Status, p.URL)
	}
	return b.submit(p, map[string]string{"username": user, "password": password})
}
