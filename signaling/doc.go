// Package signaling is the call control plane: the LiveKit-protocol
// WebSocket and the MatrixRTC JWT service. It asks the homeserver whether a
// user may join through an interface it declares.
package signaling
