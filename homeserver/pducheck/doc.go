// Package pducheck owns the checks a server performs on receipt of a PDU
// over federation, in the order of the server-server spec's "Checks
// performed on receipt of a PDU"
// (https://spec.matrix.org/latest/server-server-api/#checks-performed-on-receipt-of-a-pdu):
//
//  1. a valid event of the room version, else dropped;
//  2. signed by the servers that must sign it, else dropped;
//  3. a content hash that matches, else redacted before going on;
//  4. allowed by its own auth_events, none of them rejected, else rejected;
//  5. allowed by the state before it, else rejected;
//  6. allowed by the current state of the room, else soft-failed.
//
// The decisions are pure: keys come through a Verifier (the federation
// Keyring implements it), auth events and states through a Room the caller
// implements over its store and state resolution (homeserver/stateres).
// Nothing here stores, fetches missing events, or answers over HTTP.
package pducheck
