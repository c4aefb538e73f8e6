// Package sync owns GET /sync: what a client is told has changed since its
// last sync, and the long-poll that waits for it.
//
// The model is dendrite's syncapi (STYLE.md habit 9): one provider per
// stream (room events and memberships, receipts, account data, typing), a
// composite since-token (StreamToken: the store's one persistent position
// and the in-memory typing counter), and a Notifier that wakes the
// long-polls of exactly the users a write concerns. A long-poll registers
// with the Notifier first and only then reads a snapshot bounded by the
// token it will hand out, so a write that commits between the two is never
// missed: either the snapshot contains it or its Notify wakes the poll.
//
// The package reads the store; it never writes rooms or events. The rooms
// layer and the receipt, account-data and typing handlers tell it about
// their writes through Notifier.Notify and Typing.Set. It does not import
// clientapi or rooms.
//
// Spec: Client-Server API "Syncing" and "Filtering"
// (https://spec.matrix.org/latest/client-server-api/#syncing), the typing,
// receipts, read markers and account data modules.
package sync
