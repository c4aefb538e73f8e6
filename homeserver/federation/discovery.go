package federation

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Destination is where requests for a server name go: the address to
// dial, the Host header to send and the name the TLS certificate must be
// valid for (Server-Server API, "Resolving server names").
type Destination struct {
	ServerName string
	Addr       string // host:port dialled
	Host       string // the Host header
	TLSName    string // SNI and the certificate's name
	// Override says Addr came from federation.resolve: the operator's
	// choice, so it may be a private or loopback address.
	Override bool
}

// Resolver turns server names into Destinations. Overrides (the
// federation.resolve setting) win over discovery; the rest follows the
// spec's steps: IP literal, explicit port, .well-known, SRV
// _matrix-fed._tcp then _matrix._tcp, port 8448.
type Resolver struct {
	// Overrides map server names to HOST:PORT.
	Overrides map[string]string
	// LookupSRV is net.DefaultResolver.LookupSRV unless a test sets it.
	LookupSRV func(ctx context.Context, service, proto, name string) (string, []*net.SRV, error)
	// WellKnown fetches https://host/.well-known/matrix/server and returns
	// the m.server value ("" when there is none).
	WellKnown func(ctx context.Context, host string) (string, error)
	now       func() time.Time

	mu    sync.Mutex
	cache map[string]resolved
}

type resolved struct {
	d       Destination
	expires time.Time
}

// resolveTTL is how long an answer is kept (the spec lets well-known
// answers be cached for up to 48 hours; an hour keeps moves quick).
const resolveTTL = time.Hour

// Resolve returns where to send requests for serverName.
func (r *Resolver) Resolve(ctx context.Context, serverName string) (Destination, error) {
	if addr, ok := r.Overrides[serverName]; ok {
		return Destination{ServerName: serverName, Addr: addr, Host: serverName, TLSName: trimBrackets(hostOf(serverName)), Override: true}, nil
	}
	now := time.Now
	if r.now != nil {
		now = r.now
	}
	r.mu.Lock()
	if c, ok := r.cache[serverName]; ok && now().Before(c.expires) {
		r.mu.Unlock()
		return c.d, nil
	}
	r.mu.Unlock()
	d, err := r.discover(ctx, serverName)
	if err != nil {
		return d, err
	}
	r.mu.Lock()
	if r.cache == nil {
		r.cache = map[string]resolved{}
	}
	r.cache[serverName] = resolved{d: d, expires: now().Add(resolveTTL)}
	r.mu.Unlock()
	return d, nil
}

func (r *Resolver) discover(ctx context.Context, serverName string) (Destination, error) {
	host, port := splitServerName(serverName)
	d := Destination{ServerName: serverName, Host: serverName}
	// 1. An IP literal, with or without a port.
	if ip, err := netip.ParseAddr(trimBrackets(host)); err == nil {
		d.Addr = net.JoinHostPort(ip.String(), orDefault(port, "8448"))
		d.TLSName = ip.String()
		return d, nil
	}
	// 2. A host name with an explicit port.
	if port != "" {
		d.Addr, d.TLSName = net.JoinHostPort(host, port), host
		return d, nil
	}
	// 3. .well-known delegation.
	if r.WellKnown != nil {
		if delegated, err := r.WellKnown(ctx, host); err == nil && delegated != "" {
			dhost, dport := splitServerName(delegated)
			d.Host = delegated
			if ip, err := netip.ParseAddr(trimBrackets(dhost)); err == nil {
				d.Addr, d.TLSName = net.JoinHostPort(ip.String(), orDefault(dport, "8448")), ip.String()
				return d, nil
			}
			d.TLSName = dhost
			if dport != "" {
				d.Addr = net.JoinHostPort(dhost, dport)
				return d, nil
			}
			if addr, ok := r.srv(ctx, dhost); ok {
				d.Addr = addr
				return d, nil
			}
			d.Addr = net.JoinHostPort(dhost, "8448")
			return d, nil
		}
	}
	// 4./5. SRV records, then 6. port 8448.
	d.TLSName = host
	if addr, ok := r.srv(ctx, host); ok {
		d.Addr = addr
		return d, nil
	}
	d.Addr = net.JoinHostPort(host, "8448")
	return d, nil
}

// srv looks up _matrix-fed._tcp.host, then the deprecated _matrix._tcp.
func (r *Resolver) srv(ctx context.Context, host string) (string, bool) {
	lookup := r.LookupSRV
	if lookup == nil {
		lookup = net.DefaultResolver.LookupSRV
	}
	for _, service := range []string{"matrix-fed", "matrix"} {
		_, addrs, err := lookup(ctx, service, "tcp", host)
		if err != nil || len(addrs) == 0 {
			continue
		}
		// LookupSRV sorts by priority and shuffles by weight.
		a := addrs[0]
		if a.Target == "." {
			// "Service not available" (RFC 2782).
			return "", false
		}
		return net.JoinHostPort(strings.TrimSuffix(a.Target, "."), strconv.Itoa(int(a.Port))), true
	}
	return "", false
}

// splitServerName splits a server name into host (IPv6 with brackets) and
// port ("" when none).
func splitServerName(s string) (host, port string) {
	host = hostOf(s)
	if len(s) > len(host)+1 && s[len(host)] == ':' {
		port = s[len(host)+1:]
	}
	return host, port
}

func trimBrackets(h string) string { return strings.TrimSuffix(strings.TrimPrefix(h, "["), "]") }

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// fetchWellKnown is the Resolver's WellKnown over HTTPS with client (at
// most 50 kB, no redirects beyond the client's own policy).
func fetchWellKnown(client *http.Client) func(ctx context.Context, host string) (string, error) {
	return func(ctx context.Context, host string) (string, error) {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+host+"/.well-known/matrix/server", nil)
		if err != nil {
			return "", err
		}
		resp, err := client.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return "", fmt.Errorf("well-known: status %d", resp.StatusCode)
		}
		var wk struct {
			Server string `json:"m.server"`
		}
		if err := json.NewDecoder(io.LimitReader(resp.Body, 50_000)).Decode(&wk); err != nil {
			return "", fmt.Errorf("well-known: %w", err)
		}
		if wk.Server == "" {
			return "", nil
		}
		h, p := splitServerName(wk.Server)
		if h == "" || (p != "" && !validPortString(p)) {
			return "", fmt.Errorf("well-known: bad m.server %q", wk.Server)
		}
		return wk.Server, nil
	}
}

func validPortString(p string) bool {
	n, err := strconv.Atoi(p)
	return err == nil && n > 0 && n < 65536
}
