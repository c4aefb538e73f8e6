package federation

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"time"

	"github.com/salonhq/salon/homeserver/events"
	"github.com/salonhq/salon/homeserver/netguard"
)

// Client makes requests to other servers: it resolves the destination,
// connects with TLS (system roots or the configured CA), signs the request
// with X-Matrix and decodes the answer.
type Client struct {
	origin   string
	key      events.SigningKey
	resolver *Resolver
	policy   Policy
	http     *http.Client
	wk       *http.Client // .well-known fetches
	metrics  *metrics
}

type destinationKey struct{}

// maxResponse bounds an answer's body.
const maxResponse = 8 << 20

func newClient(origin string, key events.SigningKey, resolver *Resolver, policy Policy, roots *x509.CertPool, allow func(netip.Addr) bool, m *metrics) *Client {
	// Other servers are reached at public addresses only (a request's
	// origin, a .well-known answer or an SRV record must not make Salon
	// connect into its own network), unless federation.resolve names the
	// address (or federation.allow_networks lists it).
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	guarded := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second, Control: netguard.Control(allow)}
	tlsFor := func(name string) *tls.Config {
		return &tls.Config{ServerName: name, RootCAs: roots, MinVersion: tls.VersionTLS12}
	}
	t := &http.Transport{
		// Every connection goes to the resolved address of the server
		// name the request is for, checked against the TLS name
		// discovery gave.
		DialTLSContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			d, ok := ctx.Value(destinationKey{}).(Destination)
			if !ok {
				return nil, errors.New("federation: no destination for the connection")
			}
			dial := guarded
			if d.Override {
				dial = dialer
			}
			conn, err := dial.DialContext(ctx, "tcp", d.Addr)
			if err != nil {
				return nil, err
			}
			tc := tls.Client(conn, tlsFor(d.TLSName))
			if err := tc.HandshakeContext(ctx); err != nil {
				conn.Close()
				return nil, err
			}
			return tc, nil
		},
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: 60 * time.Second,
	}
	c := &Client{origin: origin, key: key, resolver: resolver, policy: policy, metrics: m,
		http: &http.Client{Transport: t, Timeout: 2 * time.Minute,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	if resolver.WellKnown == nil {
		wk := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}, Proxy: nil,
			DialContext: guarded.DialContext,
		}}
		resolver.WellKnown = fetchWellKnown(wk)
		c.wk = wk
	}
	return c
}

// Close drops idle connections.
func (c *Client) Close() {
	c.http.CloseIdleConnections()
	if c.wk != nil {
		c.wk.CloseIdleConnections()
	}
}

// Get sends a signed GET.
func (c *Client) Get(ctx context.Context, destination, path string, query url.Values, out any) error {
	return c.Do(ctx, http.MethodGet, destination, path, query, nil, out, true)
}

// Post sends a signed POST with a JSON body.
func (c *Client) Post(ctx context.Context, destination, path string, body, out any) error {
	return c.Do(ctx, http.MethodPost, destination, path, nil, body, out, true)
}

// Put sends a signed PUT with a JSON body.
func (c *Client) Put(ctx context.Context, destination, path string, body, out any) error {
	return c.Do(ctx, http.MethodPut, destination, path, nil, body, out, true)
}

// Do sends a request to destination. path is already escaped. signed:
// with an X-Matrix Authorization header (every endpoint but the key
// endpoints). A non-2xx answer is a *RemoteError.
func (c *Client) Do(ctx context.Context, method, destination, path string, query url.Values, body, out any, signed bool) error {
	var content []byte
	if body != nil {
		var err error
		if content, err = json.Marshal(body); err != nil {
			return err
		}
	}
	resp, err := c.Open(ctx, method, destination, path, query, content, signed)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrUnreachable, destination, err)
	}
	if len(b) > maxResponse {
		return fmt.Errorf("%w: %s answered more than %d bytes", ErrBadResponse, destination, maxResponse)
	}
	if resp.StatusCode/100 != 2 {
		re := &RemoteError{Status: resp.StatusCode}
		var e struct {
			Code    string `json:"errcode"`
			Message string `json:"error"`
		}
		if json.Unmarshal(b, &e) == nil {
			re.Code, re.Message = e.Code, e.Message
		}
		if re.Code == "" {
			re.Code = "M_UNKNOWN"
		}
		return re
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrBadResponse, destination, err)
	}
	return nil
}

// Open sends a request to destination with content (JSON, or nil) and
// returns the answer unread, whatever its status, for the caller to read
// and close (media downloads stream their answer).
func (c *Client) Open(ctx context.Context, method, destination, path string, query url.Values, content []byte, signed bool) (*http.Response, error) {
	if destination == c.origin {
		return nil, fmt.Errorf("federation: %s is this server", destination)
	}
	if !c.policy.Allowed(destination) {
		return nil, fmt.Errorf("%w: %s", ErrDenied, destination)
	}
	if !events.ValidServerName(destination) {
		return nil, fmt.Errorf("%w: %q is not a server name", ErrUnreachable, destination)
	}
	d, err := c.resolver.Resolve(ctx, destination)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrUnreachable, destination, err)
	}
	uri := path
	if len(query) > 0 {
		uri += "?" + query.Encode()
	}
	ctx = context.WithValue(ctx, destinationKey{}, d)
	req, err := http.NewRequestWithContext(ctx, method, "https://"+destination+uri, bytes.NewReader(content))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnreachable, err)
	}
	req.Host = d.Host
	if content != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if signed {
		x, err := SignRequest(c.key, method, uri, c.origin, destination, content)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", x.String())
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrUnreachable, destination, err)
	}
	return resp, nil
}
