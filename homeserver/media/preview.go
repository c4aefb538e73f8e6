package media

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"image"
	"io"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"golang.org/x/net/html"
	"golang.org/x/net/html/charset"
	"golang.org/x/sync/singleflight"

	"github.com/salonhq/salon/homeserver/netguard"
	"github.com/salonhq/salon/homeserver/store"
	"github.com/salonhq/salon/internal/mxerr"
)

const (
	previewTTL       = time.Hour
	previewCacheSize = 1000
	maxPreviewURL    = 2048
	maxOGValue       = 1000 // runes
	maxOGKeys        = 40
)

// previewer fetches pages for URL previews: public addresses only, within
// the configured size and time, and caches the answers for an hour.
type previewer struct {
	r      *Repo
	client *http.Client
	// allow decides which addresses may be dialled (tests widen it).
	allow atomic.Pointer[func(netip.Addr) bool]

	mu    sync.Mutex
	cache map[string]cachedPreview
	group singleflight.Group
}

type cachedPreview struct {
	og      map[string]any
	expires time.Time
}

func newPreviewer(r *Repo) *previewer {
	p := &previewer{r: r, cache: map[string]cachedPreview{}}
	p.setAllow(netguard.PublicOr(r.cfg.URLPreview.AllowNetworks))
	timeout := r.cfg.URLPreview.Timeout.D()
	dialer := &net.Dialer{
		Timeout: timeout,
		Control: netguard.Control(func(ip netip.Addr) bool { return (*p.allow.Load())(ip) }),
	}
	p.client = &http.Client{
		Transport: &http.Transport{
			Proxy:                  nil, // a proxy would hide the real destination from the guard
			DialContext:            dialer.DialContext,
			TLSHandshakeTimeout:    timeout,
			ResponseHeaderTimeout:  timeout,
			MaxResponseHeaderBytes: 64 << 10,
			// Previews are rare: no idle connections to keep or leak.
			DisableKeepAlives: true,
		},
		Timeout: timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 5 {
				return errors.New("too many redirects")
			}
			if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
				return errors.New("redirect to a non-HTTP URL")
			}
			return nil
		},
	}
	return p
}

func (p *previewer) setAllow(f func(netip.Addr) bool) { p.allow.Store(&f) }

// GET /_matrix/client/v1/media/preview_url
func (r *Repo) previewURL(w http.ResponseWriter, req *http.Request, _ string) error {
	if !r.cfg.URLPreview.Enabled {
		return mxerr.New(mxerr.Unrecognized, "URL previews are disabled on this server")
	}
	raw := req.URL.Query().Get("url")
	if raw == "" {
		return mxerr.New(mxerr.MissingParam, "Missing url")
	}
	u, err := url.Parse(raw)
	if err != nil || len(raw) > maxPreviewURL || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		return mxerr.InvalidParamf("url must be an http or https URL")
	}
	u.Fragment, u.RawFragment, u.User = "", "", nil
	og, err := r.preview.get(req.Context(), u.String())
	if err != nil {
		return err
	}
	mxerr.WriteJSON(w, http.StatusOK, og)
	return nil
}

func (p *previewer) get(ctx context.Context, u string) (map[string]any, error) {
	now := time.Now()
	p.mu.Lock()
	if c, ok := p.cache[u]; ok && now.Before(c.expires) {
		p.mu.Unlock()
		return c.og, nil
	}
	p.mu.Unlock()
	ch := p.group.DoChan(u, func() (any, error) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.r.cfg.URLPreview.Timeout.D())
		defer cancel()
		og, err := p.fetch(ctx, u)
		if err != nil {
			return nil, err
		}
		p.remember(u, og, now)
		return og, nil
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
		return res.Val.(map[string]any), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (p *previewer) remember(u string, og map[string]any, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.cache) >= previewCacheSize {
		for k, c := range p.cache {
			if now.After(c.expires) || len(p.cache) >= previewCacheSize {
				delete(p.cache, k)
			}
		}
	}
	p.cache[u] = cachedPreview{og: og, expires: now.Add(previewTTL)}
}

// request fetches u and returns the response with a 2xx status.
func (p *previewer) request(ctx context.Context, u string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, mxerr.InvalidParamf("url must be an http or https URL")
	}
	req.Header.Set("User-Agent", "Salon (Matrix homeserver) URL preview")
	req.Header.Set("Accept", "text/html,application/xhtml+xml,image/*;q=0.9,*/*;q=0.1")
	resp, err := p.client.Do(req)
	if err != nil {
		if errors.Is(err, netguard.ErrBlocked) {
			return nil, mxerr.Forbid("URL previews of addresses that are not public are not allowed")
		}
		p.r.log.Debug("url preview fetch failed", "err", err)
		if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
			return nil, mxerr.New(mxerr.Unknown, "Timed out fetching the URL").WithStatus(http.StatusGatewayTimeout)
		}
		return nil, mxerr.New(mxerr.Unknown, "Could not fetch the URL").WithStatus(http.StatusBadGateway)
	}
	if resp.StatusCode/100 != 2 {
		resp.Body.Close()
		return nil, mxerr.New(mxerr.Unknown, "The URL answered HTTP %d", resp.StatusCode).WithStatus(http.StatusBadGateway)
	}
	return resp, nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// fetch makes the preview of u: OpenGraph tags of an HTML page (with its
// image stored in the repository), or an image itself.
func (p *previewer) fetch(ctx context.Context, u string) (map[string]any, error) {
	resp, err := p.request(ctx, u)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	ct := resp.Header.Get("Content-Type")
	mt, _, _ := mime.ParseMediaType(ct)
	body := io.LimitReader(resp.Body, p.r.cfg.URLPreview.MaxBytes)
	og := map[string]any{}
	switch {
	case mt == "text/html" || mt == "application/xhtml+xml":
		og = parseOpenGraph(body, ct)
		img, _ := og["og:image"].(string)
		delete(og, "og:image")
		if img != "" {
			if ref, err := resp.Request.URL.Parse(img); err == nil && (ref.Scheme == "http" || ref.Scheme == "https") {
				if err := p.image(ctx, ref.String(), og); err != nil {
					p.r.log.Debug("url preview image not stored", "err", err)
				}
			}
		}
	case strings.HasPrefix(mt, "image/"):
		if err := p.storeImage(ctx, resp.Body, og); err != nil {
			p.r.log.Debug("url preview image not stored", "err", err)
		}
	}
	return og, nil
}

// image fetches an og:image and stores it, adding og:image (as mxc://),
// its type, size and dimensions to og.
func (p *previewer) image(ctx context.Context, u string, og map[string]any) error {
	resp, err := p.request(ctx, u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return p.storeImage(ctx, resp.Body, og)
}

func (p *previewer) storeImage(ctx context.Context, body io.Reader, og map[string]any) error {
	br := bufio.NewReaderSize(body, 64<<10)
	head, _ := br.Peek(64 << 10)
	cfg, format, err := image.DecodeConfig(bytes.NewReader(head))
	if err != nil {
		return err // not an image we know: no og:image
	}
	r := p.r
	n, key, bw, err := r.write(ctx, br, r.cfg.URLPreview.MaxBytes)
	if err != nil {
		return err
	}
	defer func() { _ = bw.Abort() }()
	now := r.now().UnixMilli()
	m := store.MediaMeta{MediaID: newMediaID(), SHA256: key[:], Size: n, ContentType: "image/" + format,
		CreatedTS: now, UploadedTS: now, Restricted: r.cfg.AuthenticatedMedia}
	if err := r.p.Store.CommitMedia(ctx, m, 0, func() error { return bw.Commit(key) }); err != nil {
		return err
	}
	og["og:image"] = r.mxc(m.MediaID)
	og["og:image:type"] = m.ContentType
	og["og:image:width"] = cfg.Width
	og["og:image:height"] = cfg.Height
	og["matrix:image:size"] = n
	return nil
}

// parseOpenGraph reads og: meta tags, the description and the title from
// the head of an HTML page (in any charset the page declares).
func parseOpenGraph(body io.Reader, contentType string) map[string]any {
	og := map[string]any{}
	rd, err := charset.NewReader(body, contentType)
	if err != nil {
		rd = body
	}
	z := html.NewTokenizer(rd)
	var title strings.Builder
	inTitle := false
	description := ""
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			goto done // end of input or of the size limit
		case html.StartTagToken, html.SelfClosingTagToken:
			name, hasAttr := z.TagName()
			switch string(name) {
			case "title":
				inTitle = tt == html.StartTagToken
			case "body":
				goto done
			case "meta":
				var property, metaName, content string
				for hasAttr {
					var k, v []byte
					k, v, hasAttr = z.TagAttr()
					switch string(k) {
					case "property":
						property = strings.ToLower(string(v))
					case "name":
						metaName = strings.ToLower(string(v))
					case "content":
						content = string(v)
					}
				}
				if property == "" && strings.HasPrefix(metaName, "og:") {
					property = metaName // a common mistake pages make
				}
				switch {
				case strings.HasPrefix(property, "og:") && !strings.HasPrefix(property, "og:image:"):
					if _, ok := og[property]; !ok && len(og) < maxOGKeys {
						og[property] = clip(content)
					}
				case metaName == "description" && description == "":
					description = clip(content)
				}
			}
		case html.TextToken:
			if inTitle && title.Len() < 4*maxOGValue {
				title.Write(z.Text())
			}
		case html.EndTagToken:
			name, _ := z.TagName()
			switch string(name) {
			case "title":
				inTitle = false
			case "head":
				goto done
			}
		}
	}
done:
	if _, ok := og["og:title"]; !ok {
		if t := strings.Join(strings.Fields(title.String()), " "); t != "" {
			og["og:title"] = clip(t)
		}
	}
	if _, ok := og["og:description"]; !ok && description != "" {
		og["og:description"] = description
	}
	return og
}

// clip trims s to maxOGValue runes of valid UTF-8.
func clip(s string) string {
	s = strings.TrimSpace(strings.ToValidUTF8(s, ""))
	if utf8.RuneCountInString(s) <= maxOGValue {
		return s
	}
	return string([]rune(s)[:maxOGValue]) + "…"
}
