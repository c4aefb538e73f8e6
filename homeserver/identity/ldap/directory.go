package ldap

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"sync/atomic"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/salonhq/salon/homeserver/identity"
)

// entry is one person in the directory, as Salon reads it.
type entry struct {
	DN          string
	ID          string // the stable ID: entryUUID or the DN
	Login       string
	Localpart   string // normalised from localpart_attribute; "" if it has none
	DisplayName string
	Mail        string
}

// directory talks to the LDAP server: connections, binds and searches,
// each bounded by the configured timeout.
type directory struct {
	cfg *Config
	tls *tls.Config
	// queries counts search requests sent (each page counts).
	queries atomic.Int64
}

// query sends one search request.
func (d *directory) query(c *goldap.Conn, req *goldap.SearchRequest) (*goldap.SearchResult, error) {
	d.queries.Add(1)
	return c.Search(req)
}

func newDirectory(cfg *Config) (*directory, error) {
	d := &directory{cfg: cfg}
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, err
	}
	host := u.Hostname()
	d.tls = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ldap.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ldap.ca_file: %s holds no PEM certificate", cfg.CAFile)
		}
		d.tls.RootCAs = pool
	}
	return d, nil
}

// dial connects and binds as the service account.
func (d *directory) dial(ctx context.Context) (*goldap.Conn, error) {
	dialer := &net.Dialer{Timeout: d.cfg.Timeout}
	if dl, ok := ctx.Deadline(); ok {
		dialer.Deadline = dl
	}
	c, err := goldap.DialURL(d.cfg.URL, goldap.DialWithDialer(dialer), goldap.DialWithTLSConfig(d.tls))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	c.SetTimeout(d.cfg.Timeout)
	if d.cfg.StartTLS {
		if err := c.StartTLS(d.tls); err != nil {
			c.Close()
			return nil, fmt.Errorf("%w: StartTLS: %v", ErrUnavailable, err)
		}
	}
	if err := d.serviceBind(c); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func (d *directory) serviceBind(c *goldap.Conn) error {
	var err error
	if d.cfg.BindDN == "" {
		err = c.UnauthenticatedBind("")
	} else {
		err = c.Bind(d.cfg.BindDN, string(d.cfg.BindPassword))
	}
	if err != nil {
		if goldap.IsErrorWithCode(err, goldap.LDAPResultInvalidCredentials) {
			return fmt.Errorf("%w: the service bind (ldap.bind_dn) was refused: %v", ErrUnavailable, err)
		}
		return fmt.Errorf("%w: service bind: %v", ErrUnavailable, err)
	}
	return nil
}

// attributes are those every user search asks for.
func (d *directory) attributes() []string {
	a := []string{d.cfg.LoginAttribute, d.cfg.LocalpartAttribute, d.cfg.DisplayNameAttribute, d.cfg.MailAttribute}
	if !d.idIsDN() {
		a = append(a, d.cfg.IDAttribute)
	}
	return a
}

func (d *directory) idIsDN() bool { return strings.EqualFold(d.cfg.IDAttribute, "dn") }

// userFilter ANDs the configured user filter with more conditions.
func (d *directory) userFilter(extra string) string {
	f := d.cfg.UserFilter
	if !strings.HasPrefix(f, "(") {
		f = "(" + f + ")"
	}
	return "(&" + f + extra + ")"
}

// eq is an equality assertion with the value escaped (RFC 4515), so a
// login name such as `*)(uid=*` matches nothing but itself.
func eq(attr, value string) string { return "(" + attr + "=" + goldap.EscapeFilter(value) + ")" }

func (d *directory) entry(e *goldap.Entry) entry {
	out := entry{
		DN:          e.DN,
		Login:       e.GetAttributeValue(d.cfg.LoginAttribute),
		Localpart:   identity.NormaliseLocalpart(e.GetAttributeValue(d.cfg.LocalpartAttribute)),
		DisplayName: e.GetAttributeValue(d.cfg.DisplayNameAttribute),
		Mail:        e.GetAttributeValue(d.cfg.MailAttribute),
	}
	if d.idIsDN() {
		out.ID = normaliseDN(e.DN)
	} else {
		out.ID = e.GetAttributeValue(d.cfg.IDAttribute)
	}
	return out
}

// search runs a subtree search for users under the base DN.
func (d *directory) search(c *goldap.Conn, filter string, sizeLimit int) ([]entry, error) {
	req := goldap.NewSearchRequest(d.cfg.BaseDN, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases,
		sizeLimit, int(d.cfg.Timeout.Seconds()+0.5), false, filter, d.attributes(), nil)
	res, err := d.query(c, req)
	if err != nil && !goldap.IsErrorWithCode(err, goldap.LDAPResultSizeLimitExceeded) {
		return nil, classify(err)
	}
	var out []entry
	if res != nil {
		for _, e := range res.Entries {
			out = append(out, d.entry(e))
		}
	}
	return out, nil
}

// pagedSearch runs a subtree search for users with the paged-results
// control, so a directory's size limit does not cut large groups short.
func (d *directory) pagedSearch(c *goldap.Conn, filter string) ([]entry, error) {
	req := goldap.NewSearchRequest(d.cfg.BaseDN, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases,
		0, 0, false, filter, d.attributes(), nil)
	res, err := c.SearchWithPaging(req, uint32(d.cfg.Sync.PageSize))
	if err != nil {
		d.queries.Add(1)
		return nil, classify(err)
	}
	d.queries.Add(int64(len(res.Entries)/d.cfg.Sync.PageSize + 1))
	out := make([]entry, 0, len(res.Entries))
	for _, e := range res.Entries {
		out = append(out, d.entry(e))
	}
	return out, nil
}

// byID finds the entry with a stable ID (nil when it is gone or no longer
// matches the user filter).
func (d *directory) byID(c *goldap.Conn, id string) (*entry, error) {
	var es []entry
	var err error
	if d.idIsDN() {
		req := goldap.NewSearchRequest(id, goldap.ScopeBaseObject, goldap.NeverDerefAliases,
			1, int(d.cfg.Timeout.Seconds()+0.5), false, d.userFilter(""), d.attributes(), nil)
		res, serr := d.query(c, req)
		if goldap.IsErrorWithCode(serr, goldap.LDAPResultNoSuchObject) {
			return nil, nil
		}
		if serr != nil {
			return nil, classify(serr)
		}
		for _, e := range res.Entries {
			es = append(es, d.entry(e))
		}
	} else if es, err = d.search(c, d.userFilter(eq(d.cfg.IDAttribute, id)), 2); err != nil {
		return nil, err
	}
	if len(es) != 1 {
		return nil, nil
	}
	return &es[0], nil
}

// classify marks network failures as ErrUnavailable; other errors are the
// directory's answers.
func classify(err error) error {
	var le *goldap.Error
	if errors.As(err, &le) && le.ResultCode == goldap.ErrorNetwork {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	if goldap.IsErrorAnyOf(err, goldap.LDAPResultUnavailable, goldap.LDAPResultBusy, goldap.LDAPResultTimeLimitExceeded, goldap.ErrorNetwork, goldap.LDAPResultTimeout) {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return fmt.Errorf("ldap: %w", err)
}

// normaliseDN gives a DN one spelling (attribute types and values lower
// case, no spaces around separators) so DNs compare as the directory does
// for the usual case-insensitive attributes.
func normaliseDN(dn string) string {
	p, err := goldap.ParseDN(dn)
	if err != nil {
		return strings.ToLower(strings.TrimSpace(dn))
	}
	var parts []string
	for _, rdn := range p.RDNs {
		var as []string
		for _, a := range rdn.Attributes {
			as = append(as, strings.ToLower(a.Type)+"="+strings.ToLower(a.Value))
		}
		parts = append(parts, strings.Join(as, "+"))
	}
	return strings.Join(parts, ",")
}

// escapeSubstring escapes a value for a substring assertion: the same
// escaping as an equality value, so the user's own * is a literal.
func escapeSubstring(v string) string { return goldap.EscapeFilter(v) }
