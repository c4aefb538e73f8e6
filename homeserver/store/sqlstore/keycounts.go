package sqlstore

import (
	"context"
	"maps"
	"slices"
	"sync"
)

// keyCounts remembers each device's one-time key counts and unused
// fallback key types, which every /sync of the device reports: in a big
// room each message wakes every member's sync, and two queries per sync
// for figures that change only when the device uploads keys or someone
// claims them were a fifth of the server's work (issue 24's profile).
//
// Every write that changes them (UploadKeys, ClaimKeys, the deletion of a
// device or an account) drops the user's entries after it commits, and a
// reader stores what it read only if no such write ended while it read
// (gen), so an answer read before a commit never lands after it.
type keyCounts struct {
	// mu is read-locked by every /sync (2,000 at once when a message
	// wakes a big room: a plain mutex was a third of the lock waiting,
	// issue 24).
	mu    sync.RWMutex
	gen   uint64
	users map[string]map[string]keyCountsEntry // user → device → counts
	n     int
}

type keyCountsEntry struct {
	otks      map[string]int // read-only once stored
	fallbacks []string       // read-only once stored
}

// keyCountsMax bounds the devices remembered.
const keyCountsMax = 100_000

func (k *keyCounts) get(userID, deviceID string) (keyCountsEntry, uint64, bool) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	e, ok := k.users[userID][deviceID]
	return e, k.gen, ok
}

func (k *keyCounts) put(userID, deviceID string, gen uint64, e keyCountsEntry) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if gen != k.gen {
		return
	}
	if k.users == nil || k.n >= keyCountsMax {
		k.users, k.n = map[string]map[string]keyCountsEntry{}, 0
	}
	devs := k.users[userID]
	if devs == nil {
		devs = map[string]keyCountsEntry{}
		k.users[userID] = devs
	}
	if _, ok := devs[deviceID]; !ok {
		k.n++
	}
	devs[deviceID] = e
}

// changed drops what is remembered of the users' devices; called after
// every write to their keys, committed or not.
func (k *keyCounts) changed(userIDs ...string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.gen++
	for _, u := range userIDs {
		k.n -= len(k.users[u])
		delete(k.users, u)
	}
}

// deviceKeyCounts returns the device's one-time key counts by algorithm
// and its unused fallback key types, from memory when it can.
func (s *Store) deviceKeyCounts(ctx context.Context, userID, deviceID string) (keyCountsEntry, error) {
	e, gen, ok := s.keyCounts.get(userID, deviceID)
	if ok {
		return e, nil
	}
	otks, err := s.oneTimeKeyCounts(ctx, userID, deviceID)
	if err != nil {
		return e, err
	}
	fb, err := s.unusedFallbackKeyTypes(ctx, userID, deviceID)
	if err != nil {
		return e, err
	}
	e = keyCountsEntry{otks: otks, fallbacks: fb}
	s.keyCounts.put(userID, deviceID, gen, e)
	return e, nil
}

// OneTimeKeyCounts returns the device's unclaimed one-time keys by
// algorithm (the caller's map to keep).
func (s *Store) OneTimeKeyCounts(ctx context.Context, userID, deviceID string) (map[string]int, error) {
	e, err := s.deviceKeyCounts(ctx, userID, deviceID)
	if err != nil {
		return nil, err
	}
	return maps.Clone(e.otks), nil
}

// UnusedFallbackKeyTypes returns the algorithms of the device's unused
// fallback keys, sorted (the caller's slice to keep).
func (s *Store) UnusedFallbackKeyTypes(ctx context.Context, userID, deviceID string) ([]string, error) {
	e, err := s.deviceKeyCounts(ctx, userID, deviceID)
	if err != nil {
		return nil, err
	}
	return slices.Clone(e.fallbacks), nil
}
