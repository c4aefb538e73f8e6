package rooms

import (
	"context"
	"encoding/json"
	"net"
	"slices"
	"strings"

	"github.com/salonhq/salon/homeserver/authrules"
	"github.com/salonhq/salon/homeserver/events"
	"github.com/salonhq/salon/homeserver/glob"
	"github.com/salonhq/salon/homeserver/store"
)

// sendOut queues the local events of a committed batch to the other
// servers with joined members in r (the state after the batch), and a
// member event to its target's server (a kicked or banned user's server
// hears of it). Events of other servers are not sent on: their origin
// sends them. r is locked.
func (s *Service) sendOut(ctx context.Context, r *room, batch *store.EventBatch) {
	if s.remote == nil {
		return
	}
	servers := r.derive().servers
	for _, e := range batch.Events {
		if !s.isLocal(e.Sender) {
			continue
		}
		dests := s.destinations(r, servers, e.Type, e.StateKey, e.Membership, "")
		if len(dests) == 0 {
			continue
		}
		if err := s.remote.QueuePDU(ctx, dests, json.RawMessage(e.JSON)); err != nil {
			s.log.Error("federation: queue event", "room", r.id, "event", e.EventID, "err", err)
		}
	}
}

// forward sends another server's user's membership event, which this
// server got through send_join or send_leave, to the room's other servers
// (those with joined members before or after it), never back to origin.
func (s *Service) forward(ctx context.Context, r *room, before authrules.StateMap, ev *events.Event, origin string) {
	servers := slices.Clone(r.derive().servers)
	for t, m := range before {
		if t.Type == "m.room.member" && m.Membership() == "join" && !slices.Contains(servers, events.ServerOf(t.StateKey)) {
			servers = append(servers, events.ServerOf(t.StateKey))
		}
	}
	dests := s.destinations(r, servers, ev.Type, ev.StateKey, ev.Membership(), origin)
	if len(dests) == 0 {
		return
	}
	if err := s.remote.QueuePDU(ctx, dests, json.RawMessage(ev.JSON)); err != nil {
		s.log.Error("federation: forward event", "room", r.id, "event", ev.ID, "err", err)
	}
}

// destinations are the servers an event goes to: those given, and the
// target's server of a membership change that is not an invite (invites
// go through /invite), without this server, without skip, without the
// servers the room's m.room.server_acl denies — except for a change of
// the ACL itself, which a server it now denies is told of (its members
// learn why the room goes quiet, and its server refuses nothing it
// should not send).
func (s *Service) destinations(r *room, servers []string, typ string, stateKey *string, membership, skip string) []string {
	out := make([]string, 0, len(servers)+1)
	add := func(srv string) {
		if srv != "" && srv != s.p.ServerName && srv != skip && !slices.Contains(out, srv) {
			out = append(out, srv)
		}
	}
	for _, srv := range servers {
		add(srv)
	}
	if typ == "m.room.member" && stateKey != nil && membership != "invite" {
		add(events.ServerOf(*stateKey))
	}
	if acl := r.state[events.StateTuple{Type: "m.room.server_acl"}]; acl != nil && len(out) > 0 && typ != "m.room.server_acl" {
		out = slices.DeleteFunc(out, func(srv string) bool { return !aclAllows(acl.Content, srv) })
	}
	return out
}

// aclAllows applies an m.room.server_acl's content to a server name
// (spec: Server Access Control Lists): IP literals only when
// allow_ip_literals, then deny globs, then allow globs; the port is not
// part of the match.
func aclAllows(content json.RawMessage, server string) bool {
	var acl struct {
		Allow           []string `json:"allow"`
		Deny            []string `json:"deny"`
		AllowIPLiterals *bool    `json:"allow_ip_literals"`
	}
	if json.Unmarshal(content, &acl) != nil {
		return true
	}
	host := server
	if h, _, err := net.SplitHostPort(server); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if net.ParseIP(host) != nil && acl.AllowIPLiterals != nil && !*acl.AllowIPLiterals {
		return false
	}
	for _, d := range acl.Deny {
		if glob.Match(d, host) {
			return false
		}
	}
	for _, a := range acl.Allow {
		if glob.Match(a, host) {
			return true
		}
	}
	return false
}

// denies reports whether r's m.room.server_acl refuses server: its PDUs
// and membership handshakes are refused as its destination is skipped.
func (r *room) denies(server string) bool {
	acl := r.state[events.StateTuple{Type: "m.room.server_acl"}]
	return acl != nil && !aclAllows(acl.Content, server)
}
