package signaling

import (
	"context"
	"slices"

	"github.com/livekit/protocol/livekit"

	"github.com/salonhq/salon/sfu"
)

// RoomChanged applies a change of a Matrix room (its power levels, its
// teaching mode, someone leaving it) to the participants of its calls on
// the embedded SFU, without a rejoin: the sessions whose token named the
// Matrix room (MatrixRoomAttribute, which the JWT service sets), in any
// slot, and — for tokens without it — those in the LiveKit room of the
// room's LegacySlotID call. It asks RTCParams.Authority again what each
// participant's user (the name of the token they joined with) may do. A
// participant whose user is no longer joined is removed from the call
// (leave request, reason PARTICIPANT_REMOVED); one whose grant changed
// gets a ParticipantUpdate with its new permission, and loses the tracks
// it may no longer publish; the others get nothing. The next refresh
// token carries the new grant.
//
// Call it for every such change; it returns once the changes are applied.
// Without an Authority it does nothing.
func (r *RTC) RoomChanged(ctx context.Context, matrixRoomID string) {
	if r.p.Authority == nil {
		return
	}
	r.roomChanges.Add(1)
	sessions := r.p.SFU.ScopeSessions(matrixRoomID)
	for _, ss := range r.p.SFU.Sessions(LiveKitRoomAlias(matrixRoomID, LegacySlotID)) {
		if !slices.Contains(sessions, ss) {
			sessions = append(sessions, ss)
		}
	}
	// One answer per user: several devices of a user are in the call.
	decided := map[string]CallPermissions{}
	for _, ss := range sessions {
		user := ss.Subject()
		perms, ok := decided[user]
		if !ok {
			var err error
			perms, err = r.p.Authority.CallPermissions(ctx, user, matrixRoomID)
			if err != nil {
				// Keep the grant: a failing database must not empty
				// every call.
				r.log.Warn("live grant: cannot read the room's call permissions", "matrix_room", matrixRoomID, "user", user, "err", err)
				continue
			}
			decided[user] = perms
		}
		log := r.log.With("matrix_room", matrixRoomID, "room", ss.Room(), "identity", ss.Identity(), "user", user)
		if !perms.Joined {
			ss.Remove(livekit.DisconnectReason_PARTICIPANT_REMOVED)
			r.metrics.liveGrants.WithLabelValues("removed").Inc()
			log.Info("participant removed from the call: no longer in the room")
			continue
		}
		ss.SetAdmin(perms.Moderate)
		cur := ss.Permission()
		next := livePermission(cur, perms)
		if samePermission(cur, next) {
			continue
		}
		if ss.SetPermission(next) {
			r.metrics.liveGrants.WithLabelValues("changed").Inc()
			log.Info("participant's grant changed", "can_publish", next.CanPublish, "sources", next.CanPublishSources,
				"can_publish_data", next.CanPublishData)
		}
	}
}

// livePermission is cur with what the JWT service would grant for perms
// now (videoGrant); what the Matrix room does not decide (hidden,
// metadata updates) stays as the token set it.
func livePermission(cur sfu.Permission, perms CallPermissions) sfu.Permission {
	next := cur
	next.CanPublishSources = publishSources(perms)
	next.CanPublish = len(next.CanPublishSources) > 0
	next.CanSubscribe = true
	next.CanPublishData = perms.PublishData
	return next
}

// samePermission: the grants allow the same (sources compared as sets;
// with publishing off, sources do not matter).
func samePermission(a, b sfu.Permission) bool {
	if a.CanPublish != b.CanPublish || a.CanSubscribe != b.CanSubscribe || a.CanPublishData != b.CanPublishData ||
		a.CanUpdateMetadata != b.CanUpdateMetadata || a.Hidden != b.Hidden {
		return false
	}
	if !a.CanPublish {
		return true
	}
	if len(a.CanPublishSources) == 0 || len(b.CanPublishSources) == 0 {
		return len(a.CanPublishSources) == len(b.CanPublishSources)
	}
	for _, s := range a.CanPublishSources {
		if !slices.Contains(b.CanPublishSources, s) {
			return false
		}
	}
	for _, s := range b.CanPublishSources {
		if !slices.Contains(a.CanPublishSources, s) {
			return false
		}
	}
	return true
}
