package federation

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
)

// Outbound EDUs (Server-Server API, "Typing Notifications", "Receipts",
// "Device Management", "Presence"): what this server's users do goes,
// through the persistent queue, to every other server with a joined
// member in the room (typing, receipts) or sharing a room with the user
// (device lists, presence). A room's m.room.server_acl and the allow and
// deny lists leave servers out.

// Residents says which servers are where; homeserver implements it over
// rooms. Both lists leave this server out.
type Residents interface {
	// JoinedServers lists the servers with a joined member in the room.
	JoinedServers(ctx context.Context, roomID string) ([]string, error)
	// ServersSharing lists the servers with a joined member in a room the
	// user is joined to.
	ServersSharing(ctx context.Context, userID string) ([]string, error)
}

// deviceStreams remembers the last stream_id sent of each user's device
// list (prev_id of the next update). Kept in memory: after a restart the
// first update has no prev_id, and its receivers resynchronise.
type deviceStreams struct {
	mu   sync.Mutex
	last map[string]int64
}

// roomServers lists the servers a room's EDUs go to: those with joined
// members, less those the room's server ACL refuses.
func (s *Service) roomServers(ctx context.Context, roomID string) ([]string, error) {
	if !s.enabled || s.p.Residents == nil {
		return nil, nil
	}
	servers, err := s.p.Residents.JoinedServers(ctx, roomID)
	if err != nil || len(servers) == 0 {
		return nil, err
	}
	var acl ACL
	if s.p.Rooms != nil {
		content, err := s.p.Rooms.ServerACL(ctx, roomID)
		if err != nil {
			return nil, err
		}
		acl = ParseACL(content)
	}
	return slices.DeleteFunc(servers, func(d string) bool { return !acl.Allows(d) }), nil
}

// enqueueAll queues one EDU for each server, skipping this server and
// those the allow and deny lists refuse.
func (s *Service) enqueueAll(ctx context.Context, servers []string, eduType string, content any) error {
	var first error
	for _, d := range servers {
		if d == s.p.ServerName || !s.policy.Allowed(d) {
			continue
		}
		if err := s.queue.EnqueueEDU(ctx, d, eduType, content); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// SendTyping tells the room's other servers that a local user started or
// stopped typing.
func (s *Service) SendTyping(ctx context.Context, roomID, userID string, typing bool) error {
	servers, err := s.roomServers(ctx, roomID)
	if err != nil || len(servers) == 0 {
		return err
	}
	return s.enqueueAll(ctx, servers, "m.typing", map[string]any{"room_id": roomID, "user_id": userID, "typing": typing})
}

// SendReceipt tells the room's other servers of a local user's public
// read receipt (threadID "" for an unthreaded one).
func (s *Service) SendReceipt(ctx context.Context, roomID, userID, eventID, threadID string, ts int64) error {
	servers, err := s.roomServers(ctx, roomID)
	if err != nil || len(servers) == 0 {
		return err
	}
	data := map[string]any{"ts": ts}
	if threadID != "" {
		data["thread_id"] = threadID
	}
	content := map[string]any{roomID: map[string]any{"m.read": map[string]any{
		userID: map[string]any{"data": data, "event_ids": []string{eventID}}}}}
	return s.enqueueAll(ctx, servers, "m.receipt", content)
}

// DeviceListUpdate is one m.device_list_update to send.
type DeviceListUpdate struct {
	UserID   string
	DeviceID string
	StreamID int64
	Deleted  bool
	Keys     json.RawMessage // the device keys, nil when deleted
}

// SendDeviceListUpdate tells the servers sharing a room with the user of
// a change of one of their devices. stream_id is the change's position;
// prev_id the stream_id of the update sent before it.
func (s *Service) SendDeviceListUpdate(ctx context.Context, u DeviceListUpdate) error {
	if !s.enabled || s.p.Residents == nil {
		return nil
	}
	servers, err := s.p.Residents.ServersSharing(ctx, u.UserID)
	if err != nil || len(servers) == 0 {
		return err
	}
	s.streams.mu.Lock()
	if s.streams.last == nil {
		s.streams.last = map[string]int64{}
	}
	prev := []int64{}
	if last, ok := s.streams.last[u.UserID]; ok && last < u.StreamID {
		prev = append(prev, last)
	}
	if u.StreamID > s.streams.last[u.UserID] {
		s.streams.last[u.UserID] = u.StreamID
	}
	s.streams.mu.Unlock()
	content := map[string]any{"user_id": u.UserID, "device_id": u.DeviceID, "stream_id": u.StreamID,
		"prev_id": prev, "deleted": u.Deleted}
	if !u.Deleted && len(u.Keys) > 0 {
		content["keys"] = u.Keys
	}
	return s.enqueueAll(ctx, servers, "m.device_list_update", content)
}

// SendPresence tells the servers sharing a room with a local user of their
// presence (state online, unavailable or offline; statusMsg "" for none).
func (s *Service) SendPresence(ctx context.Context, userID, state, statusMsg string, lastActiveAgo int64, currentlyActive bool) error {
	if !s.enabled || s.p.Residents == nil {
		return nil
	}
	servers, err := s.p.Residents.ServersSharing(ctx, userID)
	if err != nil || len(servers) == 0 {
		return err
	}
	p := map[string]any{"user_id": userID, "presence": state, "last_active_ago": lastActiveAgo, "currently_active": currentlyActive}
	if statusMsg != "" {
		p["status_msg"] = statusMsg
	}
	return s.enqueueAll(ctx, servers, "m.presence", map[string]any{"push": []any{p}})
}
