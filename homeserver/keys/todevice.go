package keys

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"sort"
	"time"

	"github.com/salonhq/salon/homeserver/store"
	"github.com/salonhq/salon/internal/mxerr"
)

// txnTTL is how long a send-to-device transaction ID is remembered.
const txnTTL = 24 * time.Hour

// SendToDevice queues one message per target device, all at one stream
// position, and wakes the recipients. messages maps user IDs to device IDs
// ("*": every device of the user) to contents. Devices that do not exist
// (deleted ones included) get nothing; messages to users of other servers
// go to the Remote's queue once the local ones are stored.
//
// A transaction ID is idempotent per sending device: the same request
// again is answered without queuing twice; the same ID with another body
// is M_INVALID_PARAM, as for room events. A device whose queue is full
// makes the whole request M_LIMIT_EXCEEDED (nothing queued) when it was
// named; through "*" it is skipped.
func (s *Service) SendToDevice(ctx context.Context, sender, senderDevice, evType, txnID string, messages map[string]map[string]json.RawMessage) error {
	if err := s.deliver(ctx, sender, senderDevice, evType, txnID, messages); err != nil {
		return err
	}
	s.forwardRemote(ctx, sender, senderDevice, evType, txnID, messages)
	return nil
}

// deliver queues the messages to local devices (users of other servers
// are skipped) and wakes their /sync; see SendToDevice.
func (s *Service) deliver(ctx context.Context, sender, senderDevice, evType, txnID string, messages map[string]map[string]json.RawMessage) error {
	if evType == "" || len(evType) > maxIDLength {
		return mxerr.InvalidParamf("Malformed event type")
	}
	hash := txnHash(evType, messages)
	if txnID != "" {
		if err := s.checkReplay(ctx, sender, senderDevice, txnID, hash); err != nil {
			return err
		}
	}
	users := make([]string, 0, len(messages))
	entries := 0
	for u, byDev := range messages {
		users = append(users, u)
		entries += len(byDev)
	}
	if entries > maxToDeviceTarget {
		return mxerr.New(mxerr.TooLarge, "A to-device request may name at most %d devices", maxToDeviceTarget)
	}
	sort.Strings(users)
	var local []string
	for _, u := range users {
		if s.isLocal(u) {
			local = append(local, u)
		}
	}
	devices, err := s.p.Store.DeviceIDs(ctx, local)
	if err != nil {
		return err
	}
	var msgs []store.ToDeviceMessage
	var wake []string
	named := map[[2]string]bool{}
	for _, u := range users {
		byDev := messages[u]
		for d, c := range byDev {
			if len(c) > maxToDeviceBytes {
				return mxerr.New(mxerr.TooLarge, "A to-device message is larger than %d bytes", maxToDeviceBytes)
			}
			if t := bytes.TrimSpace(c); len(t) == 0 || t[0] != '{' {
				return mxerr.BadJSONf("messages[%s][%s] must be an object", u, d)
			}
		}
		if !s.isLocal(u) {
			continue
		}
		devs := devices[u]
		exists := make(map[string]bool, len(devs))
		for _, d := range devs {
			exists[d] = true
		}
		ids := make([]string, 0, len(byDev))
		for d := range byDev {
			ids = append(ids, d)
		}
		sort.Strings(ids)
		queued := map[string]bool{}
		for _, d := range ids {
			content := byDev[d]
			targets := []string{d}
			if d == "*" {
				targets = targets[:0]
				targets = append(targets, devs...)
			} else {
				named[[2]string{u, d}] = true
			}
			for _, t := range targets {
				if !exists[t] || queued[t] {
					continue
				}
				queued[t] = true
				msgs = append(msgs, store.ToDeviceMessage{UserID: u, DeviceID: t, Sender: sender, Type: evType, Content: compact(content)})
				if len(msgs) > maxToDeviceTarget {
					return mxerr.New(mxerr.TooLarge, "A to-device request may reach at most %d devices", maxToDeviceTarget)
				}
			}
		}
		if len(queued) > 0 {
			wake = append(wake, u)
		}
	}
	txn := store.ToDeviceTxn{UserID: sender, DeviceID: senderDevice, TxnID: txnID, BodyHash: hash[:], TS: s.p.Now().UnixMilli()}
	for try := 0; ; try++ {
		maxQueue := s.p.MaxQueue
		if try == 3 {
			// The full devices keep changing under us: queue anyway
			// rather than loop.
			maxQueue = 0
		}
		pos, err := s.p.Store.AddToDevice(ctx, msgs, txn, maxQueue)
		switch {
		case err == nil:
			if len(msgs) > 0 {
				s.p.Notifier.Notify(pos, "", wake)
			} else {
				s.p.Notifier.Notify(pos, "", nil)
			}
			return nil
		case errors.Is(err, store.ErrExists):
			// A concurrent request with the same transaction ID won.
			return s.checkReplay(ctx, sender, senderDevice, txnID, hash)
		case errors.Is(err, store.ErrQueueFull):
			full, ferr := s.fullDevices(ctx, msgs)
			if ferr != nil {
				return ferr
			}
			kept := msgs[:0]
			for _, m := range msgs {
				k := [2]string{m.UserID, m.DeviceID}
				if full[k] {
					if named[k] {
						return mxerr.New(mxerr.LimitExceeded, "The to-device queue of %s %s is full until it syncs", m.UserID, m.DeviceID).
							With("retry_after_ms", 60_000)
					}
					continue
				}
				kept = append(kept, m)
			}
			msgs = kept
		default:
			return err
		}
	}
}

// fullDevices lists the target devices whose queue is at the bound.
func (s *Service) fullDevices(ctx context.Context, msgs []store.ToDeviceMessage) (map[[2]string]bool, error) {
	full := map[[2]string]bool{}
	for _, m := range msgs {
		q, err := s.p.Store.ToDevice(ctx, m.UserID, m.DeviceID, 0, s.p.Store.CurrentPos(), s.p.MaxQueue)
		if err != nil {
			return nil, err
		}
		if len(q) >= s.p.MaxQueue {
			full[[2]string{m.UserID, m.DeviceID}] = true
		}
	}
	return full, nil
}

func (s *Service) checkReplay(ctx context.Context, sender, device, txnID string, hash [32]byte) error {
	prev, err := s.p.Store.ToDeviceTxnHash(ctx, sender, device, txnID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil
	case err != nil:
		return err
	case bytes.Equal(prev, hash[:]):
		return errReplayed
	}
	return mxerr.InvalidParamf("Transaction ID %q was already used for another request", txnID)
}

// errReplayed marks a retransmission: the caller answers it as a success.
var errReplayed = errors.New("keys: transaction already done")

// IsReplay reports whether SendToDevice's error means the request was a
// retransmission already done (answer 200 {}).
func IsReplay(err error) bool { return errors.Is(err, errReplayed) }

// txnHash is the hash of a request's event type and messages, in a form
// independent of key order and spacing.
func txnHash(evType string, messages map[string]map[string]json.RawMessage) [32]byte {
	h := sha256.New()
	h.Write([]byte(evType))
	users := make([]string, 0, len(messages))
	for u := range messages {
		users = append(users, u)
	}
	sort.Strings(users)
	for _, u := range users {
		devs := make([]string, 0, len(messages[u]))
		for d := range messages[u] {
			devs = append(devs, d)
		}
		sort.Strings(devs)
		for _, d := range devs {
			h.Write([]byte{0})
			h.Write([]byte(u))
			h.Write([]byte{0})
			h.Write([]byte(d))
			h.Write([]byte{0})
			h.Write(compact(messages[u][d]))
		}
	}
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out
}

func compact(raw json.RawMessage) []byte {
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return raw
	}
	return b.Bytes()
}

// ExpireTxns forgets send-to-device transaction IDs older than a day.
func (s *Service) ExpireTxns(ctx context.Context) error {
	return s.p.Store.ExpireToDeviceTxns(ctx, s.p.Now().Add(-txnTTL).UnixMilli())
}

// DevicesDeleted forgets nothing the store has not already deleted with
// the devices (keys, one-time keys, queued messages), and tells the
// user's room-mates that the user's device list changed.
func (s *Service) DevicesDeleted(ctx context.Context, userID string, deviceIDs []string) {
	if len(deviceIDs) == 0 {
		return
	}
	pos, err := s.p.Store.MarkDeviceListChanged(ctx, userID)
	if err != nil {
		s.p.Logger.Warn("recording a device-list change", "user", userID, "err", err)
		return
	}
	s.notifyDeviceChange(ctx, userID, pos)
	if s.p.DeviceChanged != nil {
		for i, id := range deviceIDs {
			if i > 0 {
				// Each deletion its own stream position: other servers
				// take an update whose stream_id they saw as a duplicate.
				if pos, err = s.p.Store.MarkDeviceListChanged(ctx, userID); err != nil {
					s.p.Logger.Warn("recording a device-list change", "user", userID, "err", err)
					return
				}
			}
			s.p.DeviceChanged(ctx, DeviceChange{UserID: userID, DeviceID: id, StreamID: pos, Deleted: true})
		}
	}
}
