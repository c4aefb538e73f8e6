package rooms

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"

	"github.com/salonhq/salon/homeserver/authrules"
	"github.com/salonhq/salon/homeserver/events"
	"github.com/salonhq/salon/homeserver/store"
	"github.com/salonhq/salon/internal/mxerr"
)

// CreateRequest is POST /createRoom's body.
type CreateRequest struct {
	Preset                    string            `json:"preset"`
	Visibility                string            `json:"visibility"`
	Name                      *string           `json:"name"`
	Topic                     *string           `json:"topic"`
	RoomAliasName             string            `json:"room_alias_name"`
	Invite                    []string          `json:"invite"`
	IsDirect                  bool              `json:"is_direct"`
	InitialState              []StateEvent      `json:"initial_state"`
	CreationContent           json.RawMessage   `json:"creation_content"`
	PowerLevelContentOverride json.RawMessage   `json:"power_level_content_override"`
	RoomVersion               string            `json:"room_version"`
	Invite3PID                []json.RawMessage `json:"invite_3pid"`
}

// StateEvent is an entry of initial_state.
type StateEvent struct {
	Type     string          `json:"type"`
	StateKey string          `json:"state_key"`
	Content  json.RawMessage `json:"content"`
}

// CallMemberEventType is MatrixRTC's call membership state event
// (MSC3401/MSC4143); members must be able to send it to join calls.
const CallMemberEventType = "org.matrix.msc3401.call.member"

// Profile looks up a user's display name and avatar for their member
// events.
type Profile func(ctx context.Context, userID string) (displayName, avatarURL string)

func strp(s string) *string { return &s }

func mustJSON(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}

// Create makes a room as the spec's createRoom describes, in four steps:
// validate the request (newRoomPlan, then the invitees), resolve the
// preset, compute the power levels (presetPowerLevels, the parent space's
// levels, then the override), and build the events (createEvents: create
// event, the creator's join, power levels, alias, join rules, history
// visibility, guest access, initial_state, name, topic, invites) — all
// stored atomically.
func (s *Service) Create(ctx context.Context, creator string, req CreateRequest, profile Profile) (roomID, alias string, err error) {
	plan, err := newRoomPlan(s.p.DefaultVersion, creator, req)
	if err != nil {
		return "", "", err
	}
	for _, u := range req.Invite {
		if err := s.checkInvitee(ctx, u); err != nil {
			return "", "", err
		}
		if s.remote != nil && !s.isLocal(u) {
			if plan.remoteInvites == nil {
				plan.remoteInvites = map[string]bool{}
			}
			plan.remoteInvites[u] = true
		}
	}
	pl := presetPowerLevels(plan, req.Invite)
	if s.p.InheritSpacePowerLevels {
		s.inheritSpacePowerLevels(ctx, creator, req.InitialState, plan.creators, pl)
	}
	if plan.powerLevels, err = overridePowerLevels(plan, pl, req.PowerLevelContentOverride); err != nil {
		return "", "", err
	}
	if plan.alias, err = s.newAlias(ctx, req.RoomAliasName); err != nil {
		return "", "", err
	}
	plan.encrypt = s.encryptByDefault(plan.preset, req, plan.roomType)
	seq, err := createEvents(ctx, creator, req, plan, profile)
	if err != nil {
		return "", "", err
	}
	return s.storeNewRoom(ctx, creator, req, plan, seq)
}

// roomPlan is what the steps of Create settle before any event is built.
type roomPlan struct {
	version events.RoomVersion
	// remoteInvites are invitees of other servers, invited through their
	// server once the room exists.
	remoteInvites map[string]bool
	privileged    bool // v12 creators (MSC4289)
	preset        string
	presetRules
	create   map[string]any // the create event's content
	roomType string
	creators []string // the creator and any additional creators
	// Set by the later steps.
	powerLevels json.RawMessage
	alias       string
	encrypt     bool
}

// presetRules are the join rule, history visibility and guest access a
// preset starts a room with.
type presetRules struct {
	joinRule, historyVisibility, guestAccess string
}

// maxCreateList bounds invite and initial_state.
const maxCreateList = 100

// newRoomPlan validates what the request says by itself (no lookups):
// third-party invites, the room version, the preset and visibility, the
// list sizes, and creation_content with its additional creators.
func newRoomPlan(defaultVersion events.RoomVersion, creator string, req CreateRequest) (*roomPlan, error) {
	if len(req.Invite3PID) > 0 {
		return nil, mxerr.New(mxerr.Unknown, "Third-party invites are not supported").WithStatus(400)
	}
	p := &roomPlan{version: defaultVersion}
	if req.RoomVersion != "" {
		p.version = events.RoomVersion(req.RoomVersion)
		if !p.version.Supported() {
			return nil, unsupportedVersion(req.RoomVersion)
		}
	}
	p.privileged = authrules.HasPrivilegedCreators(p.version)
	var err error
	if p.preset, p.presetRules, err = resolvePreset(req.Preset, req.Visibility); err != nil {
		return nil, err
	}
	if len(req.Invite) > maxCreateList || len(req.InitialState) > maxCreateList {
		return nil, mxerr.InvalidParamf("Too many invites or initial state events")
	}
	// creation_content: the client's keys, then ours.
	p.create = map[string]any{}
	if len(req.CreationContent) > 0 && string(req.CreationContent) != "null" {
		if err := json.Unmarshal(req.CreationContent, &p.create); err != nil {
			return nil, mxerr.BadJSONf("creation_content must be an object")
		}
	}
	if p.version.CreatorInContent() {
		p.create["creator"] = creator
	} else {
		delete(p.create, "creator")
	}
	p.create["room_version"] = string(p.version)
	p.roomType, _ = p.create["type"].(string)
	p.creators = []string{creator}
	if p.privileged {
		extra, err := additionalCreators(p.create, creator, p.preset, req.Invite)
		if err != nil {
			return nil, err
		}
		p.creators = append(p.creators, extra...)
	}
	return p, nil
}

// resolvePreset is the preset a room starts with (by default from its
// visibility) and its rules; it also checks the visibility.
func resolvePreset(preset, visibility string) (string, presetRules, error) {
	if preset == "" {
		if visibility == "public" {
			preset = "public_chat"
		} else {
			preset = "private_chat"
		}
	}
	var rules presetRules
	switch preset {
	case "public_chat":
		rules = presetRules{"public", "shared", "forbidden"}
	case "private_chat", "trusted_private_chat":
		rules = presetRules{"invite", "shared", "can_join"}
	default:
		return "", rules, mxerr.New(mxerr.BadJSON, "preset must be public_chat, private_chat or trusted_private_chat")
	}
	switch visibility {
	case "", "private", "public":
	default:
		return "", rules, mxerr.New(mxerr.BadJSON, "visibility must be public or private")
	}
	return preset, rules, nil
}

// presetPowerLevels is the power levels content before any override: the
// defaults, then the preset (trusted_private_chat raises the invitees).
// From v12 the creators have infinite power and are not listed (MSC4289).
func presetPowerLevels(p *roomPlan, invite []string) map[string]any {
	users := map[string]any{}
	if !p.privileged {
		users[p.creators[0]] = 100
	}
	if p.preset == "trusted_private_chat" {
		for _, u := range invite {
			if !slices.Contains(p.creators, u) {
				users[u] = 100
			}
		}
	}
	pl := map[string]any{
		"users": users, "users_default": 0,
		"events": map[string]any{
			"m.room.name": 50, "m.room.power_levels": 100, "m.room.history_visibility": 100,
			"m.room.canonical_alias": 50, "m.room.avatar": 50, "m.room.tombstone": 100,
			"m.room.server_acl": 100, "m.room.encryption": 100, "m.space.child": 50,
			"m.room.topic": 50, "m.room.pinned_events": 50, "m.reaction": 0, "m.room.redaction": 0,
			CallMemberEventType: 0, "org.matrix.msc3401.call": 50,
			"im.vector.modular.widgets": 50,
		},
		"events_default": 0, "state_default": 50,
		"ban": 50, "kick": 50, "redact": 50, "invite": 0,
		"notifications": map[string]any{"room": 50},
	}
	if p.roomType == "m.space" {
		pl["events_default"] = 100
	}
	if p.privileged {
		// MSC4289: by default only the creators may upgrade the room; a
		// creator can pass that on by raising someone to 150.
		pl["events"].(map[string]any)["m.room.tombstone"] = 150
	}
	return pl
}

// inheritSpacePowerLevels copies into pl the users (other than the
// creators) and the kick, ban and redact levels of the spaces the new room
// names as parents in initial_state (Params.InheritSpacePowerLevels); a
// space the creator is not in gives nothing.
func (s *Service) inheritSpacePowerLevels(ctx context.Context, creator string, initial []StateEvent, creators []string, pl map[string]any) {
	users := pl["users"].(map[string]any)
	for _, st := range initial {
		if st.Type != "m.space.parent" || !events.ValidRoomID(st.StateKey) {
			continue
		}
		inherited, err := s.SpacePowerLevels(ctx, st.StateKey, creator)
		if err != nil {
			continue // not a space the creator is in: nothing to inherit
		}
		for u, l := range inherited["users"].(map[string]any) {
			if !slices.Contains(creators, u) {
				users[u] = l
			}
		}
		for _, k := range []string{"kick", "ban", "redact"} {
			if v, ok := inherited[k]; ok {
				pl[k] = v
			}
		}
	}
}

// overridePowerLevels applies power_level_content_override over pl (its
// top-level keys replace pl's) and checks the result: valid for the room
// version, and from v12 listing no creator.
func overridePowerLevels(p *roomPlan, pl map[string]any, override json.RawMessage) (json.RawMessage, error) {
	if len(override) > 0 && string(override) != "null" {
		var over map[string]any
		if err := json.Unmarshal(override, &over); err != nil {
			return nil, mxerr.BadJSONf("power_level_content_override must be an object")
		}
		for k, val := range over {
			pl[k] = val
		}
	}
	plJSON := mustJSON(pl)
	if err := authrules.ValidatePowerLevels(p.version, plJSON); err != nil {
		return nil, mxerr.BadJSONf("Invalid power levels: %v", err)
	}
	if p.privileged {
		if listed, _ := pl["users"].(map[string]any); listed != nil {
			for _, c := range p.creators {
				if _, ok := listed[c]; ok {
					return nil, mxerr.BadJSONf("Power levels may not list the room creator %s: creators of a version %s room have infinite power", c, p.version)
				}
			}
		}
	}
	return plJSON, nil
}

// newAlias checks room_alias_name and that the alias is free ("" when
// none was asked for).
func (s *Service) newAlias(ctx context.Context, name string) (string, error) {
	if name == "" {
		return "", nil
	}
	alias := "#" + name + ":" + s.p.ServerName
	if strings.ContainsAny(name, ":#\x00 ") || !events.ValidRoomAlias(alias) {
		return "", mxerr.InvalidParamf("Invalid room_alias_name")
	}
	if _, _, err := s.p.Store.Alias(ctx, alias); err == nil {
		return "", mxerr.New(mxerr.RoomInUse, "Room alias already taken")
	} else if !errors.Is(err, store.ErrNotFound) {
		return "", err
	}
	return alias, nil
}

// createEvents is the new room's events in the spec's order, from the plan
// and the request; it refuses initial_state entries that may not be sent
// there. profile gives the members' display names and avatars.
func createEvents(ctx context.Context, creator string, req CreateRequest, p *roomPlan, profile Profile) ([]Event, error) {
	state := func(typ string, content any) Event {
		return Event{Type: typ, StateKey: strp(""), Content: mustJSON(content)}
	}
	member := func(userID string, c map[string]any) Event {
		if dn, av := profile(ctx, userID); dn != "" || av != "" {
			if dn != "" {
				c["displayname"] = dn
			}
			if av != "" {
				c["avatar_url"] = av
			}
		}
		return Event{Type: "m.room.member", StateKey: strp(userID), Content: mustJSON(c)}
	}
	seq := []Event{
		state("m.room.create", p.create),
		member(creator, map[string]any{"membership": "join"}),
		{Type: "m.room.power_levels", StateKey: strp(""), Content: p.powerLevels},
	}
	if p.alias != "" {
		seq = append(seq, state("m.room.canonical_alias", map[string]string{"alias": p.alias}))
	}
	seq = append(seq,
		state("m.room.join_rules", map[string]string{"join_rule": p.joinRule}),
		state("m.room.history_visibility", map[string]string{"history_visibility": p.historyVisibility}),
		state("m.room.guest_access", map[string]string{"guest_access": p.guestAccess}),
	)
	if p.encrypt {
		seq = append(seq, state("m.room.encryption", map[string]string{"algorithm": "m.megolm.v1.aes-sha2"}))
	}
	for _, st := range req.InitialState {
		if st.Type == "" || st.Type == "m.room.create" || st.Type == "m.room.member" {
			return nil, mxerr.BadJSONf("initial_state may not hold %q events", st.Type)
		}
		if len(st.Content) == 0 || st.Content[0] != '{' {
			return nil, mxerr.BadJSONf("initial_state content must be an object")
		}
		seq = append(seq, Event{Type: st.Type, StateKey: strp(st.StateKey), Content: st.Content})
	}
	if req.Name != nil && *req.Name != "" {
		seq = append(seq, state("m.room.name", map[string]string{"name": *req.Name}))
	}
	if req.Topic != nil && *req.Topic != "" {
		// The plain topic, and the same as an m.topic content block
		// (Matrix 1.15, MSC3765) for clients that read rich topics.
		seq = append(seq, state("m.room.topic", map[string]any{
			"topic":   *req.Topic,
			"m.topic": map[string]any{"m.text": []map[string]string{{"mimetype": "text/plain", "body": *req.Topic}}},
		}))
	}
	for _, u := range req.Invite {
		if p.remoteInvites[u] {
			continue // invited once the room exists (inviteRemoteUsers)
		}
		c := map[string]any{"membership": "invite"}
		if req.IsDirect {
			c["is_direct"] = true
		}
		seq = append(seq, member(u, c))
	}
	return seq, nil
}

// storeNewRoom builds and signs the events, stores them in one batch with
// the room, and publishes the alias.
func (s *Service) storeNewRoom(ctx context.Context, creator string, req CreateRequest, p *roomPlan, seq []Event) (roomID, alias string, err error) {
	// Up to v11 the room ID is chosen here; from v12 the create event
	// names the room, and build sets it.
	if !p.version.RoomIDFromCreateEvent() {
		roomID = s.newRoomID()
	}
	r := &room{id: roomID, version: p.version, state: authrules.StateMap{}}
	r.info = store.Room{RoomID: roomID, Version: string(p.version), Creator: creator, RoomType: p.roomType,
		CreatedTS: s.p.Now().UnixMilli(), Published: req.Visibility == "public"}
	batch := &store.EventBatch{NewRoom: &r.info}
	for _, e := range seq {
		if _, err := s.build(r, creator, e, batch); err != nil {
			return "", "", err
		}
	}
	roomID = r.id
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, err := s.commit(ctx, r, batch, req.Invite...); err != nil {
		return "", "", err
	}
	s.mu.Lock()
	s.rooms[roomID] = r
	s.mu.Unlock()
	if p.alias != "" {
		if err := s.p.Store.CreateAlias(ctx, p.alias, roomID, creator); err != nil {
			s.log.Warn("alias taken while the room was created", "alias", p.alias, "err", err)
		}
	}
	r.mu.Unlock()
	s.inviteRemoteUsers(ctx, roomID, creator, req)
	r.mu.Lock() // for the deferred Unlock
	return roomID, p.alias, nil
}

// encryptByDefault reports whether a new room starts encrypted (see
// Params.EncryptByDefault): never when the creator set m.room.encryption
// in initial_state themselves.
func (s *Service) encryptByDefault(preset string, req CreateRequest, roomType string) bool {
	for _, st := range req.InitialState {
		if st.Type == "m.room.encryption" && st.StateKey == "" {
			return false
		}
	}
	switch s.p.EncryptByDefault {
	case "all":
		return roomType != "m.space"
	case "private":
		return roomType != "m.space" && (preset == "private_chat" || preset == "trusted_private_chat" || req.IsDirect)
	}
	return false
}

// unsupportedVersion is the M_UNSUPPORTED_ROOM_VERSION answer, naming the
// versions Salon hosts.
func unsupportedVersion(v string) error {
	var names []string
	for _, sv := range events.SupportedVersions() {
		names = append(names, string(sv))
	}
	return mxerr.New(mxerr.UnsupportedRoomVer, "Room version %q is not supported (%s are)", v, strings.Join(names, ", "))
}

// additionalCreators settles content.additional_creators of a v12 create
// event (MSC4289): the list the client gave, checked, and with
// trusted_private_chat the invitees too, so that both sides of a direct
// chat are creators; without duplicates or the creator. It updates create.
func additionalCreators(create map[string]any, creator, preset string, invite []string) ([]string, error) {
	var extra []string
	if raw, ok := create["additional_creators"]; ok {
		list, err := authrules.ValidateAdditionalCreators(mustJSON(raw))
		if err != nil {
			return nil, mxerr.BadJSONf("creation_content.additional_creators must be an array of user IDs")
		}
		extra = list
	}
	if preset == "trusted_private_chat" {
		extra = append(extra, invite...)
	}
	var out []string
	for _, u := range extra {
		if u != creator && !slices.Contains(out, u) {
			out = append(out, u)
		}
	}
	if len(out) > 0 {
		create["additional_creators"] = out
	} else {
		delete(create, "additional_creators")
	}
	return out, nil
}
