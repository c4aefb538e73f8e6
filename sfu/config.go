package sfu

import (
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// Config is the `sfu:` section of salon.yaml. Decode it strictly over
// Defaults(); a zero value in any field also means its default. Negative
// limits mean "no limit".
//
// Ports: all ICE traffic of every call shares one UDP port (UDPPort, ICE
// over a UDP mux) and one TCP port (TCPPort, ICE-TCP passive candidates,
// for networks that block UDP). Neither is random. The defaults, 7882/udp
// and 7881/tcp, are LiveKit's, so firewall guides written for LiveKit
// apply; TURN (the turn: section) is the fallback behind both.
type Config struct {
	// ListenHost is the address the media sockets bind. The default,
	// 127.0.0.1, keeps a fresh install to this machine like the rest of
	// Salon; a public deployment sets 0.0.0.0 (or its own address) and,
	// behind NAT, NAT1To1IPs.
	ListenHost string `yaml:"listen_host"`
	// UDPPort is the single UDP port for ICE, DTLS, SRTP and SCTP.
	UDPPort int `yaml:"udp_port"`
	// TCPPort is the ICE-TCP port; -1 turns ICE-TCP off.
	TCPPort int `yaml:"tcp_port"`
	// NAT1To1IPs are the public addresses advertised in host candidates in
	// place of the local one (a 1:1 NAT, as on most clouds).
	NAT1To1IPs []string `yaml:"nat_1to1_ips"`

	// MaxParticipants caps participants in one call.
	MaxParticipants int `yaml:"max_participants"`
	// MaxPublishers caps participants publishing media in one call.
	MaxPublishers int `yaml:"max_publishers"`
	// MaxTracksPerParticipant caps tracks one participant publishes.
	MaxTracksPerParticipant int `yaml:"max_tracks_per_participant"`
	// MaxBitrate caps, in bits per second, what one published video track
	// may send (advertised to the publisher in the SDP answer).
	MaxBitrate int `yaml:"max_bitrate"`
	// MaxSubscriberBitrate caps, in bits per second, what one subscriber
	// receives of one video track when choosing simulcast layers.
	MaxSubscriberBitrate int `yaml:"max_subscriber_bitrate"`

	// BandwidthEstimation is "gcc" (send-side estimate from each
	// subscriber's TWCC feedback, pion/interceptor's Google Congestion
	// Control, stepping simulcast layers down when the link congests) or
	// "off" (layers follow requested size, loss and caps only; saves a
	// little CPU per forwarded packet).
	BandwidthEstimation string `yaml:"bandwidth_estimation"`

	// PingInterval and PingTimeout are sent to clients in the join
	// response: clients ping every interval and give up on the signal
	// connection after timeout without a message.
	PingInterval time.Duration `yaml:"ping_interval"`
	PingTimeout  time.Duration `yaml:"ping_timeout"`
	// ResumeWindow is how long a participant whose signal connection
	// dropped is kept, for the client to resume (reconnect=1) before it
	// is removed from the call.
	ResumeWindow time.Duration `yaml:"resume_window"`
	// SpeakerInterval is how often active speakers are computed and sent.
	SpeakerInterval time.Duration `yaml:"speaker_interval"`
	// KeyframeInterval is the least time between two keyframe requests
	// (PLI/FIR) sent to one publisher stream.
	KeyframeInterval time.Duration `yaml:"keyframe_interval"`
}

// Defaults returns the configuration a fresh install runs with.
func Defaults() Config {
	return Config{
		ListenHost:              "127.0.0.1",
		UDPPort:                 7882,
		TCPPort:                 7881,
		MaxParticipants:         100,
		MaxPublishers:           -1,
		MaxTracksPerParticipant: 16,
		MaxBitrate:              -1,
		MaxSubscriberBitrate:    -1,
		BandwidthEstimation:     "gcc",
		PingInterval:            5 * time.Second,
		PingTimeout:             15 * time.Second,
		ResumeWindow:            15 * time.Second,
		SpeakerInterval:         300 * time.Millisecond,
		KeyframeInterval:        500 * time.Millisecond,
	}
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	d := Defaults()
	if c.ListenHost == "" {
		c.ListenHost = d.ListenHost
	}
	if c.BandwidthEstimation == "" {
		c.BandwidthEstimation = d.BandwidthEstimation
	}
	setInt := func(v *int, def int) {
		if *v == 0 {
			*v = def
		}
	}
	setInt(&c.UDPPort, d.UDPPort)
	setInt(&c.TCPPort, d.TCPPort)
	setInt(&c.MaxParticipants, d.MaxParticipants)
	setInt(&c.MaxPublishers, d.MaxPublishers)
	setInt(&c.MaxTracksPerParticipant, d.MaxTracksPerParticipant)
	setInt(&c.MaxBitrate, d.MaxBitrate)
	setInt(&c.MaxSubscriberBitrate, d.MaxSubscriberBitrate)
	setDur := func(v *time.Duration, def time.Duration) {
		if *v == 0 {
			*v = def
		}
	}
	setDur(&c.PingInterval, d.PingInterval)
	setDur(&c.PingTimeout, d.PingTimeout)
	setDur(&c.ResumeWindow, d.ResumeWindow)
	setDur(&c.SpeakerInterval, d.SpeakerInterval)
	setDur(&c.KeyframeInterval, d.KeyframeInterval)
	return c
}

// Validate reports every problem in c at once, each naming its key.
func (c Config) Validate() error {
	c = c.WithDefaults()
	var problems []error
	bad := func(key, format string, args ...any) {
		problems = append(problems, fmt.Errorf("sfu.%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if _, err := netip.ParseAddr(c.ListenHost); err != nil {
		bad("listen_host", "%q is not an IP address", c.ListenHost)
	}
	if c.UDPPort < 1 || c.UDPPort > 65535 {
		bad("udp_port", "must be a port number, got %d", c.UDPPort)
	}
	if c.TCPPort != -1 && (c.TCPPort < 1 || c.TCPPort > 65535) {
		bad("tcp_port", "must be a port number or -1 (off), got %d", c.TCPPort)
	}
	for _, ip := range c.NAT1To1IPs {
		if a, err := netip.ParseAddr(ip); err != nil || a.IsUnspecified() {
			bad("nat_1to1_ips", "%q is not a usable IP address", ip)
		}
	}
	if c.BandwidthEstimation != "gcc" && c.BandwidthEstimation != "off" {
		bad("bandwidth_estimation", "must be \"gcc\" or \"off\", got %q", c.BandwidthEstimation)
	}
	limit := func(key string, v int) {
		if v == 0 || v < -1 {
			bad(key, "must be positive or -1 (no limit), got %d", v)
		}
	}
	limit("max_participants", c.MaxParticipants)
	limit("max_publishers", c.MaxPublishers)
	limit("max_tracks_per_participant", c.MaxTracksPerParticipant)
	limit("max_bitrate", c.MaxBitrate)
	limit("max_subscriber_bitrate", c.MaxSubscriberBitrate)
	positive := func(key string, d time.Duration) {
		if d < 0 {
			bad(key, "must be positive, got %s", d)
		}
	}
	positive("ping_interval", c.PingInterval)
	positive("ping_timeout", c.PingTimeout)
	positive("resume_window", c.ResumeWindow)
	positive("speaker_interval", c.SpeakerInterval)
	positive("keyframe_interval", c.KeyframeInterval)
	if c.PingTimeout > 0 && c.PingInterval > 0 && c.PingTimeout <= c.PingInterval {
		bad("ping_timeout", "must be longer than sfu.ping_interval (%s), got %s", c.PingInterval, c.PingTimeout)
	}
	return errors.Join(problems...)
}
