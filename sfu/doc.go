// Package sfu is the media plane: RTP forwarding on pion/webrtc. It knows
// nothing of Matrix.
package sfu
