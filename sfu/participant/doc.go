// Package participant owns one call participant's media: its publisher
// peer connection (tracks it sends), its subscriber peer connection
// (tracks it receives, offered by the SFU), the LiveKit signal requests
// that drive both, and the fan-out of each published track to the down
// tracks of its subscribers.
//
// It knows nothing of rooms: it reports upward through Listener and sends
// signal responses through Sink, both implemented above it.
package participant
