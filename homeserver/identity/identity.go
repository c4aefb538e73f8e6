// Package identity turns an identity proven at an outside identity
// provider (SAML, CAS) into a login on a local account: the single sign-on
// flow of the Client-Server API (m.login.sso), the stable link between a
// provider's subject and a Matrix user, and the m.login.sso stage of
// user-interactive auth. The protocols live in identity/saml and
// identity/cas behind the Provider interface. It never imports clientapi.
package identity

import (
	"context"
	"errors"
	"net/http"
	"net/url"
)

// Identity is who a provider says signed in.
type Identity struct {
	// Subject is stable at the provider (a SAML NameID or configured
	// attribute, a CAS user): the key of the link to a Matrix account.
	Subject string
	// Localpart is the wanted localpart before normalisation ("" falls
	// back to Subject).
	Localpart   string
	DisplayName string
	Email       string
}

// Info is how a provider is shown to clients (GET /login).
type Info struct {
	ID   string
	Name string
	Icon string // mxc:// URI or ""
}

// Provider is one configured identity provider.
type Provider interface {
	Info() Info
	// Begin returns the URL to send the browser to and a memo (a request
	// ID) that Finish gets back with the same state.
	Begin(ctx context.Context, state string) (to, memo string, err error)
	// State reads the flow's state from the provider's answer arriving at
	// the callback URL ("" when there is none).
	State(r *http.Request) string
	// Finish checks the provider's answer and says who signed in.
	Finish(ctx context.Context, r *http.Request, state, memo string) (Identity, error)
}

// MetadataPublisher is a Provider with metadata of its own to publish at
// MetadataURL (a SAML service provider's EntityDescriptor).
type MetadataPublisher interface {
	ServeMetadata(w http.ResponseWriter, r *http.Request)
}

// PathPrefix is where the providers' browser-facing endpoints live.
const PathPrefix = "/_salon/sso/"

// CallbackURL is where provider id's answers arrive (the SAML assertion
// consumer service, the CAS service URL).
func CallbackURL(baseURL, id string) string {
	return baseURL + PathPrefix + url.PathEscape(id) + "/callback"
}

// MetadataURL is where provider id's metadata is published; for SAML it is
// also the service provider's entity ID unless configured otherwise.
func MetadataURL(baseURL, id string) string {
	return baseURL + PathPrefix + url.PathEscape(id) + "/metadata"
}

// Errors a Provider's Finish wraps, so the flow can answer the browser
// with the right page.
var (
	// ErrRefused: the answer failed a check (signature, audience,
	// recipient, time window, replay, unknown ticket).
	ErrRefused = errors.New("identity: the provider's answer was refused")
	// ErrUnavailable: the provider could not be reached or has no usable
	// metadata yet.
	ErrUnavailable = errors.New("identity: the identity provider is unavailable")
	// ErrMissingAttribute: the answer lacks an attribute the mapping needs.
	ErrMissingAttribute = errors.New("identity: a required attribute is missing")
)
