package sync

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
)

// The to_device and e2ee extensions: the device's to-device queue and
// its key counts, and device-list changes, read from the stores /sync's
// providers read (keysstream.go), with the same at-least-once rule: a
// to-device message leaves the queue only when the client comes back with
// a since past it.

// maxToDeviceLimit caps the to_device extension's limit.
const maxToDeviceLimit = 1000

// extToDevice answers the to_device extension. since is the next_batch
// the client last processed ("" at first): everything up to it is
// deleted, and the messages after it, up to limit, are sent. Nothing is
// added to the response when no message is queued, so a long-poll keeps
// waiting.
func (e *Engine) extToDevice(ctx context.Context, s *syncer, x *ToDeviceExtension, resp *SlidingResponse) error {
	if s.req.DeviceID == "" {
		return nil
	}
	st := e.p.Store
	user, dev := s.req.UserID, s.req.DeviceID
	since := int64(0)
	if x != nil && x.Since != "" {
		p, ok := parseUint(x.Since)
		if !ok {
			return badToken(x.Since)
		}
		since = min(p, s.to.Pos)
	}
	if since > 0 {
		has, err := st.HasToDeviceUpTo(ctx, user, dev, since)
		if err != nil {
			return err
		}
		if has {
			if _, err := st.AckToDevice(ctx, user, dev, since); err != nil {
				return err
			}
		}
	}
	limit := maxToDevice
	if x != nil && x.Limit > 0 {
		limit = min(x.Limit, maxToDeviceLimit)
	}
	msgs, err := st.ToDevice(ctx, user, dev, since, s.to.Pos, limit+1)
	if err != nil {
		return err
	}
	if len(msgs) == 0 {
		return nil
	}
	next := s.to.Pos
	if len(msgs) > limit {
		msgs = msgs[:limit]
		next = msgs[len(msgs)-1].Pos
	}
	evs := make([]json.RawMessage, 0, len(msgs))
	for _, m := range msgs {
		ev, err := json.Marshal(struct {
			Content json.RawMessage `json:"content"`
			Sender  string          `json:"sender"`
			Type    string          `json:"type"`
		}{m.Content, m.Sender, m.Type})
		if err != nil {
			return err
		}
		evs = append(evs, ev)
	}
	resp.Extensions["to_device"] = map[string]any{"next_batch": strconv.FormatInt(next, 10), "events": evs}
	return nil
}

// extE2EE answers the e2ee extension: device-list changes since the
// connection's position (the rules of /sync's device_lists), and the
// device's one-time key counts and unused fallback key types when they
// changed since the connection last sent them (always on a new
// connection).
func (e *Engine) extE2EE(ctx context.Context, s *syncer, full bool, base, next *connState, resp *SlidingResponse) error {
	out := map[string]any{}
	if !full && s.since.Pos < s.to.Pos {
		changed, left, err := e.KeyChanges(ctx, s.req.UserID, StreamToken{Pos: s.since.Pos}.String(), StreamToken{Pos: s.to.Pos}.String())
		if err != nil {
			return err
		}
		if len(changed) > 0 || len(left) > 0 {
			out["device_lists"] = DeviceLists{Changed: changed, Left: left}
		}
	}
	if s.req.DeviceID != "" {
		counts, err := e.p.Store.OneTimeKeyCounts(ctx, s.req.UserID, s.req.DeviceID)
		if err != nil {
			return err
		}
		if counts == nil {
			counts = map[string]int{}
		}
		if _, ok := counts["signed_curve25519"]; !ok {
			counts["signed_curve25519"] = 0
		}
		fb, err := e.p.Store.UnusedFallbackKeyTypes(ctx, s.req.UserID, s.req.DeviceID)
		if err != nil {
			return err
		}
		if fb == nil {
			fb = []string{}
		}
		slices.Sort(fb)
		key := fmt.Sprint(slices.Sorted(maps.Keys(counts)), counts, fb)
		if full || key != base.keys {
			out["device_one_time_keys_count"] = counts
			out["device_unused_fallback_key_types"] = fb
		}
		next.keys = key
	}
	if len(out) > 0 {
		resp.Extensions["e2ee"] = out
	}
	return nil
}
