// Package turn is Salon's embedded TURN relay (RFC 5766) on pion/turn v2:
// UDP and TCP listeners, TLS when a certificate is configured, TURN REST
// credentials shared with coturn (see turn/credential), a peer-address
// policy that refuses loopback, private, link-local, CGNAT, multicast,
// reserved, cloud-metadata, local-use NAT64 and Teredo addresses unless
// allow-listed (and the relay's own listen addresses always), answering a
// refused permission 403, credentials that end with the login they were
// given to (Holders), per-user allocation limits, an allocation lifetime
// cap, bandwidth caps, and Prometheus metrics.
//
// The caller (cmd/salon) decodes Config, fills Realm and SharedSecret,
// calls New, advertises URIs and Credentials through the homeserver's
// /voip/turnServer, and calls Close at shutdown. The package must not
// import homeserver or sfu packages. docs/TURN.md is the operator's guide.
package turn
