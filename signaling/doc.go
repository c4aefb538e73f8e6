// Package signaling is the call control plane: the LiveKit-protocol
// WebSocket and the MatrixRTC JWT service. It asks the homeserver whether a
// user may join, and what they may do, through interfaces it declares
// (Authority, CallPolicy); RTC.RoomChanged applies a Matrix room's changes
// to the participants already in its calls.
package signaling
