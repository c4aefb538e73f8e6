package store

import "context"

// SSOIdentity links an identity at an outside identity provider (a SAML
// NameID or attribute, a CAS user) to a local Matrix account, so the same
// person always reaches the same account whatever else changes at the
// provider (display name, e-mail).
type SSOIdentity struct {
	IdPID     string // the provider's id in salon.yaml
	Subject   string // stable at that provider
	UserID    string
	Email     string // as last seen, for the operator; "" when none
	CreatedTS int64
}

// SSOIdentities stores the links and the one-time-use record of assertion
// and ticket IDs.
type SSOIdentities interface {
	// CreateSSOIdentity stores a link; ErrExists when the provider's
	// subject is linked already.
	CreateSSOIdentity(ctx context.Context, id SSOIdentity) error
	// SSOIdentity returns the link of a provider's subject, or ErrNotFound.
	SSOIdentity(ctx context.Context, idpID, subject string) (SSOIdentity, error)
	// SSOIdentitiesOf lists the links of a user (oldest first).
	SSOIdentitiesOf(ctx context.Context, userID string) ([]SSOIdentity, error)
	// UseOnce records that id has been used in scope until expiresTS and
	// forgets entries expired before nowTS; ErrExists when id was used
	// already (a replayed SAML assertion).
	UseOnce(ctx context.Context, scope, id string, expiresTS, nowTS int64) error
}
