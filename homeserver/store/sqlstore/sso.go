package sqlstore

import (
	"context"

	"github.com/salonhq/salon/homeserver/store"
)

const ssoCols = `idp_id, subject, user_id, email, created_ts`

func scanSSO(r Row) (store.SSOIdentity, error) {
	var i store.SSOIdentity
	err := r.Scan(&i.IdPID, &i.Subject, &i.UserID, &i.Email, &i.CreatedTS)
	return i, err
}

func (s *Store) CreateSSOIdentity(ctx context.Context, id store.SSOIdentity) error {
	return s.mapErr(s.db.Tx(ctx, func(q Querier) error {
		_, err := q.Exec(ctx, `INSERT INTO sso_identities (`+ssoCols+`) VALUES ($1, $2, $3, $4, $5)`,
			id.IdPID, id.Subject, id.UserID, id.Email, id.CreatedTS)
		return err
	}))
}

func (s *Store) SSOIdentity(ctx context.Context, idpID, subject string) (store.SSOIdentity, error) {
	i, err := scanSSO(s.db.QueryRow(ctx, `SELECT `+ssoCols+` FROM sso_identities WHERE idp_id = $1 AND subject = $2`, idpID, subject))
	return i, s.mapErr(err)
}

func (s *Store) SSOIdentitiesOf(ctx context.Context, userID string) ([]store.SSOIdentity, error) {
	rows, err := s.db.Query(ctx, `SELECT `+ssoCols+` FROM sso_identities WHERE user_id = $1 ORDER BY created_ts, idp_id, subject`, userID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.SSOIdentity
	for rows.Next() {
		i, err := scanSSO(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, i)
	}
	return out, rows.Err()
}

func (s *Store) UseOnce(ctx context.Context, scope, id string, expiresTS, nowTS int64) error {
	return s.mapErr(s.db.Tx(ctx, func(q Querier) error {
		if _, err := q.Exec(ctx, `DELETE FROM sso_used_ids WHERE expires_ts < $1`, nowTS); err != nil {
			return err
		}
		_, err := q.Exec(ctx, `INSERT INTO sso_used_ids (scope, id, expires_ts) VALUES ($1, $2, $3)`, scope, id, expiresTS)
		return err
	}))
}
