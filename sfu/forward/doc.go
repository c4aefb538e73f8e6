// Package forward decides, packet by packet, what one subscriber receives of
// one published track: which simulcast layer, and the sequence number,
// timestamp and VP8 picture ID rewritten so the subscriber sees one
// continuous stream across layer switches, pauses and resumes.
//
// It does no I/O and holds no locks: the caller (a down track) owns a
// Forwarder and serialises calls to it. Forward allocates nothing; it runs
// once per forwarded packet per subscriber.
package forward
