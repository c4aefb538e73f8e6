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

// Create makes a room as the spec's createRoom describes: create event,
// the creator's join, power levels (preset, then override), alias, join
// rules, history visibility, guest access, initial_state, name, topic,
// then invites — all stored atomically.
func (s *Service) Create(ctx context.Context, creator string, req CreateRequest, profile Profile) (roomID, alias string, err error) {
	if len(req.Invite3PID) > 0 {
		return "", "", mxerr.New(mxerr.Unknown, "Third-party invites are not supported").WithStatus(400)
	}
	v := s.p.DefaultVersion
	if req.RoomVersion != "" {
		v = events.RoomVersion(req.RoomVersion)
		if !v.Supported() {
			return "", "", unsupportedVersion(req.RoomVersion)
		}
	}
	privileged := authrules.HasPrivilegedCreators(v)
	preset := req.Preset
	if preset == "" {
		if req.Visibility == "public" {
			preset = "public_chat"
		} else {
			preset = "private_chat"
		}
	}
	var joinRule, histVis, guest string
	switch preset {
	case "public_chat":
		joinRule, histVis, guest = "public", "shared", "forbidden"
	case "private_chat", "trusted_private_chat":
		joinRule, histVis, guest = "invite", "shared", "can_join"
	default:
		return "", "", mxerr.New(mxerr.BadJSON, "preset must be public_chat, private_chat or trusted_private_chat")
	}
	switch req.Visibility {
	case "", "private", "public":
	default:
		return "", "", mxerr.New(mxerr.BadJSON, "visibility must be public or private")
	}
	for _, u := range req.Invite {
		if err := s.checkInvitee(ctx, u); err != nil {
			return "", "", err
		}
	}
	if len(req.Invite) > 100 || len(req.InitialState) > 100 {
		return "", "", mxerr.InvalidParamf("Too many invites or initial state events")
	}

	// creation_content: the client's keys, then ours.
	create := map[string]any{}
	if len(req.CreationContent) > 0 && string(req.CreationContent) != "null" {
		if err := json.Unmarshal(req.CreationContent, &create); err != nil {
			return "", "", mxerr.BadJSONf("creation_content must be an object")
		}
	}
	if v.CreatorInContent() {
		create["creator"] = creator
	} else {
		delete(create, "creator")
	}
	create["room_version"] = string(v)
	roomType, _ := create["type"].(string)
	creators := []string{creator}
	if privileged {
		extra, err := additionalCreators(create, creator, preset, req.Invite)
		if err != nil {
			return "", "", err
		}
		creators = append(creators, extra...)
	}

	// Power levels: defaults, then the preset, then the override. From
	// v12 the creators have infinite power and are not listed (MSC4289).
	users := map[string]any{}
	if !privileged {
		users[creator] = 100
	}
	if preset == "trusted_private_chat" {
		for _, u := range req.Invite {
			if !slices.Contains(creators, u) {
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
	if roomType == "m.space" {
		pl["events_default"] = 100
	}
	if privileged {
		// MSC4289: by default only the creators may upgrade the room; a
		// creator can pass that on by raising someone to 150.
		pl["events"].(map[string]any)["m.room.tombstone"] = 150
	}
	if s.p.InheritSpacePowerLevels {
		for _, st := range req.InitialState {
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
	if len(req.PowerLevelContentOverride) > 0 && string(req.PowerLevelContentOverride) != "null" {
		var over map[string]any
		if err := json.Unmarshal(req.PowerLevelContentOverride, &over); err != nil {
			return "", "", mxerr.BadJSONf("power_level_content_override must be an object")
		}
		for k, val := range over {
			pl[k] = val
		}
	}
	plJSON := mustJSON(pl)
	if err := authrules.ValidatePowerLevels(v, plJSON); err != nil {
		return "", "", mxerr.BadJSONf("Invalid power levels: %v", err)
	}
	if privileged {
		if listed, _ := pl["users"].(map[string]any); listed != nil {
			for _, c := range creators {
				if _, ok := listed[c]; ok {
					return "", "", mxerr.BadJSONf("Power levels may not list the room creator %s: creators of a version %s room have infinite power", c, v)
				}
			}
		}
	}

	if req.RoomAliasName != "" {
		alias = "#" + req.RoomAliasName + ":" + s.p.ServerName
		if strings.ContainsAny(req.RoomAliasName, ":#\x00 ") || !events.ValidRoomAlias(alias) {
			return "", "", mxerr.InvalidParamf("Invalid room_alias_name")
		}
		if _, _, err := s.p.Store.Alias(ctx, alias); err == nil {
			return "", "", mxerr.New(mxerr.RoomInUse, "Room alias already taken")
		} else if !errors.Is(err, store.ErrNotFound) {
			return "", "", err
		}
	}

	name, avatar := profile(ctx, creator)
	joinContent := map[string]any{"membership": "join"}
	if name != "" {
		joinContent["displayname"] = name
	}
	if avatar != "" {
		joinContent["avatar_url"] = avatar
	}

	seq := []Event{
		{Type: "m.room.create", StateKey: strp(""), Content: mustJSON(create)},
		{Type: "m.room.member", StateKey: strp(creator), Content: mustJSON(joinContent)},
		{Type: "m.room.power_levels", StateKey: strp(""), Content: plJSON},
	}
	if alias != "" {
		seq = append(seq, Event{Type: "m.room.canonical_alias", StateKey: strp(""), Content: mustJSON(map[string]string{"alias": alias})})
	}
	seq = append(seq,
		Event{Type: "m.room.join_rules", StateKey: strp(""), Content: mustJSON(map[string]string{"join_rule": joinRule})},
		Event{Type: "m.room.history_visibility", StateKey: strp(""), Content: mustJSON(map[string]string{"history_visibility": histVis})},
		Event{Type: "m.room.guest_access", StateKey: strp(""), Content: mustJSON(map[string]string{"guest_access": guest})},
	)
	if s.encryptByDefault(preset, req, roomType) {
		seq = append(seq, Event{Type: "m.room.encryption", StateKey: strp(""), Content: mustJSON(map[string]string{"algorithm": "m.megolm.v1.aes-sha2"})})
	}
	for _, st := range req.InitialState {
		if st.Type == "" || st.Type == "m.room.create" || st.Type == "m.room.member" {
			return "", "", mxerr.BadJSONf("initial_state may not hold %q events", st.Type)
		}
		if len(st.Content) == 0 || st.Content[0] != '{' {
			return "", "", mxerr.BadJSONf("initial_state content must be an object")
		}
		seq = append(seq, Event{Type: st.Type, StateKey: strp(st.StateKey), Content: st.Content})
	}
	if req.Name != nil && *req.Name != "" {
		seq = append(seq, Event{Type: "m.room.name", StateKey: strp(""), Content: mustJSON(map[string]string{"name": *req.Name})})
	}
	if req.Topic != nil && *req.Topic != "" {
		// The plain topic, and the same as an m.topic content block
		// (Matrix 1.15, MSC3765) for clients that read rich topics.
		seq = append(seq, Event{Type: "m.room.topic", StateKey: strp(""), Content: mustJSON(map[string]any{
			"topic":   *req.Topic,
			"m.topic": map[string]any{"m.text": []map[string]string{{"mimetype": "text/plain", "body": *req.Topic}}},
		})})
	}
	for _, u := range req.Invite {
		c := map[string]any{"membership": "invite"}
		if req.IsDirect {
			c["is_direct"] = true
		}
		if dn, av := profile(ctx, u); dn != "" || av != "" {
			if dn != "" {
				c["displayname"] = dn
			}
			if av != "" {
				c["avatar_url"] = av
			}
		}
		seq = append(seq, Event{Type: "m.room.member", StateKey: strp(u), Content: mustJSON(c)})
	}

	// Up to v11 the room ID is chosen here; from v12 the create event
	// names the room, and build sets it.
	if !v.RoomIDFromCreateEvent() {
		roomID = s.newRoomID()
	}
	r := &room{id: roomID, version: v, state: authrules.StateMap{}}
	r.info = store.Room{RoomID: roomID, Version: string(v), Creator: creator, RoomType: roomType,
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
	if alias != "" {
		if err := s.p.Store.CreateAlias(ctx, alias, roomID, creator); err != nil {
			s.log.Warn("alias taken while the room was created", "alias", alias, "err", err)
		}
	}
	return roomID, alias, nil
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
