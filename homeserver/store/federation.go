package store

import "context"

// ServerKey is an ed25519 verify key of a homeserver: one of this server's
// own (current or old) or one fetched from another server.
type ServerKey struct {
	ServerName string
	KeyID      string // "ed25519:abc"
	Public     []byte // 32 bytes
	// ValidUntilTS is the valid_until_ts the key was published with (for
	// this server's own keys: 0).
	ValidUntilTS int64
	// ExpiredTS is when the key stopped being used (an old_verify_key);
	// 0 while it is current.
	ExpiredTS int64
	// FetchedTS is when the key was fetched or, for own keys, first used.
	FetchedTS int64
}

// OutboxItem is one EDU or PDU waiting to go to a destination server.
type OutboxItem struct {
	ID          int64
	Destination string
	Kind        string // "edu" or "pdu"
	Body        []byte // the JSON object sent in the transaction
	CreatedTS   int64
}

// DestinationRetry is the backoff state of a destination.
type DestinationRetry struct {
	Destination string
	Failures    int
	RetryTS     int64 // not before this time (ms)
}

// Federation stores the Server-Server API's state: this server's verify
// keys, the cache of other servers' keys, the outbound queue and the
// inbound transactions already answered.
type Federation interface {
	// OwnServerKeys lists this server's keys, current first then old ones
	// by key ID.
	OwnServerKeys(ctx context.Context) ([]ServerKey, error)
	// UseOwnServerKey records keyID as the current key (if new, at nowTS)
	// and makes every other current key old, expired at nowTS.
	UseOwnServerKey(ctx context.Context, keyID string, public []byte, nowTS int64) error

	// PutRemoteServerKeys caches keys of other servers; a key already
	// cached keeps the later valid_until_ts.
	PutRemoteServerKeys(ctx context.Context, keys []ServerKey) error
	// RemoteServerKeys lists the cached keys of a server.
	RemoteServerKeys(ctx context.Context, serverName string) ([]ServerKey, error)

	// EnqueueFederation appends items to their destinations' queues.
	EnqueueFederation(ctx context.Context, items []OutboxItem) error
	// NextFederationTxn returns the destination's next transaction: the
	// items already assigned to an unacknowledged transaction if any (the
	// same ID and items again, so a retried transaction is recognised),
	// else the oldest items, at most maxPDUs PDUs and maxEDUs EDUs, which
	// it assigns to newTxnID. No items: "" and nil.
	NextFederationTxn(ctx context.Context, destination, newTxnID string, maxPDUs, maxEDUs int) (string, []OutboxItem, error)
	// DeleteFederationTxn removes an acknowledged transaction's items.
	DeleteFederationTxn(ctx context.Context, destination, txnID string) error
	// FederationQueueDepths counts queued items per destination.
	FederationQueueDepths(ctx context.Context) (map[string]int, error)
	// FederationRetry returns a destination's backoff (zero when none).
	FederationRetry(ctx context.Context, destination string) (DestinationRetry, error)
	// SetFederationRetry stores a destination's backoff; Failures 0
	// clears it.
	SetFederationRetry(ctx context.Context, r DestinationRetry) error

	// InboundTxn returns the stored answer to a transaction origin sent
	// before, or ErrNotFound.
	InboundTxn(ctx context.Context, origin, txnID string) ([]byte, error)
	// PutInboundTxn stores the answer to a transaction and forgets those
	// older than expireBeforeTS.
	PutInboundTxn(ctx context.Context, origin, txnID string, answer []byte, nowTS, expireBeforeTS int64) error
}
