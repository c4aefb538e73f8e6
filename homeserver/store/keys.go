package store

import (
	"context"
	"errors"
)

// ErrQueueFull is returned when a to-device message would grow a device's
// queue past the bound the caller gave.
var ErrQueueFull = errors.New("store: to-device queue full")

// KeyJSON is one signed key object as the client uploaded it: device keys,
// a one-time or fallback key, or a cross-signing key.
type KeyJSON struct {
	UserID   string
	DeviceID string // "" for cross-signing keys
	// KeyID is "algorithm:id" for one-time and fallback keys, the key type
	// (master, self_signing, user_signing) for cross-signing keys, "" for
	// device keys.
	KeyID string
	JSON  []byte
	// DisplayName is the device's display name (DeviceKeys only).
	DisplayName string
}

// KeySignature is a signature one user's key made over another key and
// uploaded through /keys/signatures/upload. TargetKey is a device ID or
// the unpadded base64 public key of a cross-signing key.
type KeySignature struct {
	TargetUser  string
	TargetKey   string
	SignerUser  string
	SignerKeyID string // "ed25519:..."
	Signature   string
}

// ClaimRequest asks for one key of an algorithm of one device.
type ClaimRequest struct {
	UserID    string
	DeviceID  string
	Algorithm string
}

// ToDeviceMessage is one queued send-to-device message for one device.
type ToDeviceMessage struct {
	Pos      int64 // assigned by the store
	UserID   string
	DeviceID string
	Sender   string
	Type     string
	Content  []byte
}

// ToDeviceTxn identifies a send-to-device request for idempotency.
type ToDeviceTxn struct {
	UserID   string
	DeviceID string
	TxnID    string
	BodyHash []byte
	TS       int64
}

// DehydratedDevice is a user's dehydrated device (MSC3814).
type DehydratedDevice struct {
	UserID     string
	DeviceID   string
	DeviceData []byte
}

// Keys stores end-to-end encryption keys, device-list changes and the
// to-device queue. Writes that /sync shows (device-list changes, to-device
// messages) take a stream position, which they return; the caller
// notifies it. DeleteDevices and DeactivateAccount delete the keys and
// queued messages of the devices they delete.
type Keys interface {
	// UploadKeys stores, in one transaction, a device's keys (deviceKeys
	// nil: unchanged), one-time keys (a key ID uploaded before with the
	// same JSON is kept, with other JSON it is ErrExists and nothing is
	// stored) and fallback keys (replacing the device's key of the same
	// algorithm, unused). When the device keys are new or differ it records
	// a device-list change of the user and returns its position (else 0).
	UploadKeys(ctx context.Context, userID, deviceID string, deviceKeys []byte, otks, fallbacks []KeyJSON) (int64, error)
	// DeviceKeys lists the device keys of the users' devices, with each
	// device's display name.
	DeviceKeys(ctx context.Context, userIDs []string) ([]KeyJSON, error)
	// OneTimeKeyCounts counts a device's unclaimed one-time keys by
	// algorithm.
	OneTimeKeyCounts(ctx context.Context, userID, deviceID string) (map[string]int, error)
	// UnusedFallbackKeyTypes lists the algorithms of the device's fallback
	// keys not yet claimed.
	UnusedFallbackKeyTypes(ctx context.Context, userID, deviceID string) ([]string, error)
	// ClaimKeys takes, for each request, the device's oldest one-time key
	// of the algorithm (in upload order, keys of one upload in the order
	// given; MSC4225), deleted so no two claims get the same key, else the
	// device's
	// fallback key (marked used, still handed out). Requests with no key
	// are left out of the answer.
	ClaimKeys(ctx context.Context, reqs []ClaimRequest) ([]KeyJSON, error)

	// PutCrossSigningKeys stores the user's cross-signing keys (KeyID is
	// the type), replacing those of the same type, and records a
	// device-list change; it returns its position.
	PutCrossSigningKeys(ctx context.Context, userID string, keys []KeyJSON) (int64, error)
	CrossSigningKeys(ctx context.Context, userIDs []string) ([]KeyJSON, error)
	// PutKeySignatures stores signatures and records a device-list change
	// of each target user; it returns its position.
	PutKeySignatures(ctx context.Context, sigs []KeySignature) (int64, error)
	// KeySignatures lists the signatures over the users' keys.
	KeySignatures(ctx context.Context, targetUsers []string) ([]KeySignature, error)
	// MarkDeviceListChanged records a device-list change of the user (a
	// device deleted) and returns its position.
	MarkDeviceListChanged(ctx context.Context, userID string) (int64, error)
	// DeviceListChanges lists the users whose device list changed in
	// (since, to].
	DeviceListChanges(ctx context.Context, since, to int64) ([]string, error)

	// AddToDevice queues msgs (all at one new position, which it returns
	// and writes into each message) and records txn. A txn seen before is
	// ErrExists and queues nothing; ToDeviceTxnHash then tells its body.
	// A device whose queue already holds maxQueue messages is ErrQueueFull
	// (maxQueue 0: no bound) and nothing is queued.
	AddToDevice(ctx context.Context, msgs []ToDeviceMessage, txn ToDeviceTxn, maxQueue int) (int64, error)
	// DeviceIDs lists the devices (logged in or dehydrated) of each user.
	DeviceIDs(ctx context.Context, userIDs []string) (map[string][]string, error)
	// ToDeviceTxnHash is the body hash recorded for a transaction.
	ToDeviceTxnHash(ctx context.Context, userID, deviceID, txnID string) ([]byte, error)
	// ToDevice lists up to limit of the device's messages with
	// since < Pos <= to, oldest first.
	ToDevice(ctx context.Context, userID, deviceID string, since, to int64, limit int) ([]ToDeviceMessage, error)
	// AckToDevice deletes the device's messages with Pos <= upTo (the
	// client has them) and returns how many.
	AckToDevice(ctx context.Context, userID, deviceID string, upTo int64) (int64, error)
	// HasToDeviceUpTo reports whether the device has messages with Pos <=
	// upTo still queued (so an ack has work to do).
	HasToDeviceUpTo(ctx context.Context, userID, deviceID string, upTo int64) (bool, error)
	// ExpireToDeviceTxns forgets transaction IDs recorded before ts.
	ExpireToDeviceTxns(ctx context.Context, beforeTS int64) error

	// PutDehydratedDevice replaces the user's dehydrated device; the
	// device row (d.DeviceID) must exist. The old dehydrated device, if
	// another, is deleted with its keys and messages; its ID is returned.
	PutDehydratedDevice(ctx context.Context, d DehydratedDevice) (string, error)
	DehydratedDevice(ctx context.Context, userID string) (DehydratedDevice, error)
	// DeleteDehydratedDevice deletes the user's dehydrated device with its
	// device row, keys and messages, and returns its ID (ErrNotFound:
	// none).
	DeleteDehydratedDevice(ctx context.Context, userID string) (string, error)
}
