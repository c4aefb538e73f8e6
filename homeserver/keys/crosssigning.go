package keys

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/salonhq/salon/homeserver/events"
	"github.com/salonhq/salon/homeserver/store"
	"github.com/salonhq/salon/internal/mxerr"
)

// DeviceSigningRequest is the body of POST /keys/device_signing/upload.
type DeviceSigningRequest struct {
	MasterKey      json.RawMessage `json:"master_key"`
	SelfSigningKey json.RawMessage `json:"self_signing_key"`
	UserSigningKey json.RawMessage `json:"user_signing_key"`
}

type crossSigningKey struct {
	UserID string            `json:"user_id"`
	Usage  []string          `json:"usage"`
	Keys   map[string]string `json:"keys"`
}

// checked is a validated cross-signing key.
type checked struct {
	typ   string
	canon []byte
	keyID string // ed25519:PUB
	pub   string
}

func present(raw json.RawMessage) bool { return len(raw) > 0 && string(raw) != "null" }

// checkCrossSigningKey validates one cross-signing key of userID of the
// given usage.
func checkCrossSigningKey(userID, usage string, raw json.RawMessage) (checked, error) {
	var k crossSigningKey
	if err := strictObject(raw, &k); err != nil {
		return checked{}, mxerr.BadJSONf("%s_key: %v", usage, err)
	}
	if k.UserID != userID {
		return checked{}, mxerr.InvalidParamf("%s_key must be a key of %s", usage, userID)
	}
	if len(k.Usage) != 1 || k.Usage[0] != usage {
		return checked{}, mxerr.InvalidParamf("%s_key.usage must be [%q]", usage, usage)
	}
	if len(k.Keys) != 1 {
		return checked{}, mxerr.InvalidParamf("%s_key.keys must hold exactly one key", usage)
	}
	var c checked
	for id, v := range k.Keys {
		if id != "ed25519:"+v {
			return checked{}, mxerr.InvalidParamf("%s_key.keys: key ID %q must be ed25519:<the key>", usage, id)
		}
		if _, err := ed25519Key(v); err != nil {
			return checked{}, mxerr.InvalidParamf("%s_key: %v", usage, err)
		}
		c.keyID, c.pub = id, v
	}
	canon, err := events.CanonicalJSON(raw)
	if err != nil {
		return checked{}, mxerr.BadJSONf("%s_key: %v", usage, err)
	}
	if canon, err = withoutField(canon, "unsigned"); err != nil {
		return checked{}, mxerr.BadJSONf("%s_key: %v", usage, err)
	}
	c.typ, c.canon = usage, canon
	return c, nil
}

// parseDeviceSigning validates a device_signing upload against the user's
// current master key (for sub-keys uploaded without a new master).
func (s *Service) parseDeviceSigning(ctx context.Context, userID string, req DeviceSigningRequest) ([]checked, map[string][]byte, error) {
	current := map[string][]byte{}
	cur, err := s.p.Store.CrossSigningKeys(ctx, []string{userID})
	if err != nil {
		return nil, nil, err
	}
	for _, k := range cur {
		current[k.KeyID] = k.JSON
	}
	var out []checked
	var master *checked
	if present(req.MasterKey) {
		c, err := checkCrossSigningKey(userID, "master", req.MasterKey)
		if err != nil {
			return nil, nil, err
		}
		out = append(out, c)
		master = &out[0]
	}
	var masterPub ed25519Pub
	var masterID string
	switch {
	case master != nil:
		masterID = master.keyID
		masterPub, _ = ed25519Key(master.pub)
	case current["master"] != nil:
		pub, id := crossSigningPublic(current["master"])
		masterID = id
		masterPub, _ = ed25519Key(pub)
	}
	for _, sub := range []struct {
		usage string
		raw   json.RawMessage
	}{{"self_signing", req.SelfSigningKey}, {"user_signing", req.UserSigningKey}} {
		if !present(sub.raw) {
			continue
		}
		c, err := checkCrossSigningKey(userID, sub.usage, sub.raw)
		if err != nil {
			return nil, nil, err
		}
		if masterPub == nil {
			return nil, nil, mxerr.InvalidParamf("Upload a master key before the %s key", sub.usage)
		}
		if err := events.VerifyJSON(c.canon, userID, masterID, masterPub); err != nil {
			return nil, nil, mxerr.New(mxerr.InvalidSignature, "%s_key is not signed by the master key: %v", sub.usage, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, nil, mxerr.New(mxerr.MissingParam, "No keys to upload")
	}
	return out, current, nil
}

type ed25519Pub = []byte

// DeviceSigningNeedsAuth reports whether an upload must pass
// user-interactive auth: it replaces a key the user already has with
// another (MSC3967: the first upload, or the same keys again, need none).
func (s *Service) DeviceSigningNeedsAuth(ctx context.Context, userID string, req DeviceSigningRequest) (bool, error) {
	keys, current, err := s.parseDeviceSigning(ctx, userID, req)
	if err != nil {
		return false, err
	}
	if current["master"] == nil {
		return false, nil
	}
	for _, k := range keys {
		old := current[k.typ]
		if old == nil {
			// A new sub-key signed by the existing master: no key is
			// replaced. A new master is checked below.
			continue
		}
		if !sameSigned(old, k.canon) {
			return true, nil
		}
	}
	return false, nil
}

// sameSigned compares two key objects without their signatures.
func sameSigned(a, b []byte) bool {
	x, err1 := withoutField(a, "signatures")
	y, err2 := withoutField(b, "signatures")
	return err1 == nil && err2 == nil && bytes.Equal(x, y)
}

// UploadDeviceSigning stores the user's cross-signing keys (the caller
// has done any user-interactive auth DeviceSigningNeedsAuth asked for).
func (s *Service) UploadDeviceSigning(ctx context.Context, userID string, req DeviceSigningRequest) error {
	keys, _, err := s.parseDeviceSigning(ctx, userID, req)
	if err != nil {
		return err
	}
	rows := make([]store.KeyJSON, len(keys))
	for i, k := range keys {
		rows[i] = store.KeyJSON{UserID: userID, KeyID: k.typ, JSON: k.canon}
	}
	pos, err := s.p.Store.PutCrossSigningKeys(ctx, userID, rows)
	if err != nil {
		return err
	}
	s.notifyDeviceChange(ctx, userID, pos)
	return nil
}

// SignaturesResult is the body of a /keys/signatures/upload answer.
type SignaturesResult struct {
	Failures map[string]map[string]any `json:"failures"`
}

// UploadSignatures stores the signatures signer's keys made over keys:
// signer's own devices (by its self-signing key), signer's master key (by
// one of its devices), another user's master key (by signer's user-signing
// key). Each key that fails is reported in failures; the others are
// stored.
func (s *Service) UploadSignatures(ctx context.Context, signer string, body map[string]map[string]json.RawMessage) (*SignaturesResult, error) {
	res := &SignaturesResult{Failures: map[string]map[string]any{}}
	n := 0
	for _, ks := range body {
		n += len(ks)
	}
	if n > maxClaimDevices {
		return nil, mxerr.New(mxerr.TooLarge, "At most %d keys per request", maxClaimDevices)
	}
	fail := func(user, key string, code mxerr.Code, format string, args ...any) {
		if res.Failures[user] == nil {
			res.Failures[user] = map[string]any{}
		}
		res.Failures[user][key] = map[string]any{"errcode": code, "error": fmt.Sprintf(format, args...)}
	}
	users := make([]string, 0, len(body)+1)
	users = append(users, signer)
	for u := range body {
		if u != signer && s.isLocal(u) {
			users = append(users, u)
		}
	}
	cross, err := s.p.Store.CrossSigningKeys(ctx, users)
	if err != nil {
		return nil, err
	}
	crossOf := map[string]map[string][]byte{}
	for _, k := range cross {
		if crossOf[k.UserID] == nil {
			crossOf[k.UserID] = map[string][]byte{}
		}
		crossOf[k.UserID][k.KeyID] = k.JSON
	}
	devKeys, err := s.p.Store.DeviceKeys(ctx, []string{signer})
	if err != nil {
		return nil, err
	}
	ownDevices := map[string][]byte{}
	for _, k := range devKeys {
		ownDevices[k.DeviceID] = k.JSON
	}
	var sigs []store.KeySignature
	targets := make([]string, 0, len(body))
	for u := range body {
		targets = append(targets, u)
	}
	sort.Strings(targets)
	for _, user := range targets {
		for keyID, raw := range body[user] {
			g, err := s.checkSignature(signer, user, keyID, raw, crossOf, ownDevices)
			if err != nil {
				var me *mxerr.Error
				if errors.As(err, &me) {
					fail(user, keyID, me.Code, "%s", me.Message)
					continue
				}
				return nil, err
			}
			sigs = append(sigs, g)
		}
	}
	if len(sigs) > 0 {
		pos, err := s.p.Store.PutKeySignatures(ctx, sigs)
		if err != nil {
			return nil, err
		}
		done := map[string]bool{}
		for _, g := range sigs {
			if !done[g.TargetUser] {
				done[g.TargetUser] = true
				s.notifyDeviceChange(ctx, g.TargetUser, pos)
			}
		}
	}
	return res, nil
}

// checkSignature finds and verifies the one signature signer's key made
// over one uploaded key object.
func (s *Service) checkSignature(signer, user, keyID string, raw json.RawMessage, crossOf map[string]map[string][]byte, ownDevices map[string][]byte) (store.KeySignature, error) {
	canon, err := events.CanonicalJSON(raw)
	if err != nil || len(canon) == 0 || canon[0] != '{' {
		return store.KeySignature{}, mxerr.BadJSONf("The signed key must be a JSON object")
	}
	var stored []byte
	var signerKey string // the key ID (ed25519:X) that must have signed
	var signerPub []byte
	masterPub, _ := crossSigningPublic(crossOf[user]["master"])
	switch {
	case user == signer && ownDevices[keyID] != nil:
		stored = ownDevices[keyID]
		pub, id := crossSigningPublic(crossOf[signer]["self_signing"])
		if pub == "" {
			return store.KeySignature{}, mxerr.New(mxerr.InvalidSignature, "Upload a self-signing key first")
		}
		signerKey = id
		signerPub, _ = ed25519Key(pub)
	case masterPub != "" && keyID == masterPub && user == signer:
		stored = crossOf[user]["master"]
		// Signed by one of the user's devices: find which.
		var sigs struct {
			Signatures map[string]map[string]string `json:"signatures"`
		}
		_ = json.Unmarshal(canon, &sigs)
		for id := range sigs.Signatures[signer] {
			dev, ok := strings.CutPrefix(id, "ed25519:")
			if !ok || ownDevices[dev] == nil {
				continue
			}
			var dk deviceKeysJSON
			if json.Unmarshal(ownDevices[dev], &dk) != nil {
				continue
			}
			if p, err := ed25519Key(dk.Keys[id]); err == nil {
				signerKey, signerPub = id, p
				break
			}
		}
		if signerPub == nil {
			return store.KeySignature{}, mxerr.New(mxerr.InvalidSignature, "No signature by one of your devices")
		}
	case masterPub != "" && keyID == masterPub:
		stored = crossOf[user]["master"]
		pub, id := crossSigningPublic(crossOf[signer]["user_signing"])
		if pub == "" {
			return store.KeySignature{}, mxerr.New(mxerr.InvalidSignature, "Upload a user-signing key first")
		}
		signerKey = id
		signerPub, _ = ed25519Key(pub)
	default:
		return store.KeySignature{}, mxerr.NotFoundf("Unknown key %s of %s", keyID, user)
	}
	if !sameSigned(mustWithout(stored, "unsigned"), mustWithout(canon, "unsigned")) {
		return store.KeySignature{}, mxerr.InvalidParamf("The signed object is not the stored key")
	}
	if err := events.VerifyJSON(canon, signer, signerKey, signerPub); err != nil {
		return store.KeySignature{}, mxerr.New(mxerr.InvalidSignature, "Signature by %s does not verify: %v", signerKey, err)
	}
	var sigs struct {
		Signatures map[string]map[string]string `json:"signatures"`
	}
	_ = json.Unmarshal(canon, &sigs)
	return store.KeySignature{TargetUser: user, TargetKey: keyID, SignerUser: signer, SignerKeyID: signerKey, Signature: sigs.Signatures[signer][signerKey]}, nil
}

func mustWithout(b []byte, field string) []byte {
	out, err := withoutField(b, field)
	if err != nil {
		return b
	}
	return out
}
