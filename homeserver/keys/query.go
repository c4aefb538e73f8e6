package keys

import (
	"context"
	"encoding/json"
	"sort"
	"strings"

	"github.com/salonhq/salon/homeserver/events"
	"github.com/salonhq/salon/homeserver/store"
	"github.com/salonhq/salon/internal/mxerr"
)

// QueryResult is the body of a /keys/query answer.
type QueryResult struct {
	DeviceKeys      map[string]map[string]json.RawMessage `json:"device_keys"`
	MasterKeys      map[string]json.RawMessage            `json:"master_keys"`
	SelfSigningKeys map[string]json.RawMessage            `json:"self_signing_keys"`
	UserSigningKeys map[string]json.RawMessage            `json:"user_signing_keys"`
	Failures        map[string]any                        `json:"failures"`
}

// Query answers /keys/query for requester ("" for another server, which
// gets no device names): the device keys of the listed
// devices (all of a user's when the list is empty), with the signatures
// their owner's self-signing key made, and the users' master and
// self-signing keys. A user-signing key is only ever shown to its owner,
// and signatures a user-signing key made only to the user who made them
// (spec: "Cross-signing").
func (s *Service) Query(ctx context.Context, requester string, want map[string][]string) (*QueryResult, error) {
	if len(want) > maxQueryUsers {
		return nil, mxerr.New(mxerr.TooLarge, "At most %d users per query", maxQueryUsers)
	}
	res := &QueryResult{
		DeviceKeys:      map[string]map[string]json.RawMessage{},
		MasterKeys:      map[string]json.RawMessage{},
		SelfSigningKeys: map[string]json.RawMessage{},
		UserSigningKeys: map[string]json.RawMessage{},
		Failures:        map[string]any{},
	}
	var users []string
	remote := map[string]map[string][]string{}
	for u := range want {
		if !s.isLocal(u) {
			if s.remote == nil {
				res.Failures[events.ServerOf(u)] = map[string]any{"status": 503, "message": "Federation is not enabled"}
				continue
			}
			srv := events.ServerOf(u)
			if remote[srv] == nil {
				remote[srv] = map[string][]string{}
			}
			remote[srv][u] = want[u]
			continue
		}
		users = append(users, u)
		res.DeviceKeys[u] = map[string]json.RawMessage{}
	}
	if len(remote) > 0 {
		s.queryRemote(ctx, remote, res)
	}
	sort.Strings(users)
	if len(users) == 0 {
		return res, nil
	}
	sigs, err := s.p.Store.KeySignatures(ctx, users)
	if err != nil {
		return nil, err
	}
	// bySigned: target user → target key → signatures visible to the
	// requester.
	bySigned := map[string]map[string][]store.KeySignature{}
	for _, g := range sigs {
		if g.SignerUser != g.TargetUser && g.SignerUser != requester {
			continue
		}
		m := bySigned[g.TargetUser]
		if m == nil {
			m = map[string][]store.KeySignature{}
			bySigned[g.TargetUser] = m
		}
		m[g.TargetKey] = append(m[g.TargetKey], g)
	}
	devs, err := s.p.Store.DeviceKeys(ctx, users)
	if err != nil {
		return nil, err
	}
	for _, k := range devs {
		if list := want[k.UserID]; len(list) > 0 && !contains(list, k.DeviceID) {
			continue
		}
		var unsigned map[string]any
		if requester != "" {
			// Device names stay on this server: another server's query
			// (requester "") gets the keys only, as Synapse's default
			// allow_device_name_lookup_over_federation: false.
			unsigned = map[string]any{"device_display_name": k.DisplayName}
		}
		obj, err := decorate(k.JSON, bySigned[k.UserID][k.DeviceID], unsigned)
		if err != nil {
			return nil, err
		}
		res.DeviceKeys[k.UserID][k.DeviceID] = obj
	}
	cross, err := s.p.Store.CrossSigningKeys(ctx, users)
	if err != nil {
		return nil, err
	}
	for _, k := range cross {
		var dst map[string]json.RawMessage
		switch k.KeyID {
		case "master":
			dst = res.MasterKeys
		case "self_signing":
			dst = res.SelfSigningKeys
		case "user_signing":
			if k.UserID != requester {
				continue
			}
			dst = res.UserSigningKeys
		default:
			continue
		}
		pub, _ := crossSigningPublic(k.JSON)
		obj, err := decorate(k.JSON, bySigned[k.UserID][pub], nil)
		if err != nil {
			return nil, err
		}
		dst[k.UserID] = obj
	}
	return res, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// decorate merges extra signatures into a stored key object and sets
// unsigned.
func decorate(stored []byte, sigs []store.KeySignature, unsigned map[string]any) (json.RawMessage, error) {
	if len(sigs) == 0 && unsigned == nil {
		return stored, nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(stored, &obj); err != nil {
		return nil, err
	}
	if len(sigs) > 0 {
		all := map[string]map[string]string{}
		if raw, ok := obj["signatures"]; ok {
			_ = json.Unmarshal(raw, &all)
		}
		for _, g := range sigs {
			if all[g.SignerUser] == nil {
				all[g.SignerUser] = map[string]string{}
			}
			all[g.SignerUser][g.SignerKeyID] = g.Signature
		}
		b, err := json.Marshal(all)
		if err != nil {
			return nil, err
		}
		obj["signatures"] = b
	}
	if unsigned != nil {
		b, err := json.Marshal(unsigned)
		if err != nil {
			return nil, err
		}
		obj["unsigned"] = b
	}
	return json.Marshal(obj)
}

// ClaimResult is the body of a /keys/claim answer.
type ClaimResult struct {
	OneTimeKeys map[string]map[string]map[string]json.RawMessage `json:"one_time_keys"`
	Failures    map[string]any                                   `json:"failures"`
}

// Claim takes one key per device asked for: a one-time key of the
// algorithm, else the device's fallback key.
func (s *Service) Claim(ctx context.Context, want map[string]map[string]string) (*ClaimResult, error) {
	res := &ClaimResult{OneTimeKeys: map[string]map[string]map[string]json.RawMessage{}, Failures: map[string]any{}}
	n := 0
	for _, devs := range want {
		n += len(devs)
	}
	if n > maxClaimDevices {
		return nil, mxerr.New(mxerr.TooLarge, "At most %d devices per claim", maxClaimDevices)
	}
	var reqs []store.ClaimRequest
	remote := map[string]map[string]map[string]string{}
	for u, devs := range want {
		if !s.isLocal(u) {
			if s.remote == nil {
				res.Failures[events.ServerOf(u)] = map[string]any{"status": 503, "message": "Federation is not enabled"}
				continue
			}
			srv := events.ServerOf(u)
			if remote[srv] == nil {
				remote[srv] = map[string]map[string]string{}
			}
			remote[srv][u] = devs
			continue
		}
		for d, alg := range devs {
			if !validAlgorithm(alg) {
				return nil, mxerr.InvalidParamf("Malformed algorithm %q", alg)
			}
			reqs = append(reqs, store.ClaimRequest{UserID: u, DeviceID: d, Algorithm: alg})
		}
	}
	sort.Slice(reqs, func(i, j int) bool {
		if reqs[i].UserID != reqs[j].UserID {
			return reqs[i].UserID < reqs[j].UserID
		}
		return reqs[i].DeviceID < reqs[j].DeviceID
	})
	if len(remote) > 0 {
		s.claimRemote(ctx, remote, res)
	}
	got, err := s.p.Store.ClaimKeys(ctx, reqs)
	if err != nil {
		return nil, err
	}
	for _, k := range got {
		if res.OneTimeKeys[k.UserID] == nil {
			res.OneTimeKeys[k.UserID] = map[string]map[string]json.RawMessage{}
		}
		res.OneTimeKeys[k.UserID][k.DeviceID] = map[string]json.RawMessage{k.KeyID: k.JSON}
	}
	return res, nil
}

// crossSigningPublic returns the public key (the part after "ed25519:")
// and key ID of a cross-signing key object with exactly one key.
func crossSigningPublic(raw []byte) (pub, keyID string) {
	var k struct {
		Keys map[string]string `json:"keys"`
	}
	if json.Unmarshal(raw, &k) != nil || len(k.Keys) != 1 {
		return "", ""
	}
	for id, v := range k.Keys {
		if strings.HasPrefix(id, "ed25519:") {
			return v, id
		}
	}
	return "", ""
}
