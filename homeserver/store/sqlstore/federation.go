package sqlstore

import (
	"context"

	"github.com/salonhq/salon/homeserver/store"
)

var _ store.Federation = (*Store)(nil)

func (s *Store) OwnServerKeys(ctx context.Context) ([]store.ServerKey, error) {
	rows, err := s.db.Query(ctx, `SELECT key_id, public_key, created_ts, expired_ts FROM federation_own_keys
		ORDER BY CASE WHEN expired_ts = 0 THEN 0 ELSE 1 END, key_id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.ServerKey
	for rows.Next() {
		var k store.ServerKey
		if err := rows.Scan(&k.KeyID, &k.Public, &k.FetchedTS, &k.ExpiredTS); err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

func (s *Store) UseOwnServerKey(ctx context.Context, keyID string, public []byte, nowTS int64) error {
	return s.mapErr(s.db.Tx(ctx, func(q Querier) error {
		if _, err := q.Exec(ctx, `UPDATE federation_own_keys SET expired_ts = $2 WHERE key_id <> $1 AND expired_ts = 0`, keyID, nowTS); err != nil {
			return err
		}
		// A key that was retired and comes back is current again.
		_, err := q.Exec(ctx, `INSERT INTO federation_own_keys (key_id, public_key, created_ts, expired_ts) VALUES ($1, $2, $3, 0)
			ON CONFLICT (key_id) DO UPDATE SET expired_ts = 0`, keyID, public, nowTS)
		return err
	}))
}

func (s *Store) PutRemoteServerKeys(ctx context.Context, keys []store.ServerKey) error {
	if len(keys) == 0 {
		return nil
	}
	return s.mapErr(s.db.Tx(ctx, func(q Querier) error {
		for _, k := range keys {
			if _, err := q.Exec(ctx, `INSERT INTO federation_server_keys (server_name, key_id, public_key, valid_until_ts, expired_ts, fetched_ts)
				VALUES ($1, $2, $3, $4, $5, $6)
				ON CONFLICT (server_name, key_id) DO UPDATE SET
					valid_until_ts = CASE WHEN excluded.valid_until_ts > federation_server_keys.valid_until_ts
						THEN excluded.valid_until_ts ELSE federation_server_keys.valid_until_ts END,
					expired_ts = excluded.expired_ts, fetched_ts = excluded.fetched_ts
				WHERE federation_server_keys.public_key = excluded.public_key`,
				k.ServerName, k.KeyID, k.Public, k.ValidUntilTS, k.ExpiredTS, k.FetchedTS); err != nil {
				return err
			}
		}
		return nil
	}))
}

func (s *Store) RemoteServerKeys(ctx context.Context, serverName string) ([]store.ServerKey, error) {
	rows, err := s.db.Query(ctx, `SELECT server_name, key_id, public_key, valid_until_ts, expired_ts, fetched_ts
		FROM federation_server_keys WHERE server_name = $1 ORDER BY key_id`, serverName)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.ServerKey
	for rows.Next() {
		var k store.ServerKey
		if err := rows.Scan(&k.ServerName, &k.KeyID, &k.Public, &k.ValidUntilTS, &k.ExpiredTS, &k.FetchedTS); err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

func (s *Store) EnqueueFederation(ctx context.Context, items []store.OutboxItem) error {
	if len(items) == 0 {
		return nil
	}
	return s.mapErr(s.db.Tx(ctx, func(q Querier) error {
		for _, it := range items {
			if _, err := q.Exec(ctx, `INSERT INTO federation_outbox (destination, kind, body, created_ts) VALUES ($1, $2, $3, $4)`,
				it.Destination, it.Kind, string(it.Body), it.CreatedTS); err != nil {
				return err
			}
		}
		return nil
	}))
}

func scanOutbox(rows Rows) ([]store.OutboxItem, []string, error) {
	defer rows.Close()
	var out []store.OutboxItem
	var txns []string
	for rows.Next() {
		var it store.OutboxItem
		var body, txn string
		if err := rows.Scan(&it.ID, &it.Destination, &it.Kind, &body, &it.CreatedTS, &txn); err != nil {
			return nil, nil, err
		}
		it.Body = []byte(body)
		out = append(out, it)
		txns = append(txns, txn)
	}
	return out, txns, rows.Err()
}

func (s *Store) NextFederationTxn(ctx context.Context, destination, newTxnID string, maxPDUs, maxEDUs int) (string, []store.OutboxItem, error) {
	var txnID string
	var items []store.OutboxItem
	err := s.db.Tx(ctx, func(q Querier) error {
		txnID, items = "", nil
		rows, err := q.Query(ctx, `SELECT id, destination, kind, body, created_ts, txn_id FROM federation_outbox
			WHERE destination = $1 ORDER BY id LIMIT $2`, destination, maxPDUs+maxEDUs)
		if err != nil {
			return err
		}
		all, txns, err := scanOutbox(rows)
		if err != nil || len(all) == 0 {
			return err
		}
		if txns[0] != "" {
			// A transaction sent before and not acknowledged: the same
			// again.
			txnID = txns[0]
			for i, it := range all {
				if txns[i] == txnID {
					items = append(items, it)
				}
			}
			return nil
		}
		pdus, edus := 0, 0
		for i, it := range all {
			if txns[i] != "" {
				break
			}
			if it.Kind == "pdu" {
				if pdus == maxPDUs {
					break
				}
				pdus++
			} else {
				if edus == maxEDUs {
					break
				}
				edus++
			}
			items = append(items, it)
		}
		last := items[len(items)-1].ID
		txnID = newTxnID
		_, err = q.Exec(ctx, `UPDATE federation_outbox SET txn_id = $3 WHERE destination = $1 AND id <= $2 AND txn_id = ''`,
			destination, last, txnID)
		return err
	})
	if err != nil {
		return "", nil, s.mapErr(err)
	}
	return txnID, items, nil
}

func (s *Store) DeleteFederationTxn(ctx context.Context, destination, txnID string) error {
	return s.mapErr(s.db.Tx(ctx, func(q Querier) error {
		_, err := q.Exec(ctx, `DELETE FROM federation_outbox WHERE destination = $1 AND txn_id = $2`, destination, txnID)
		return err
	}))
}

func (s *Store) FederationQueueDepths(ctx context.Context) (map[string]int, error) {
	rows, err := s.db.Query(ctx, `SELECT destination, COUNT(*) FROM federation_outbox GROUP BY destination`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var d string
		var n int
		if err := rows.Scan(&d, &n); err != nil {
			return nil, err
		}
		out[d] = n
	}
	return out, rows.Err()
}

func (s *Store) FederationRetry(ctx context.Context, destination string) (store.DestinationRetry, error) {
	r := store.DestinationRetry{Destination: destination}
	err := s.db.QueryRow(ctx, `SELECT failures, retry_ts FROM federation_destinations WHERE destination = $1`, destination).Scan(&r.Failures, &r.RetryTS)
	if err != nil && s.db.IsNoRows(err) {
		return r, nil
	}
	return r, s.mapErr(err)
}

func (s *Store) SetFederationRetry(ctx context.Context, r store.DestinationRetry) error {
	return s.mapErr(s.db.Tx(ctx, func(q Querier) error {
		if r.Failures == 0 {
			_, err := q.Exec(ctx, `DELETE FROM federation_destinations WHERE destination = $1`, r.Destination)
			return err
		}
		_, err := q.Exec(ctx, `INSERT INTO federation_destinations (destination, failures, retry_ts) VALUES ($1, $2, $3)
			ON CONFLICT (destination) DO UPDATE SET failures = excluded.failures, retry_ts = excluded.retry_ts`,
			r.Destination, r.Failures, r.RetryTS)
		return err
	}))
}

func (s *Store) InboundTxn(ctx context.Context, origin, txnID string) ([]byte, error) {
	var a string
	err := s.db.QueryRow(ctx, `SELECT answer FROM federation_inbound_txns WHERE origin = $1 AND txn_id = $2`, origin, txnID).Scan(&a)
	if err != nil {
		return nil, s.mapErr(err)
	}
	return []byte(a), nil
}

func (s *Store) PutInboundTxn(ctx context.Context, origin, txnID string, answer []byte, nowTS, expireBeforeTS int64) error {
	return s.mapErr(s.db.Tx(ctx, func(q Querier) error {
		if _, err := q.Exec(ctx, `DELETE FROM federation_inbound_txns WHERE ts < $1`, expireBeforeTS); err != nil {
			return err
		}
		_, err := q.Exec(ctx, `INSERT INTO federation_inbound_txns (origin, txn_id, answer, ts) VALUES ($1, $2, $3, $4)
			ON CONFLICT (origin, txn_id) DO NOTHING`, origin, txnID, string(answer), nowTS)
		return err
	}))
}
