package federation

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/salonhq/salon/homeserver/events"
	"github.com/salonhq/salon/homeserver/store"
)

// Keyring finds other servers' verify keys and checks signatures with
// them. A key comes from its memory cache, else the store, else the server
// itself (/_matrix/key/v2/server), else the configured notaries
// (/_matrix/key/v2/query). Answers are checked (self-signed by every key
// they publish, a notary's answer signed by the notary too) and cached
// with their validity: a key published with valid_until_ts T verifies
// signatures made up to T (capped at 7 days after fetching, as room
// versions 5 and later require); an old key verifies what was signed
// before its expired_ts.
type Keyring struct {
	self     string
	own      *ownKeys
	store    store.Federation
	client   *Client
	notaries []string
	now      func() time.Time
	log      *slog.Logger
	metrics  *metrics

	mu     sync.Mutex
	cache  map[string]map[string]store.ServerKey // server → key ID
	raw    map[string]rawAnswer                  // server → last self-signed answer
	loaded map[string]bool                       // servers whose stored keys are in cache
	misses map[string]time.Time                  // server → no fetch before
	fetch  map[string]*fetchCall
}

type rawAnswer struct {
	body       []byte
	validUntil int64
}

type fetchCall struct {
	done chan struct{}
	err  error
}

// missTTL keeps a server whose keys could not be fetched from being asked
// again for every request that names it.
const missTTL = 10 * time.Second

// maxKeyValidity caps valid_until_ts (room versions 5+).
const maxKeyValidity = 7 * 24 * time.Hour

// VerifyKey returns server's key keyID if it may check a signature made at
// atMS.
func (k *Keyring) VerifyKey(ctx context.Context, server, keyID string, atMS int64) (ed25519.PublicKey, error) {
	return k.verifyKey(ctx, server, keyID, atMS, true)
}

// verifyKey is VerifyKey, asking notaries only if viaNotaries (a notary's
// own key is fetched from the notary alone: asking another notary about
// it could go round in circles).
func (k *Keyring) verifyKey(ctx context.Context, server, keyID string, atMS int64, viaNotaries bool) (ed25519.PublicKey, error) {
	if server == k.self {
		return k.ownKey(ctx, keyID, atMS)
	}
	if key, ok := k.cached(server, keyID, atMS); ok {
		return key, nil
	}
	if !k.isLoaded(server) {
		// The store holds what earlier runs fetched; once read, the cache
		// has all of it (what this run fetches goes to both).
		stored, err := k.store.RemoteServerKeys(ctx, server)
		if err != nil {
			return nil, err
		}
		k.remember(stored)
		k.mu.Lock()
		if k.loaded == nil {
			k.loaded = map[string]bool{}
		}
		k.loaded[server] = true
		k.mu.Unlock()
		if key, ok := k.cached(server, keyID, atMS); ok {
			return key, nil
		}
	}
	if err := k.refresh(ctx, server, viaNotaries); err != nil {
		return nil, err
	}
	if key, ok := k.cached(server, keyID, atMS); ok {
		return key, nil
	}
	return nil, fmt.Errorf("%w: %s has no key %s valid at %d", ErrUnknownKey, server, keyID, atMS)
}

func (k *Keyring) ownKey(ctx context.Context, keyID string, atMS int64) (ed25519.PublicKey, error) {
	if keyID == k.own.key.ID {
		return k.own.key.Public(), nil
	}
	keys, err := k.store.OwnServerKeys(ctx)
	if err != nil {
		return nil, err
	}
	for _, o := range keys {
		if o.KeyID == keyID && o.ExpiredTS > atMS {
			return ed25519.PublicKey(o.Public), nil
		}
	}
	return nil, fmt.Errorf("%w: own key %s", ErrUnknownKey, keyID)
}

func (k *Keyring) isLoaded(server string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.loaded[server]
}

func (k *Keyring) cached(server, keyID string, atMS int64) (ed25519.PublicKey, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	c, ok := k.cache[server][keyID]
	if !ok {
		return nil, false
	}
	if c.ExpiredTS != 0 {
		return c.Public, atMS < c.ExpiredTS
	}
	return c.Public, atMS <= c.ValidUntilTS
}

func (k *Keyring) remember(keys []store.ServerKey) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.cache == nil {
		k.cache = map[string]map[string]store.ServerKey{}
	}
	for _, key := range keys {
		m := k.cache[key.ServerName]
		if m == nil {
			m = map[string]store.ServerKey{}
			k.cache[key.ServerName] = m
		}
		if old, ok := m[key.KeyID]; ok && string(old.Public) != string(key.Public) {
			// A key ID is never reused for another key.
			continue
		}
		if old, ok := m[key.KeyID]; ok && old.ValidUntilTS > key.ValidUntilTS {
			key.ValidUntilTS = old.ValidUntilTS
		}
		m[key.KeyID] = key
	}
}

// refresh fetches server's keys (one fetch at a time per server), directly
// and then, if viaNotaries, from the notaries.
func (k *Keyring) refresh(ctx context.Context, server string, viaNotaries bool) error {
	k.mu.Lock()
	if until, ok := k.misses[server]; ok && k.now().Before(until) {
		k.mu.Unlock()
		return fmt.Errorf("%w: %s (fetch failed recently)", ErrUnknownKey, server)
	}
	if c, ok := k.fetch[server]; ok {
		k.mu.Unlock()
		select {
		case <-c.done:
			return c.err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if k.fetch == nil {
		k.fetch = map[string]*fetchCall{}
	}
	c := &fetchCall{done: make(chan struct{})}
	k.fetch[server] = c
	k.mu.Unlock()

	c.err = k.fetchKeys(ctx, server, viaNotaries)

	k.mu.Lock()
	delete(k.fetch, server)
	if c.err != nil && ctx.Err() == nil {
		if k.misses == nil {
			k.misses = map[string]time.Time{}
		}
		k.misses[server] = k.now().Add(missTTL)
	} else {
		delete(k.misses, server)
	}
	k.mu.Unlock()
	close(c.done)
	return c.err
}

func (k *Keyring) fetchKeys(ctx context.Context, server string, viaNotaries bool) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var raw json.RawMessage
	err := k.client.Do(ctx, "GET", server, "/_matrix/key/v2/server", nil, nil, &raw, false)
	if err == nil {
		if err = k.accept(ctx, server, raw, ""); err == nil {
			k.metrics.keyFetches.WithLabelValues("direct_ok").Inc()
			return nil
		}
	}
	k.metrics.keyFetches.WithLabelValues("direct_failed").Inc()
	k.log.Info("fetching server keys directly failed", "server", server, "err", err)
	if !viaNotaries {
		return fmt.Errorf("%w: %s: %v", ErrUnknownKey, server, err)
	}
	for _, notary := range k.notaries {
		if notary == server {
			continue
		}
		var resp struct {
			ServerKeys []json.RawMessage `json:"server_keys"`
		}
		body := map[string]any{"server_keys": map[string]any{server: map[string]any{}}}
		if nerr := k.client.Do(ctx, "POST", notary, "/_matrix/key/v2/query", nil, body, &resp, false); nerr != nil {
			k.log.Info("notary did not answer", "notary", notary, "server", server, "err", nerr)
			continue
		}
		got := false
		for _, a := range resp.ServerKeys {
			if aerr := k.accept(ctx, server, a, notary); aerr != nil {
				k.log.Info("notary answer refused", "notary", notary, "server", server, "err", aerr)
				continue
			}
			got = true
		}
		if got {
			k.metrics.keyFetches.WithLabelValues("notary_ok").Inc()
			return nil
		}
		k.metrics.keyFetches.WithLabelValues("notary_failed").Inc()
	}
	return fmt.Errorf("%w: %s: %v", ErrUnknownKey, server, err)
}

// keyAnswer is a /_matrix/key/v2/server body.
type keyAnswer struct {
	ServerName   string `json:"server_name"`
	ValidUntilTS int64  `json:"valid_until_ts"`
	VerifyKeys   map[string]struct {
		Key string `json:"key"`
	} `json:"verify_keys"`
	OldVerifyKeys map[string]struct {
		Key       string `json:"key"`
		ExpiredTS int64  `json:"expired_ts"`
	} `json:"old_verify_keys"`
}

// parseKeyAnswer checks a key answer of server: the name, and a valid
// signature by every key in verify_keys.
func parseKeyAnswer(raw []byte, server string, nowMS int64) ([]store.ServerKey, int64, error) {
	var a keyAnswer
	if err := json.Unmarshal(raw, &a); err != nil {
		return nil, 0, fmt.Errorf("%w: key answer: %v", ErrBadResponse, err)
	}
	if a.ServerName != server {
		return nil, 0, fmt.Errorf("%w: key answer is for %q", ErrBadResponse, a.ServerName)
	}
	if len(a.VerifyKeys) == 0 {
		return nil, 0, fmt.Errorf("%w: key answer has no verify_keys", ErrBadResponse)
	}
	validUntil := min(a.ValidUntilTS, nowMS+maxKeyValidity.Milliseconds())
	var out []store.ServerKey
	for id, v := range a.VerifyKeys {
		pub, err := events.DecodeBase64(v.Key)
		if err != nil || len(pub) != ed25519.PublicKeySize || !strings.HasPrefix(id, "ed25519:") {
			return nil, 0, fmt.Errorf("%w: verify key %s", ErrBadResponse, id)
		}
		if err := events.VerifyJSON(raw, server, id, pub); err != nil {
			return nil, 0, fmt.Errorf("%w: key answer not signed by %s: %v", ErrBadResponse, id, err)
		}
		out = append(out, store.ServerKey{ServerName: server, KeyID: id, Public: pub, ValidUntilTS: validUntil, FetchedTS: nowMS})
	}
	for id, v := range a.OldVerifyKeys {
		pub, err := events.DecodeBase64(v.Key)
		if err != nil || len(pub) != ed25519.PublicKeySize || v.ExpiredTS <= 0 {
			continue
		}
		out = append(out, store.ServerKey{ServerName: server, KeyID: id, Public: pub, ValidUntilTS: v.ExpiredTS, ExpiredTS: v.ExpiredTS, FetchedTS: nowMS})
	}
	return out, a.ValidUntilTS, nil
}

// accept checks and stores a key answer for server, relayed by notary
// ("" when the server answered itself).
func (k *Keyring) accept(ctx context.Context, server string, raw []byte, notary string) error {
	now := k.now().UnixMilli()
	keys, validUntil, err := parseKeyAnswer(raw, server, now)
	if err != nil {
		return err
	}
	if notary != "" {
		if err := k.verifyJSON(ctx, notary, raw, now, false); err != nil {
			return fmt.Errorf("not signed by notary %s: %w", notary, err)
		}
	}
	if err := k.store.PutRemoteServerKeys(ctx, keys); err != nil {
		return err
	}
	k.remember(keys)
	if notary == "" {
		k.mu.Lock()
		if k.raw == nil {
			k.raw = map[string]rawAnswer{}
		}
		k.raw[server] = rawAnswer{body: raw, validUntil: validUntil}
		k.mu.Unlock()
	}
	return nil
}

// VerifyJSON checks that obj carries at least one signature by server and
// that every signature by server with an ed25519 key verifies with a key
// valid at atMS.
func (k *Keyring) VerifyJSON(ctx context.Context, server string, obj []byte, atMS int64) error {
	return k.verifyJSON(ctx, server, obj, atMS, true)
}

func (k *Keyring) verifyJSON(ctx context.Context, server string, obj []byte, atMS int64, viaNotaries bool) error {
	var s struct {
		Signatures map[string]map[string]json.RawMessage `json:"signatures"`
	}
	if err := json.Unmarshal(obj, &s); err != nil {
		return fmt.Errorf("%w: %v", events.ErrBadSignature, err)
	}
	n := 0
	for keyID := range s.Signatures[server] {
		if !strings.HasPrefix(keyID, "ed25519:") {
			continue
		}
		pub, err := k.verifyKey(ctx, server, keyID, atMS, viaNotaries)
		if err != nil {
			return err
		}
		if err := events.VerifyJSON(obj, server, keyID, pub); err != nil {
			return err
		}
		n++
	}
	if n == 0 {
		return fmt.Errorf("%w: none by %s", events.ErrMissingSignature, server)
	}
	return nil
}

// answerFor is a server's self-signed key answer valid at least until
// minValidMS, fetched directly when the cached one is too old; for this
// server, its own answer.
func (k *Keyring) answerFor(ctx context.Context, server string, minValidMS int64) ([]byte, error) {
	if server == k.self {
		return k.own.json(ctx)
	}
	k.mu.Lock()
	a, ok := k.raw[server]
	k.mu.Unlock()
	now := k.now().UnixMilli()
	if ok && a.validUntil > now && a.validUntil >= minValidMS {
		return a.body, nil
	}
	if err := k.refresh(ctx, server, false); err != nil {
		return nil, err
	}
	k.mu.Lock()
	a, ok = k.raw[server]
	k.mu.Unlock()
	if !ok {
		return nil, errors.New("no answer")
	}
	return a.body, nil
}
