// Package sync owns GET /sync: what a client is told has changed since its
// last sync, and the long-poll that waits for it; and simplified sliding
// sync (MSC4186, sliding*.go), a second view of the same streams.
//
// The model is dendrite's syncapi (STYLE.md habit 9): one provider per
// stream (room events and memberships, receipts, account data, typing,
// presence, to-device messages, device lists and key counts), a composite
// since-token (StreamToken: the store's one
// persistent position and the in-memory typing and presence counters), and
// a Notifier that wakes the long-polls of exactly the users a write
// concerns. A long-poll registers
// with the Notifier first and only then reads a snapshot bounded by the
// token it will hand out, so a write that commits between the two is never
// missed: either the snapshot contains it or its Notify wakes the poll.
//
// The package reads the store; it never writes rooms or events (it only
// deletes the to-device messages a client acknowledged by syncing past
// them). It does not import clientapi, rooms or keys.
//
// # What the writers must call
//
// Every write that uses stream positions must be reported to the Notifier
// once it has committed, or syncs stall for two seconds at its position
// (see the Notifier type):
//
//   - rooms, after store.PersistEvents: NotifyRange(b.Events[0].Pos, last,
//     roomID, users), users being the room's joined members plus the target
//     of any membership event in the batch (invitee, joiner, the user
//     kicked or banned). Calling Notify once per event is equivalent.
//   - PUT /rooms/{roomId}/receipt and /read_markers, after
//     store.PutReceipt: Notify(pos, roomID, members), or Notify(pos,
//     roomID, []string{owner}) for m.read.private.
//   - account data (global or per room, m.fully_read included), after
//     store.PutAccountData: Notify(pos, "", []string{owner}). The room is
//     "" on purpose: account data is found per user.
//   - POST /rooms/{roomId}/forget, after store.Forget: Forgotten(userID).
//   - PUT /rooms/{roomId}/typing/{userId}: Typing.Set(roomID, userID,
//     typing, timeout, joinedMembers); it wakes the members itself.
//   - PUT /presence/{userId}/status: Presence.Set(userID, state, msg); it
//     wakes the user's room-mates itself.
//   - keys (to-device messages, device-list changes), after the store
//     write: Notify(pos, "", recipients) or Notify(pos, "", room-mates
//     from Engine.RoomMates).
//
// # What the handlers call
//
//   - GET /sync: ParseStreamToken is done by Engine.Sync; the filter
//     parameter is either inline JSON (first byte '{') for ParseFilter or
//     a filter ID whose stored JSON goes through ParseFilter. The Response
//     is written with json.Marshal. Errors carry an *mxerr.Error (wrapping
//     ErrBadToken or ErrBadFilter) for mxerr.Write; ctx.Err() means the
//     client went away.
//   - Every authenticated request: Presence.Active(userID); every /sync:
//     Presence.SyncStarted(userID, deviceID, set_presence) before it and
//     the returned function after it.
//   - POST .../org.matrix.simplified_msc3575/sync: ParseSlidingRequest on
//     the body, pos and timeout from the query string (or the body), then
//     Engine.SlidingSync; an unknown pos is M_UNKNOWN_POS.
//   - POST /user/{userId}/filter: ValidateFilterJSON, then store the JSON.
//   - GET /rooms/{roomId}/messages: MessagesBound reads from/to tokens,
//     both the prev_batch ("t{P}") and next_batch ("s{N}_{T}") forms.
//
// Spec: Client-Server API "Syncing" and "Filtering", "Send-to-Device
// messaging", "End-to-End Encryption" (device_lists, key counts)
// (https://spec.matrix.org/latest/client-server-api/#syncing), the typing,
// receipts, read markers and account data modules.
package sync
