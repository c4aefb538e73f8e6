package rooms

import (
	"context"
	"encoding/json"
	"errors"
	"slices"

	"github.com/salonhq/salon/homeserver/authrules"
	"github.com/salonhq/salon/homeserver/events"
	"github.com/salonhq/salon/homeserver/pducheck"
	"github.com/salonhq/salon/homeserver/store"
	"github.com/salonhq/salon/internal/mxerr"
)

// Membership across servers (Server-Server API: joining rooms, leaving
// rooms, inviting to rooms). The served halves answer another server;
// the others ask one for a local user.

// entry returns a room's cache entry, not locked and not filled.
func (s *Service) entry(roomID string) *room {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.rooms[roomID]
	if !ok {
		r = &room{id: roomID}
		s.rooms[roomID] = r
	}
	return r
}

// errIncompatible answers a server that does not support the room's
// version.
func errIncompatible(v events.RoomVersion) error {
	return mxerr.New(mxerr.IncompatibleRoomVer, "Your server does not support room version %s", v).WithStatus(400)
}

// template is a member event of userID built against r, unsigned, for
// another server to fill in, sign and send back (make_join, make_leave).
func (s *Service) template(r *room, userID, membership string, extra map[string]any) (json.RawMessage, error) {
	c := map[string]any{"membership": membership}
	for k, v := range extra {
		c[k] = v
	}
	ev, err := s.pduOf(r, userID, Event{Type: "m.room.member", StateKey: &userID, Content: mustJSON(c)}, events.ServerOf(userID))
	if err != nil {
		return nil, err
	}
	if err := authrules.Allowed(ev, r.state); err != nil {
		return nil, mxerr.Forbid("You may not %s this room: %v", membership, err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(ev.JSON, &m); err != nil {
		return nil, err
	}
	delete(m, "hashes")
	delete(m, "signatures")
	delete(m, "unsigned")
	return json.Marshal(m)
}

// lockResident locks a room this server is in, for another server
// (origin) the room's server ACL does not deny.
func (s *Service) lockResident(ctx context.Context, roomID, origin string) (*room, error) {
	r, err := s.lockRoom(ctx, roomID)
	if err == errUnknownRoom {
		return nil, mxerr.NotFoundf("Unknown room %s", roomID)
	}
	if err != nil {
		return nil, err
	}
	if !r.resident(s.p.ServerName) {
		r.mu.Unlock()
		return nil, mxerr.NotFoundf("This server is not in room %s", roomID)
	}
	if r.denies(origin) {
		r.mu.Unlock()
		return nil, errDeniedByACL
	}
	return r, nil
}

// MakeJoin answers make_join: a join event template for userID (of
// origin), if the room's version is one origin supports and the user may
// join (a restricted room: authorised by a local member who can invite).
func (s *Service) MakeJoin(ctx context.Context, origin, roomID, userID string, versions []string) (events.RoomVersion, json.RawMessage, error) {
	if events.ServerOf(userID) != origin || !events.ValidUserID(userID) {
		return "", nil, mxerr.Forbid("The user is not of the requesting server")
	}
	authoriser, err := s.restrictedAuthoriser(ctx, roomID, userID)
	if err == errUnknownRoom {
		return "", nil, mxerr.NotFoundf("Unknown room %s", roomID)
	}
	if err != nil {
		return "", nil, err
	}
	r, err := s.lockResident(ctx, roomID, origin)
	if err != nil {
		return "", nil, err
	}
	defer r.mu.Unlock()
	if !slices.Contains(versions, string(r.version)) && !(len(versions) == 0 && r.version == "1") {
		return "", nil, errIncompatible(r.version)
	}
	var extra map[string]any
	if authoriser != "" {
		extra = map[string]any{"join_authorised_via_users_server": authoriser}
	}
	t, err := s.template(r, userID, "join", extra)
	return r.version, t, err
}

// MakeLeave answers make_leave.
func (s *Service) MakeLeave(ctx context.Context, origin, roomID, userID string) (events.RoomVersion, json.RawMessage, error) {
	if events.ServerOf(userID) != origin || !events.ValidUserID(userID) {
		return "", nil, mxerr.Forbid("The user is not of the requesting server")
	}
	r, err := s.lockResident(ctx, roomID, origin)
	if err != nil {
		return "", nil, err
	}
	defer r.mu.Unlock()
	t, err := s.template(r, userID, "leave", nil)
	return r.version, t, err
}

// checkMemberPDU parses a send_join / send_leave event: of the room, the
// ID in the path, a membership of its own sender, of origin's user.
func checkMemberPDU(r *room, origin, eventID, membership string, raw json.RawMessage) (*events.Event, error) {
	ev, err := pducheck.ParseEvent(r.version, raw)
	if err != nil {
		return nil, mxerr.BadJSONf("%v", err)
	}
	switch {
	case ev.ID != eventID:
		return nil, mxerr.BadJSONf("The event's ID is not %s", eventID)
	case ev.RoomID != r.id:
		return nil, mxerr.BadJSONf("The event is not of room %s", r.id)
	case ev.Type != "m.room.member" || !ev.StateKeyIs(ev.Sender) || ev.Membership() != membership:
		return nil, mxerr.BadJSONf("Not a %s of its sender", membership)
	case events.ServerOf(ev.Sender) != origin:
		return nil, mxerr.Forbid("The user is not of the requesting server")
	}
	return ev, nil
}

// SendJoin answers send_join (v2): the join is checked and stored as a
// received PDU, then sent to the room's other servers; the answer is the
// room's state before it and the auth chain of that state and the join.
// A restricted join naming a local authoriser is signed here first.
func (s *Service) SendJoin(ctx context.Context, origin, roomID, eventID string, raw json.RawMessage) (JoinAnswer, error) {
	r, err := s.lockResident(ctx, roomID, origin)
	if err != nil {
		return JoinAnswer{}, err
	}
	var notifies []func()
	defer func() {
		for _, n := range notifies {
			n()
		}
	}()
	defer r.mu.Unlock()
	ev, err := checkMemberPDU(r, origin, eventID, "join", raw)
	if err != nil {
		return JoinAnswer{}, err
	}
	var ans JoinAnswer
	var c struct {
		Via string `json:"join_authorised_via_users_server"`
	}
	if json.Unmarshal(ev.Content, &c) == nil && c.Via != "" && s.isLocal(c.Via) {
		signed, err := events.SignEvent(r.version, ev.JSON, s.p.ServerName, s.p.Key)
		if err != nil {
			return JoinAnswer{}, err
		}
		raw, ans.Event = signed, signed
	}
	before := r.state
	in := &inbound{s: s, r: r, origin: origin, notify: &notifies}
	if _, err := in.receive(ctx, raw, 0, true); err != nil {
		return JoinAnswer{}, err
	}
	if r.state[ev.Tuple()] == nil || r.state[ev.Tuple()].ID != ev.ID {
		return JoinAnswer{}, mxerr.Forbid("The join was not accepted")
	}
	seeds := []*events.Event{ev}
	for _, e := range before {
		ans.State = append(ans.State, e.JSON)
		seeds = append(seeds, e)
	}
	chain, err := in.authChain(ctx, seeds)
	if err != nil {
		return JoinAnswer{}, err
	}
	ans.AuthChain = chain
	return ans, nil
}

// SendLeave answers send_leave (v2).
func (s *Service) SendLeave(ctx context.Context, origin, roomID, eventID string, raw json.RawMessage) error {
	r, err := s.lockResident(ctx, roomID, origin)
	if err != nil {
		return err
	}
	var notifies []func()
	defer func() {
		for _, n := range notifies {
			n()
		}
	}()
	defer r.mu.Unlock()
	if _, err := checkMemberPDU(r, origin, eventID, "leave", raw); err != nil {
		return err
	}
	in := &inbound{s: s, r: r, origin: origin, notify: &notifies}
	_, err = in.receive(ctx, raw, 0, true)
	return err
}

// authChain is the auth events of seeds, transitively, as PDUs.
func (in *inbound) authChain(ctx context.Context, seeds []*events.Event) ([]json.RawMessage, error) {
	seen := map[string]bool{}
	var out []json.RawMessage
	queue := slices.Clone(seeds)
	for len(queue) > 0 {
		e := queue[0]
		queue = queue[1:]
		for _, id := range e.AuthEvents {
			if seen[id] {
				continue
			}
			seen[id] = true
			a, err := in.load(ctx, id)
			if err != nil {
				return nil, err
			}
			out = append(out, a.JSON)
			queue = append(queue, a)
		}
	}
	return out, nil
}

// ReceiveInvite answers /invite (v2) for a local user: the invite, signed
// by origin, is countersigned here and, when this server is not in the
// room, kept so the invitee's /sync shows it (with the invite_room_state
// origin sent, in the event's unsigned data).
func (s *Service) ReceiveInvite(ctx context.Context, origin, roomID, eventID string, v events.RoomVersion, raw json.RawMessage, stripped []json.RawMessage) (json.RawMessage, error) {
	if !v.Supported() {
		return nil, errIncompatible(v)
	}
	ev, err := pducheck.ParseEvent(v, raw)
	if err != nil {
		return nil, mxerr.BadJSONf("%v", err)
	}
	target := ev.StateKeyOrEmpty()
	switch {
	case ev.ID != eventID || ev.RoomID != roomID:
		return nil, mxerr.BadJSONf("The event is not %s of %s", eventID, roomID)
	case ev.Type != "m.room.member" || ev.Membership() != "invite":
		return nil, mxerr.BadJSONf("Not an invite")
	case events.ServerOf(ev.Sender) != origin:
		return nil, mxerr.Forbid("The inviter is not of the requesting server")
	case !s.isLocal(target):
		return nil, mxerr.BadJSONf("The invitee is not a user of this server")
	case s.p.UserExists != nil && !s.p.UserExists(ctx, target):
		return nil, mxerr.NotFoundf("Unknown user %s", target)
	}
	if s.remote != nil {
		if err := pducheck.CheckSignatures(ctx, ev, s.remote); err != nil {
			return nil, mxerr.Forbid("%v", err)
		}
	}
	if err := events.CheckContentHash(ev); err != nil {
		return nil, mxerr.Forbid("%v", err)
	}
	signed, err := events.SignEvent(v, ev.JSON, s.p.ServerName, s.p.Key)
	if err != nil {
		return nil, err
	}
	if len(stripped) > 50 {
		stripped = stripped[:50]
	}
	if err := s.keepInvite(ctx, v, roomID, ev, signed, stripped); err != nil {
		return nil, err
	}
	return signed, nil
}

// keepInvite stores an invite into a room this server is not in: the
// room is recorded (its version, the inviter as its creator until a join
// brings the real state) and the invite goes into its timeline.
func (s *Service) keepInvite(ctx context.Context, v events.RoomVersion, roomID string, ev *events.Event, signed []byte, stripped []json.RawMessage) error {
	if err := s.p.Store.CreateRoom(ctx, store.Room{RoomID: roomID, Version: string(v), Creator: ev.Sender, CreatedTS: ev.OriginServerTS}); err != nil {
		return err
	}
	r := s.entry(roomID)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.state == nil {
		_ = s.fill(ctx, r) // a room with no event yet does not fill
	}
	if r.state != nil && r.resident(s.p.ServerName) {
		return nil // the invite comes in a transaction too
	}
	if _, err := s.p.Store.Event(ctx, ev.ID); err == nil {
		return nil // a retry
	}
	row := eventRow(r, ev, nil)
	row.JSON = signed
	if len(stripped) > 0 {
		row.Unsigned, _ = json.Marshal(map[string]any{"invite_room_state": stripped})
	}
	return s.storeOutOfBand(ctx, r, row)
}

// storeOutOfBand stores a membership event of a room this server is not
// in (an invite received, an invite rejected through another server): in
// the timeline, with no extremities, and wakes the user.
func (s *Service) storeOutOfBand(ctx context.Context, r *room, row store.EventRow) error {
	batch := &store.EventBatch{Events: []store.EventRow{row}}
	pos, err := s.p.Store.PersistEvents(ctx, batch)
	r.state = nil
	r.derived.Store(nil)
	if err != nil {
		return err
	}
	r.dropReaders()
	if err := s.fill(ctx, r); err != nil {
		return err
	}
	if s.p.Notifier != nil {
		s.p.Notifier.NotifyRange(batch.Events[0].Pos, pos, r.id, []string{*row.StateKey})
	}
	return nil
}

// inviteRemote, during a send, has a remote invitee's server countersign
// the invite (/invite v2) before it is stored; ev is the last event of
// batch, built against r.
func (s *Service) inviteRemote(ctx context.Context, r *room, ev *events.Event, batch *store.EventBatch) error {
	target := ev.StateKeyOrEmpty()
	server := events.ServerOf(target)
	stripped := r.strippedState(ev.Sender)
	signed, err := s.remote.Invite(ctx, server, r.id, ev.ID, r.version, ev.JSON, stripped)
	if err != nil {
		return mxerr.Forbid("%s could not be invited: %v", target, err)
	}
	got, err := events.Parse(r.version, signed)
	if err != nil || got.ID != ev.ID {
		return mxerr.Forbid("%s answered the invite with another event", server)
	}
	var sigs struct {
		Signatures map[string]map[string]string `json:"signatures"`
	}
	_ = json.Unmarshal(signed, &sigs)
	ok := false
	for keyID := range sigs.Signatures[server] {
		pub, err := s.remote.VerifyKey(ctx, server, keyID, got.OriginServerTS)
		if err == nil && events.VerifyEvent(got, server, keyID, pub) == nil {
			ok = true
		}
	}
	if !ok {
		return mxerr.Forbid("%s did not sign the invite", server)
	}
	batch.Events[len(batch.Events)-1].JSON = got.JSON
	r.state[got.Tuple()] = got
	return nil
}

// strippedTypes are the state events an invitee sees (spec: stripped
// state).
var strippedTypes = map[string]bool{
	"m.room.create": true, "m.room.name": true, "m.room.avatar": true, "m.room.topic": true,
	"m.room.join_rules": true, "m.room.canonical_alias": true, "m.room.encryption": true,
}

// joinServers are the servers to ask to join a room this server is not
// in: those the client named, those the alias gave, the room ID's server,
// the server of whoever invited the user.
func (s *Service) joinServers(ctx context.Context, roomID, userID string, via []string) []string {
	var out []string
	add := func(srv string) {
		if srv != "" && srv != s.p.ServerName && !slices.Contains(out, srv) {
			out = append(out, srv)
		}
	}
	for _, v := range via {
		add(v)
	}
	if r, err := s.lockRoom(ctx, roomID); err == nil {
		if m := r.state[events.StateTuple{Type: "m.room.member", StateKey: userID}]; m != nil {
			add(events.ServerOf(m.Sender))
		}
		for _, srv := range r.derive().servers {
			add(srv)
		}
		r.mu.Unlock()
	}
	add(events.ServerOf(roomID))
	return out
}

// residentHere reports whether a local user is joined to the room (false
// for a room unknown here).
func (s *Service) residentHere(ctx context.Context, roomID string) bool {
	r, err := s.lockRoom(ctx, roomID)
	if err != nil {
		return false
	}
	defer r.mu.Unlock()
	return r.resident(s.p.ServerName)
}

// joinRemote joins a local user to a room through a resident server:
// make_join, the template filled in and signed, send_join, the state and
// auth chain checked and stored, the join into the timeline.
func (s *Service) joinRemote(ctx context.Context, roomID, userID string, servers []string, extra map[string]any) error {
	var lastErr error = errJoinRefused
	for _, srv := range servers {
		err := s.joinThrough(ctx, srv, roomID, userID, extra)
		if err == nil {
			return nil
		}
		s.log.Info("federation: join through server failed", "room", roomID, "server", srv, "err", err)
		lastErr = err
	}
	return lastErr
}

func supportedVersions() []string {
	var out []string
	for _, v := range events.SupportedVersions() {
		out = append(out, string(v))
	}
	return out
}

// fillTemplate completes a make_join/make_leave/make_knock template as
// userID's event, hashed and signed by this server.
func (s *Service) fillTemplate(v events.RoomVersion, tmpl json.RawMessage, roomID, userID, membership string, extra map[string]any) ([]byte, *events.Event, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(tmpl, &m); err != nil {
		return nil, nil, mxerr.BadJSONf("Malformed event template")
	}
	var head struct {
		Type     string  `json:"type"`
		Sender   string  `json:"sender"`
		StateKey *string `json:"state_key"`
		RoomID   string  `json:"room_id"`
		Content  map[string]any
	}
	_ = json.Unmarshal(tmpl, &head)
	if head.Type != "m.room.member" || head.Sender != userID || head.StateKey == nil || *head.StateKey != userID || head.RoomID != roomID {
		return nil, nil, mxerr.Forbid("The resident server offered another event")
	}
	var content map[string]any
	_ = json.Unmarshal(m["content"], &content)
	if content == nil {
		content = map[string]any{}
	}
	for k, val := range extra {
		content[k] = val
	}
	content["membership"] = membership
	m["content"] = mustJSON(content)
	m["origin_server_ts"] = mustJSON(s.p.Now().UnixMilli())
	m["origin"] = mustJSON(s.p.ServerName)
	delete(m, "hashes")
	delete(m, "signatures")
	delete(m, "unsigned")
	delete(m, "event_id")
	b, err := json.Marshal(m)
	if err != nil {
		return nil, nil, err
	}
	signed, err := events.HashAndSignEvent(v, b, s.p.ServerName, s.p.Key)
	if err != nil {
		return nil, nil, err
	}
	ev, err := events.Parse(v, signed)
	if err != nil {
		return nil, nil, err
	}
	return signed, ev, nil
}

func (s *Service) joinThrough(ctx context.Context, srv, roomID, userID string, extra map[string]any) error {
	ver, tmpl, err := s.remote.MakeJoin(ctx, srv, roomID, userID, supportedVersions())
	if err != nil {
		return err
	}
	v := events.RoomVersion(ver)
	if !v.Supported() {
		return errIncompatible(v)
	}
	signed, ev, err := s.fillTemplate(v, tmpl, roomID, userID, "join", extra)
	if err != nil {
		return err
	}
	ans, err := s.remote.SendJoin(ctx, srv, roomID, ev.ID, signed)
	if err != nil {
		return err
	}
	if len(ans.Event) > 0 {
		if e, err := events.Parse(v, ans.Event); err == nil && e.ID == ev.ID {
			ev = e
		}
	}
	return s.importJoin(ctx, v, roomID, ev, ans)
}

// importJoin checks a send_join answer (every event a valid, signed event
// of the room, allowed by its own auth events; the join allowed by the
// state) and stores the room: the auth chain as outliers, the state into
// the timeline before the join, the join as the one forward extremity.
func (s *Service) importJoin(ctx context.Context, v events.RoomVersion, roomID string, join *events.Event, ans JoinAnswer) error {
	if len(ans.State)+len(ans.AuthChain) > 20000 {
		return mxerr.New(mxerr.TooLarge, "The room's state is too large")
	}
	byID := map[string]*events.Event{}
	parse := func(raws []json.RawMessage) []*events.Event {
		var out []*events.Event
		for _, raw := range raws {
			e, err := pducheck.ParseEvent(v, raw)
			if err != nil || e.RoomID != roomID {
				continue
			}
			if err := pducheck.CheckSignatures(ctx, e, s.remote); err != nil {
				s.log.Info("federation: join state event with a bad signature", "room", roomID, "event", e.ID, "err", err)
				continue
			}
			if e, _, err = pducheck.CheckHash(e); err != nil {
				continue
			}
			byID[e.ID] = e
			out = append(out, e)
		}
		return out
	}
	chain := parse(ans.AuthChain)
	stateEvs := parse(ans.State)
	st := authrules.StateMap{}
	for _, e := range stateEvs {
		if e.IsState() {
			st[e.Tuple()] = e
		}
	}
	create := st.Create()
	if create == nil {
		return mxerr.Forbid("The room's state has no create event")
	}
	// Each state event is allowed by its own auth events.
	for t, e := range st {
		var auth []*events.Event
		for _, id := range e.AuthEvents {
			if a := byID[id]; a != nil {
				auth = append(auth, a)
			}
		}
		if e.Type == "m.room.create" {
			continue
		}
		if err := pducheck.CheckAuthEvents(e, auth, func(string) bool { return false }, create); err != nil {
			s.log.Info("federation: join state event not allowed by its auth events", "room", roomID, "event", e.ID, "err", err)
			delete(st, t)
		}
	}
	if err := authrules.Allowed(join, st); err != nil {
		return mxerr.Forbid("The join is not allowed by the room's state: %v", err)
	}
	var rt struct {
		Type string `json:"type"`
	}
	_ = json.Unmarshal(create.Content, &rt)
	if err := s.p.Store.CreateRoom(ctx, store.Room{RoomID: roomID, Version: string(v), Creator: create.Sender, RoomType: rt.Type, CreatedTS: create.OriginServerTS}); err != nil {
		return err
	}
	r := s.entry(roomID)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.state == nil {
		_ = s.fill(ctx, r)
	}
	if r.state != nil && r.resident(s.p.ServerName) && r.membership(join.Sender) == "join" {
		return nil
	}
	batch := &store.EventBatch{ExtremitiesRoom: roomID, Extremities: []string{join.ID}}
	inState := map[string]bool{}
	ordered := make([]*events.Event, 0, len(st))
	for _, e := range st {
		inState[e.ID] = true
		ordered = append(ordered, e)
	}
	slices.SortFunc(ordered, oldestFirst)
	for _, e := range chain {
		if !inState[e.ID] {
			batch.Outliers = append(batch.Outliers, store.OutlierRow{EventID: e.ID, RoomID: roomID, Status: store.StatusOutlier, JSON: e.JSON})
		}
	}
	for _, e := range ordered {
		if _, err := s.p.Store.Event(ctx, e.ID); err == nil {
			continue
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		row := eventRow(r, e, nil)
		row.Past = true // the room's state, not history: before the timeline
		batch.Events = append(batch.Events, row)
	}
	batch.Events = append(batch.Events, eventRow(r, join, st[join.Tuple()]))
	pos, err := s.p.Store.PersistEvents(ctx, batch)
	r.state = nil
	r.derived.Store(nil)
	if err != nil {
		return err
	}
	r.dropReaders()
	if err := s.fill(ctx, r); err != nil {
		return err
	}
	if s.p.CallGrants != nil {
		s.grants.add(roomID)
	}
	if s.p.Notifier != nil {
		s.p.Notifier.NotifyRange(batch.Events[len(batch.Events)-1].Pos, pos, roomID, append(r.interested(), join.Sender))
	}
	return nil
}

// leaveRemote rejects an invite (or withdraws a knock) to a room this
// server is not in, through the server that invited: make_leave,
// send_leave; the leave is kept here whether or not that server answered.
func (s *Service) leaveRemote(ctx context.Context, roomID, userID, reason string, servers []string) error {
	var extra map[string]any
	if reason != "" {
		extra = map[string]any{"reason": reason}
	}
	for _, srv := range servers {
		ver, tmpl, err := s.remote.MakeLeave(ctx, srv, roomID, userID)
		if err != nil {
			s.log.Info("federation: make_leave failed", "room", roomID, "server", srv, "err", err)
			continue
		}
		v := events.RoomVersion(ver)
		if !v.Supported() {
			continue
		}
		signed, ev, err := s.fillTemplate(v, tmpl, roomID, userID, "leave", extra)
		if err != nil {
			continue
		}
		if err := s.remote.SendLeave(ctx, srv, roomID, ev.ID, signed); err != nil {
			s.log.Info("federation: send_leave failed", "room", roomID, "server", srv, "err", err)
			continue
		}
		r := s.entry(roomID)
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.state == nil {
			if err := s.fill(ctx, r); err != nil {
				return err
			}
		}
		return s.storeOutOfBand(ctx, r, eventRow(r, ev, r.state[ev.Tuple()]))
	}
	// No server of the room answered: the invite is declined here only
	// (the inviter's server still lists the user as invited).
	s.log.Info("federation: invite declined locally", "room", roomID, "user", userID)
	r := s.entry(roomID)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.state == nil {
		if err := s.fill(ctx, r); err != nil {
			return err
		}
	}
	c, err := memberContent(userID, "leave", reason, nil)
	if err != nil {
		return err
	}
	ev, err := s.pdu(r, userID, Event{Type: "m.room.member", StateKey: &userID, Content: c})
	if err != nil {
		return err
	}
	return s.storeOutOfBand(ctx, r, eventRow(r, ev, r.state[ev.Tuple()]))
}

// inviteRemoteUsers invites a new room's invitees of other servers, each
// through their server (/invite), once the room exists; one that cannot be
// invited is logged, the room stays.
func (s *Service) inviteRemoteUsers(ctx context.Context, roomID, creator string, req CreateRequest) {
	if s.remote == nil {
		return
	}
	for _, u := range req.Invite {
		if s.isLocal(u) {
			continue
		}
		c := map[string]any{}
		if req.IsDirect {
			c["is_direct"] = true
		}
		if _, err := s.member(ctx, roomID, creator, u, "invite", "", c); err != nil {
			s.log.Info("federation: invite of a new room failed", "room", roomID, "user", u, "err", err)
		}
	}
}
