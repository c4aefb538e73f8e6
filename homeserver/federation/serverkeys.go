package federation

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/salonhq/salon/homeserver/events"
	"github.com/salonhq/salon/homeserver/store"
)

// ownKeys publishes this server's verify keys at /_matrix/key/v2/server:
// the current key and, after a rotation, the old ones with the time they
// stopped being used, so other servers can still check what they signed.
// The list is kept in the store; the signing key itself stays in
// data_dir/signing.key.
type ownKeys struct {
	name     string
	key      events.SigningKey
	store    store.Federation
	validity time.Duration
	now      func() time.Time

	mu      sync.Mutex
	body    []byte
	refresh time.Time
}

// record makes the signing key the current one in the store; a key seen
// before it becomes an old key.
func (o *ownKeys) record(ctx context.Context) error {
	return o.store.UseOwnServerKey(ctx, o.key.ID, o.key.Public(), o.now().UnixMilli())
}

// json is the signed answer of /_matrix/key/v2/server. It is rebuilt when
// half its validity has passed.
func (o *ownKeys) json(ctx context.Context) ([]byte, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	now := o.now()
	if o.body != nil && now.Before(o.refresh) {
		return o.body, nil
	}
	keys, err := o.store.OwnServerKeys(ctx)
	if err != nil {
		return nil, err
	}
	old := map[string]any{}
	for _, k := range keys {
		if k.KeyID == o.key.ID || k.ExpiredTS == 0 {
			continue
		}
		old[k.KeyID] = map[string]any{"key": events.EncodeBase64(k.Public), "expired_ts": k.ExpiredTS}
	}
	obj, err := json.Marshal(map[string]any{
		"server_name":     o.name,
		"valid_until_ts":  now.Add(o.validity).UnixMilli(),
		"verify_keys":     map[string]any{o.key.ID: map[string]string{"key": o.key.PublicBase64()}},
		"old_verify_keys": old,
	})
	if err != nil {
		return nil, err
	}
	signed, err := events.SignJSON(obj, o.name, o.key)
	if err != nil {
		return nil, err
	}
	o.body, o.refresh = signed, now.Add(o.validity/2)
	return signed, nil
}
