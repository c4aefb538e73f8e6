package federation

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"time"

	"github.com/salonhq/salon/homeserver/netguard"
	"github.com/salonhq/salon/homeserver/route"
	"github.com/salonhq/salon/internal/mxerr"
)

// Federation media (Server-Server API "Content Repository", Matrix
// 1.11): this server's media for other servers as multipart/mixed
// answers — a JSON metadata part ({}) and the file part — and other
// servers' media fetched the same way for this server's clients.

// MediaServer writes local media for another server: the file's
// Content-Type, Content-Disposition and bytes to w as a download would
// (thumbnail: a thumbnail chosen by the request's width, height and
// method), or returns an error (M_NOT_FOUND, ...) having written nothing.
// homeserver's media repository implements it.
type MediaServer interface {
	ServeFederationMedia(w http.ResponseWriter, r *http.Request, origin, mediaID string, thumbnail bool) error
}

// SetMedia installs the media repository that answers other servers'
// media requests (the repository is built after the Service).
func (s *Service) SetMedia(m MediaServer) { s.media = m }

func (s *Service) mediaRoutes(rt *route.Router, get func(route.HandlerFunc) route.Methods) {
	rt.Handle("/_matrix/federation/v1/media/download/{mediaId}", get(s.authed(s.serveMedia(false))))
	rt.Handle("/_matrix/federation/v1/media/thumbnail/{mediaId}", get(s.authed(s.serveMedia(true))))
}

func (s *Service) serveMedia(thumbnail bool) authedFunc {
	return func(w http.ResponseWriter, r *http.Request, origin string, _ []byte) error {
		if s.media == nil {
			return mxerr.NotFoundf("Media not found")
		}
		mw := &multipartAnswer{w: w, header: http.Header{}}
		if err := s.media.ServeFederationMedia(mw, r, origin, r.PathValue("mediaId"), thumbnail); err != nil {
			if mw.started {
				// The file part has begun: the answer is cut short.
				s.log.Info("federation media answer cut short", "origin", origin, "err", err)
				return nil
			}
			return err
		}
		return mw.finish()
	}
}

// multipartAnswer frames what a download handler writes as the spec's
// multipart/mixed answer: the metadata part, then a part with the file's
// Content-Type and Content-Disposition and its bytes.
type multipartAnswer struct {
	w       http.ResponseWriter
	header  http.Header
	mp      *multipart.Writer
	part    io.Writer
	started bool
	status  int
}

func (a *multipartAnswer) Header() http.Header { return a.header }

func (a *multipartAnswer) WriteHeader(status int) {
	if a.started || a.status != 0 {
		return
	}
	if status != http.StatusOK {
		// Not the file (the handler answered something else): as is.
		a.status = status
		for k, v := range a.header {
			a.w.Header()[k] = v
		}
		a.w.WriteHeader(status)
		return
	}
	a.started = true
	a.mp = multipart.NewWriter(a.w)
	a.w.Header().Set("Content-Type", "multipart/mixed; boundary="+a.mp.Boundary())
	a.w.WriteHeader(http.StatusOK)
	meta, _ := a.mp.CreatePart(textproto.MIMEHeader{"Content-Type": {"application/json"}})
	_, _ = meta.Write([]byte("{}"))
	ph := textproto.MIMEHeader{}
	for _, k := range []string{"Content-Type", "Content-Disposition"} {
		if v := a.header.Get(k); v != "" {
			ph.Set(k, v)
		}
	}
	a.part, _ = a.mp.CreatePart(ph)
}

func (a *multipartAnswer) Write(b []byte) (int, error) {
	if !a.started && a.status == 0 {
		a.WriteHeader(http.StatusOK)
	}
	if a.status != 0 {
		return a.w.Write(b)
	}
	return a.part.Write(b)
}

func (a *multipartAnswer) finish() error {
	if a.mp != nil {
		return a.mp.Close()
	}
	return nil
}

// RemoteMedia is a file another server answered: its Content-Type, the
// file name of its Content-Disposition ("" for none) and its bytes, for
// the caller to read and close.
type RemoteMedia struct {
	ContentType string
	FileName    string
	Body        io.ReadCloser
}

// Sentinel answers of DownloadMedia, for the media repository to tell its
// client.
var (
	// ErrMediaNotFound: the server has no such media (it answered 404).
	ErrMediaNotFound = errors.New("federation: remote media not found")
)

// mediaTimeout bounds fetching one remote file, transfer included.
const mediaTimeout = 2 * time.Minute

// DownloadMedia fetches media mediaID of server (thumbnail: a thumbnail of
// the given width, height and method) over federation. An answer of the
// spec's multipart shape gives its file part (or the content at the URL
// of its Location header, on a public address); 404 is ErrMediaNotFound;
// anything else an error wrapping ErrUnreachable or ErrBadResponse.
func (s *Service) DownloadMedia(ctx context.Context, server, mediaID string, thumb url.Values) (*RemoteMedia, error) {
	if !s.enabled {
		return nil, ErrDisabled
	}
	ctx, cancel := context.WithTimeout(ctx, mediaTimeout)
	kind := "download"
	if thumb != nil {
		kind = "thumbnail"
	}
	resp, err := s.Client.Open(ctx, http.MethodGet, server, "/_matrix/federation/v1/media/"+kind+"/"+url.PathEscape(mediaID), thumb, nil, true)
	if err != nil {
		cancel()
		return nil, err
	}
	fail := func(err error) (*RemoteMedia, error) {
		resp.Body.Close()
		cancel()
		return nil, err
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return fail(fmt.Errorf("%w: %s/%s", ErrMediaNotFound, server, mediaID))
	case resp.StatusCode != http.StatusOK:
		return fail(fmt.Errorf("%w: %s answered %d", ErrBadResponse, server, resp.StatusCode))
	}
	mt, params, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/mixed" || params["boundary"] == "" {
		return fail(fmt.Errorf("%w: %s answered %q, not multipart/mixed", ErrBadResponse, server, resp.Header.Get("Content-Type")))
	}
	mr := multipart.NewReader(resp.Body, params["boundary"])
	meta, err := mr.NextPart()
	if err != nil {
		return fail(fmt.Errorf("%w: %s: no metadata part: %v", ErrBadResponse, server, err))
	}
	if _, err := io.Copy(io.Discard, io.LimitReader(meta, 64<<10)); err != nil {
		return fail(fmt.Errorf("%w: %s: %v", ErrBadResponse, server, err))
	}
	file, err := mr.NextPart()
	if err != nil {
		return fail(fmt.Errorf("%w: %s: no file part: %v", ErrBadResponse, server, err))
	}
	if loc := file.Header.Get("Location"); loc != "" {
		resp.Body.Close()
		return s.mediaAt(ctx, cancel, server, loc)
	}
	return &RemoteMedia{ContentType: file.Header.Get("Content-Type"), FileName: fileNameOf(file.Header.Get("Content-Disposition")),
		Body: &cancelCloser{Reader: file, close: func() error { cancel(); return resp.Body.Close() }}}, nil
}

// mediaAt fetches the URL a Location part names: HTTPS or HTTP on a
// public address only, like URL previews.
func (s *Service) mediaAt(ctx context.Context, cancel context.CancelFunc, server, loc string) (*RemoteMedia, error) {
	u, err := url.Parse(loc)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		cancel()
		return nil, fmt.Errorf("%w: %s gave the location %q", ErrBadResponse, server, loc)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("%w: %v", ErrBadResponse, err)
	}
	resp, err := s.locationClient().Do(req)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("%w: %s: %v", ErrUnreachable, u.Host, err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		cancel()
		if resp.StatusCode == http.StatusNotFound {
			return nil, fmt.Errorf("%w: %s", ErrMediaNotFound, loc)
		}
		return nil, fmt.Errorf("%w: %s answered %d", ErrBadResponse, u.Host, resp.StatusCode)
	}
	return &RemoteMedia{ContentType: resp.Header.Get("Content-Type"), FileName: fileNameOf(resp.Header.Get("Content-Disposition")),
		Body: &cancelCloser{Reader: resp.Body, close: func() error { cancel(); return resp.Body.Close() }}}, nil
}

// locationClient fetches Location URLs (made once, on first need).
func (s *Service) locationClient() *http.Client {
	s.locOnce.Do(func() {
		d := &net.Dialer{Timeout: 10 * time.Second, Control: netguard.Control(s.p.Config.dialAllowed())}
		s.loc = &http.Client{Timeout: mediaTimeout, Transport: &http.Transport{DialContext: d.DialContext, Proxy: nil,
			TLSClientConfig: &tls.Config{RootCAs: s.roots, MinVersion: tls.VersionTLS12}, ResponseHeaderTimeout: 30 * time.Second}}
	})
	return s.loc
}

type cancelCloser struct {
	io.Reader
	close func() error
}

func (c *cancelCloser) Close() error { return c.close() }

// fileNameOf is the file name a Content-Disposition gives ("" for none).
func fileNameOf(cd string) string {
	if cd == "" {
		return ""
	}
	_, params, err := mime.ParseMediaType(cd)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(params["filename"])
}
