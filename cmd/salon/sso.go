package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/salonhq/salon/homeserver/identity/cas"
	"github.com/salonhq/salon/homeserver/identity/saml"
)

// checkSSO reaches every configured identity provider, for `salon config
// check`: each SAML IdP's metadata is read and parsed, each CAS server
// answers its login page. It reports every problem at once.
func checkSSO(ctx context.Context, cfg Config, stdout io.Writer) error {
	var errs []error
	for i, s := range cfg.SSO.SAML {
		if err := saml.CheckMetadata(ctx, s, nil); err != nil {
			errs = append(errs, fmt.Errorf("sso.saml[%d] (%s): IdP metadata: %w", i, s.ID, err))
		} else {
			fmt.Fprintf(stdout, "SSO: SAML %s: the IdP metadata is readable\n", s.ID)
		}
	}
	for i, c := range cfg.SSO.CAS {
		if err := cas.CheckServer(ctx, c, nil); err != nil {
			errs = append(errs, fmt.Errorf("sso.cas[%d] (%s): %w", i, c.ID, err))
		} else {
			fmt.Fprintf(stdout, "SSO: CAS %s: the server answers\n", c.ID)
		}
	}
	return errors.Join(errs...)
}
