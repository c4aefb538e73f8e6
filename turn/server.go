package turn

import (
	"cmp"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/logging"
	pionturn "github.com/pion/turn/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/salonhq/salon/internal/udpbatch"
	"github.com/salonhq/salon/turn/credential"
)

// Params are what New needs.
type Params struct {
	Config Config
	// Logger is narrowed here with component=turn; nil discards.
	Logger *slog.Logger
	// Registerer receives the server's metrics; nil registers none. Close
	// unregisters them.
	Registerer prometheus.Registerer

	// Sockets to serve on instead of opening the configured listen
	// addresses (tests pass loopback sockets on port 0). The server owns
	// what it is given: Close closes it.
	UDPConn     net.PacketConn
	TCPListener net.Listener
	// TLSListener is a plain TCP listener; the server wraps it in TLS with
	// the configured certificate.
	TLSListener net.Listener

	// Holders, when set, is asked at Allocate and Refresh whether a
	// credential's holder is still logged in (see Holders).
	Holders Holders

	// channelLifetime, for tests: a channel binding's lifetime; zero is
	// the RFC's 10 minutes.
	channelLifetime time.Duration
}

// Server is the embedded TURN relay.
type Server struct {
	cfg      Config
	log      *slog.Logger
	secret   []byte
	peers    peerPolicy
	own      atomic.Pointer[ownAddrs] // complete once New returns
	holders  Holders
	gen      *pionturn.RelayAddressGeneratorPortRange
	pionLogs logging.LoggerFactory
	reg      prometheus.Registerer
	tlsConf  *tls.Config
	chanLife time.Duration // a channel binding's lifetime
	counters counters
	total    [directionCount]*rateLimiter

	udpAddr, tcpAddr, tlsAddr net.Addr

	udpServers []*pionturn.Server
	listeners  []net.Listener
	acceptWG   sync.WaitGroup // accept loops
	loopWG     sync.WaitGroup // pion read loops, one per UDP socket and per stream

	mu       sync.Mutex
	closed   bool
	relays   map[*relayConn]struct{}
	perUser  map[string]int
	streams  map[*streamConn]struct{}
	retired  trafficTotals // traffic of relays already closed
	closeErr error
	once     sync.Once
}

// New starts the relay on the configured addresses, or on the sockets in
// p. It returns once every listener is serving.
func New(p Params) (*Server, error) {
	cfg := p.Config.withDefaults()
	if err := cfg.Validate(); err != nil {
		closeGiven(p)
		return nil, fmt.Errorf("turn: invalid configuration: %w", err)
	}
	log := p.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "turn")
	allow, _ := parsePrefixes(cfg.AllowPeers) // validated above
	relayIP := net.ParseIP(cfg.RelayIP).To4()

	s := &Server{
		cfg:      cfg,
		log:      log,
		secret:   []byte(cfg.SharedSecret),
		peers:    peerPolicy{allow: allow},
		pionLogs: pionLoggers{log},
		holders:  p.Holders,
		reg:      p.Registerer,
		chanLife: cmp.Or(p.channelLifetime, channelLifetime),
		relays:   make(map[*relayConn]struct{}),
		perUser:  make(map[string]int),
		streams:  make(map[*streamConn]struct{}),
		gen: &pionturn.RelayAddressGeneratorPortRange{
			RelayAddress: relayIP,
			Address:      cfg.RelayBind,
			MinPort:      uint16(cfg.RelayPortMin),
			MaxPort:      uint16(cfg.RelayPortMax),
			MaxRetries:   30,
		},
	}
	for d := range directionCount {
		s.total[d] = newRateLimiter(cfg.TotalBytesPerSecond)
	}
	// Validate fills the generator's defaults; call it once here so the
	// per-session generators that share it never write to it.
	if err := s.gen.Validate(); err != nil {
		closeGiven(p)
		return nil, fmt.Errorf("turn: relay address generator: %w", err)
	}
	if cfg.TLSEnabled() || p.TLSListener != nil {
		conf, err := newTLSConfig(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			closeGiven(p)
			return nil, err
		}
		s.tlsConf = conf
	}

	// The relay addresses are known now, the listeners' ports once they
	// listen.
	s.own.Store(newOwnAddrs(cfg))
	if err := s.listen(p); err != nil {
		s.Close()
		return nil, err
	}
	s.own.Store(newOwnAddrs(cfg, s.udpAddr, s.tcpAddr, s.tlsAddr))
	if len(s.udpServers) == 0 && len(s.listeners) == 0 {
		s.Close()
		return nil, ErrNoListener
	}
	if s.reg != nil {
		if err := s.reg.Register(collector{s}); err != nil {
			s.reg = nil
			s.Close()
			return nil, fmt.Errorf("turn: registering metrics: %w", err)
		}
	}
	log.Info("TURN relay listening",
		"udp", addrString(s.udpAddr), "tcp", addrString(s.tcpAddr), "tls", addrString(s.tlsAddr),
		"realm", cfg.Realm, "relay_ip", cfg.RelayIP, "relay_bind", cfg.RelayBind,
		"relay_ports", fmt.Sprintf("%d-%d", cfg.RelayPortMin, cfg.RelayPortMax),
		"allow_peers", cfg.AllowPeers)
	return s, nil
}

// closeGiven closes the sockets in p, which the server owns from New on.
func closeGiven(p Params) {
	for _, c := range []interface{ Close() error }{p.UDPConn, p.TCPListener, p.TLSListener} {
		if c != nil {
			c.Close()
		}
	}
}

func addrString(a net.Addr) string {
	if a == nil {
		return Off
	}
	return a.String()
}

// listen opens (or adopts) the sockets and starts serving them. On error
// the caller closes s, which closes whatever was opened.
func (s *Server) listen(p Params) error {
	var udp []net.PacketConn
	switch {
	case p.UDPConn != nil:
		udp = []net.PacketConn{p.UDPConn}
	case s.cfg.ListenUDP != Off:
		var err error
		udp, err = listenUDP(s.cfg.ListenUDP, s.cfg.UDPSockets)
		if err != nil {
			closeGiven(Params{TCPListener: p.TCPListener, TLSListener: p.TLSListener})
			return fmt.Errorf("turn: listen_udp: %w", err)
		}
	}
	for i, c := range udp {
		if err := s.serveUDP(c); err != nil {
			for _, rest := range udp[i+1:] {
				rest.Close()
			}
			closeGiven(Params{TCPListener: p.TCPListener, TLSListener: p.TLSListener})
			return err
		}
		s.udpAddr = c.LocalAddr()
	}

	tcp := p.TCPListener
	if tcp == nil && s.cfg.ListenTCP != Off {
		var err error
		if tcp, err = net.Listen("tcp", s.cfg.ListenTCP); err != nil {
			closeGiven(Params{TLSListener: p.TLSListener})
			return fmt.Errorf("turn: listen_tcp: %w", err)
		}
	}
	if tcp != nil {
		s.tcpAddr = tcp.Addr()
		s.serveStreams(tcp, transportTCP)
	}

	tl := p.TLSListener
	if tl == nil && s.tlsConf != nil {
		var err error
		if tl, err = net.Listen("tcp", s.cfg.ListenTLS); err != nil {
			return fmt.Errorf("turn: listen_tls: %w", err)
		}
	}
	if tl != nil {
		s.tlsAddr = tl.Addr()
		s.serveStreams(tl, transportTLS)
	}
	return nil
}

// serveUDP runs one pion server on a UDP socket.
func (s *Server) serveUDP(c net.PacketConn) error {
	sess := s.newSession(transportUDP)
	lc := &loopConn{PacketConn: c, ss: sess, done: s.loopWG.Done}
	lc.udp, _ = c.(udpReader)
	if bc, ok := udpbatch.New(c); ok {
		lc.PacketConn = bc
		sess.out = bc.(*udpbatch.Conn)
	}
	s.loopWG.Add(1)
	ps, err := pionturn.NewServer(sess.serverConfig(lc))
	if err != nil {
		s.loopWG.Done()
		c.Close()
		return fmt.Errorf("turn: starting UDP server: %w", err)
	}
	s.udpServers = append(s.udpServers, ps)
	return nil
}

// serveStreams accepts TCP (or TLS) connections on l. Each connection gets
// a pion server of its own: its requests are then handled on one
// goroutine, so authentication and allocation pair up (see session), and
// its allocations end with the connection (pion v2 keeps allocations of a
// closed TCP connection until they time out otherwise).
func (s *Server) serveStreams(l net.Listener, t transport) {
	s.listeners = append(s.listeners, l)
	s.acceptWG.Add(1)
	go func() {
		defer s.acceptWG.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				if !errors.Is(err, net.ErrClosed) {
					s.log.Warn("TURN accept failed; listener stopped", "transport", t, "err", err)
				}
				return
			}
			if t == transportTLS {
				c = tls.Server(c, s.tlsConf)
			}
			s.serveStream(c, t)
		}
	}()
}

func (s *Server) serveStream(c net.Conn, t transport) {
	sc := &streamConn{PacketConn: pionturn.NewSTUNConn(c), conn: c, srv: s, transport: t}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		c.Close()
		return
	}
	s.streams[sc] = struct{}{}
	s.loopWG.Add(1)
	s.mu.Unlock()

	sess := s.newSession(t)
	if _, err := pionturn.NewServer(sess.serverConfig(sc)); err != nil {
		s.log.Warn("TURN: starting stream server failed", "err", err)
		sc.finish()
	}
}

// loopConn is a listening UDP socket; it reports when pion's read loop
// on it has ended.
type loopConn struct {
	net.PacketConn
	ss      *session
	udp     udpReader // the PacketConn, when it is a *net.UDPConn
	clients addrCache // used by pion's single read loop
	once    sync.Once
	done    func()
}

func (c *loopConn) ReadFrom(p []byte) (int, net.Addr, error) {
	var n int
	var addr net.Addr
	var err error
	if c.udp != nil {
		for {
			var ap netip.AddrPort
			if n, ap, err = c.udp.ReadFromUDPAddrPort(p); err != nil {
				break
			}
			// Bound ChannelData is relayed here, without pion.
			if !c.ss.fromClient(p[:n], ap) {
				addr = c.clients.addr(ap)
				break
			}
		}
	} else {
		n, addr, err = c.PacketConn.ReadFrom(p)
	}
	if err != nil {
		c.once.Do(c.done)
	}
	return n, addr, err
}

// streamConn is one TCP or TLS client connection as pion's PacketConn.
type streamConn struct {
	net.PacketConn // *pionturn.STUNConn
	conn           net.Conn
	srv            *Server
	transport      transport
	handshaken     bool // touched only by the read loop
	once           sync.Once
}

const tlsHandshakeTimeout = 10 * time.Second

func (c *streamConn) ReadFrom(p []byte) (int, net.Addr, error) {
	if !c.handshaken {
		c.handshaken = true
		if tc, ok := c.conn.(*tls.Conn); ok {
			tc.SetDeadline(time.Now().Add(tlsHandshakeTimeout))
			err := tc.Handshake()
			tc.SetDeadline(time.Time{})
			if err != nil {
				c.srv.refuse(refusalTLSHandshake)
				c.srv.log.Debug("TURN TLS handshake failed", "client", c.conn.RemoteAddr().String(), "err", err)
				c.finish()
				return 0, nil, err
			}
		}
	}
	n, addr, err := c.PacketConn.ReadFrom(p)
	if err != nil {
		c.finish()
	}
	return n, addr, err
}

// finish runs when the read loop ends: the connection is closed (pion then
// closes its allocations) and the server stops tracking it.
func (c *streamConn) finish() {
	c.once.Do(func() {
		c.conn.Close()
		c.srv.mu.Lock()
		delete(c.srv.streams, c)
		c.srv.mu.Unlock()
		c.srv.loopWG.Done()
	})
}

// Close stops the relay: listeners, client connections and allocations,
// and waits for the goroutines serving them. (pion's goroutines end a few
// instructions after the calls Close waits for return.)
func (s *Server) Close() error {
	s.once.Do(func() {
		var errs []error
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()

		for _, ps := range s.udpServers {
			if err := ps.Close(); err != nil {
				errs = append(errs, err)
			}
		}
		for _, l := range s.listeners {
			if err := l.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
				errs = append(errs, err)
			}
		}
		s.acceptWG.Wait() // no new streams after this

		s.mu.Lock()
		streams := make([]*streamConn, 0, len(s.streams))
		for sc := range s.streams {
			streams = append(streams, sc)
		}
		s.mu.Unlock()
		for _, sc := range streams {
			sc.conn.Close() // the read loop sees the error and finishes
		}
		s.loopWG.Wait() // no new allocations after this

		s.mu.Lock()
		relays := make([]*relayConn, 0, len(s.relays))
		for r := range s.relays {
			relays = append(relays, r)
		}
		s.mu.Unlock()
		for _, r := range relays {
			r.Close()
		}
		for _, r := range relays {
			r.waitReader()
		}
		if s.reg != nil {
			s.reg.Unregister(collector{s})
		}
		s.closeErr = errors.Join(errs...)
		s.log.Info("TURN relay stopped")
	})
	return s.closeErr
}

// URIs returns the TURN URIs clients use to reach this server at host, in
// the form /_matrix/client/v3/voip/turnServer returns.
func (s *Server) URIs(host string) []string {
	if strings.Contains(host, ":") && !strings.HasPrefix(host, "[") {
		host = "[" + host + "]"
	}
	var uris []string
	if s.udpAddr != nil {
		uris = append(uris, "turn:"+host+":"+portOf(s.udpAddr)+"?transport=udp")
	}
	if s.tcpAddr != nil {
		uris = append(uris, "turn:"+host+":"+portOf(s.tcpAddr)+"?transport=tcp")
	}
	if s.tlsAddr != nil {
		port := portOf(s.tlsAddr)
		if s.cfg.TLSPublicPort != 0 {
			port = strconv.Itoa(s.cfg.TLSPublicPort)
		}
		uris = append(uris, "turns:"+host+":"+port+"?transport=tcp")
	}
	return uris
}

func portOf(a net.Addr) string {
	_, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return "0"
	}
	return port
}

// Credentials returns TURN REST credentials for principal (a Matrix user
// ID, or credential.Principal of a user and device), valid for the
// configured credential_ttl from now.
func (s *Server) Credentials(principal string, now time.Time) (username, password string, ttl time.Duration) {
	ttl = s.cfg.CredentialTTL
	username, password = credential.Generate(s.secret, principal, ttl, now)
	return username, password, ttl
}

// AllocationCount returns the number of live allocations.
func (s *Server) AllocationCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.relays)
}

func (s *Server) refuse(r refusal) { s.counters.refusals[r].Add(1) }

type serverStats struct {
	allocations [transportCount]int
	connections [transportCount]int
	traffic     trafficTotals
}

func (s *Server) stats() serverStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := serverStats{traffic: s.retired}
	for r := range s.relays {
		st.allocations[r.transport]++
		r.traffic.addTo(&st.traffic)
	}
	for sc := range s.streams {
		st.connections[sc.transport]++
	}
	return st
}
