package keys

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"strconv"

	"github.com/salonhq/salon/homeserver/store"
	"github.com/salonhq/salon/internal/mxerr"
)

// DehydratedRequest is the body of PUT .../dehydrated_device (MSC3814):
// the device's opaque, client-encrypted data and its keys.
type DehydratedRequest struct {
	DeviceID    string          `json:"device_id"`
	DeviceData  json.RawMessage `json:"device_data"`
	DisplayName string          `json:"initial_device_display_name"`
	UploadRequest
}

// PutDehydrated makes deviceID the user's dehydrated device, replacing
// (and deleting) any earlier one: a device with no access token whose
// keys other devices encrypt to, and whose to-device messages the user's
// next login reads through DehydratedEvents.
func (s *Service) PutDehydrated(ctx context.Context, userID string, req DehydratedRequest) error {
	if !validKeyID(req.DeviceID) {
		return mxerr.InvalidParamf("Malformed device_id")
	}
	var data map[string]json.RawMessage
	if err := strictObject(req.DeviceData, &data); err != nil {
		return mxerr.BadJSONf("device_data: %v", err)
	}
	if len(req.DeviceData) > 64<<10 {
		return mxerr.New(mxerr.TooLarge, "device_data is too large")
	}
	if _, err := s.p.Store.Device(ctx, userID, req.DeviceID); err == nil {
		cur, err := s.p.Store.DehydratedDevice(ctx, userID)
		if err != nil || cur.DeviceID != req.DeviceID {
			return mxerr.InvalidParamf("Device ID %s is taken by a logged-in device", req.DeviceID)
		}
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	// Check the keys before any write.
	if !present(req.DeviceKeys) {
		return mxerr.New(mxerr.MissingParam, "Missing parameter device_keys")
	}
	if _, err := s.checkDeviceKeys(ctx, userID, req.DeviceID, req.DeviceKeys); err != nil {
		return err
	}
	if _, err := checkKeyMap("one_time_keys", req.OneTimeKeys); err != nil {
		return err
	}
	if _, err := checkKeyMap("fallback_keys", req.FallbackKeys); err != nil {
		return err
	}
	tok := make([]byte, 32)
	if _, err := rand.Read(tok); err != nil {
		return err
	}
	now := s.p.Now().UnixMilli()
	// The token hash is of no token: nobody can log in as this device.
	if err := s.p.Store.UpsertDevice(ctx, store.Device{UserID: userID, DeviceID: req.DeviceID, DisplayName: req.DisplayName, TokenHash: tok, CreatedTS: now, LastSeenTS: now}); err != nil {
		return err
	}
	old, err := s.p.Store.PutDehydratedDevice(ctx, store.DehydratedDevice{UserID: userID, DeviceID: req.DeviceID, DeviceData: compact(req.DeviceData)})
	if err != nil {
		return err
	}
	if _, err := s.Upload(ctx, userID, req.DeviceID, req.UploadRequest); err != nil {
		if _, derr := s.p.Store.DeleteDehydratedDevice(ctx, userID); derr != nil {
			s.p.Logger.Warn("removing a half-made dehydrated device", "user", userID, "err", derr)
		}
		return err
	}
	if old != "" {
		s.DevicesDeleted(ctx, userID, []string{old})
	}
	return nil
}

// Dehydrated is the user's dehydrated device.
func (s *Service) Dehydrated(ctx context.Context, userID string) (store.DehydratedDevice, error) {
	d, err := s.p.Store.DehydratedDevice(ctx, userID)
	if errors.Is(err, store.ErrNotFound) {
		return d, mxerr.NotFoundf("No dehydrated device")
	}
	return d, err
}

// DeleteDehydrated deletes the user's dehydrated device and returns its
// ID.
func (s *Service) DeleteDehydrated(ctx context.Context, userID string) (string, error) {
	id, err := s.p.Store.DeleteDehydratedDevice(ctx, userID)
	if errors.Is(err, store.ErrNotFound) {
		return "", mxerr.NotFoundf("No dehydrated device")
	}
	if err != nil {
		return "", err
	}
	s.DevicesDeleted(ctx, userID, []string{id})
	return id, nil
}

// dehydratedBatch is how many messages one events call returns.
const dehydratedBatch = 100

// DehydratedEvents returns the dehydrated device's to-device messages
// after the next_batch token given ("" for the first call) and the token
// of the next batch, "" once a call finds no more messages (matrix-js-sdk
// stops when next_batch is absent, clients following MSC3814 when events
// is empty). Nothing is deleted: MSC3814 keeps the messages so that an
// interrupted rehydration can start again; they go with the device.
func (s *Service) DehydratedEvents(ctx context.Context, userID, deviceID, since string) ([]json.RawMessage, string, error) {
	d, err := s.Dehydrated(ctx, userID)
	if err != nil {
		return nil, "", err
	}
	if d.DeviceID != deviceID {
		return nil, "", mxerr.Forbid("Not your dehydrated device")
	}
	var from int64
	if since != "" {
		if from, err = strconv.ParseInt(since, 10, 64); err != nil || from < 0 {
			return nil, "", mxerr.InvalidParamf("Malformed next_batch")
		}
	}
	msgs, err := s.p.Store.ToDevice(ctx, userID, deviceID, from, s.p.Store.CurrentPos(), dehydratedBatch)
	if err != nil {
		return nil, "", err
	}
	out := make([]json.RawMessage, 0, len(msgs))
	next := from
	for _, m := range msgs {
		ev, err := ToDeviceEvent(m)
		if err != nil {
			return nil, "", err
		}
		out = append(out, ev)
		next = m.Pos
	}
	if len(out) == 0 {
		return out, "", nil
	}
	return out, strconv.FormatInt(next, 10), nil
}

// ToDeviceEvent is a queued message as /sync sends it.
func ToDeviceEvent(m store.ToDeviceMessage) (json.RawMessage, error) {
	return json.Marshal(struct {
		Content json.RawMessage `json:"content"`
		Sender  string          `json:"sender"`
		Type    string          `json:"type"`
	}{m.Content, m.Sender, m.Type})
}
