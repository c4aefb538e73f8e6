package clientapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/salonhq/salon/homeserver/delayed"
	"github.com/salonhq/salon/homeserver/store"
	"github.com/salonhq/salon/internal/mxerr"
)

const (
	msc4140 = "/_matrix/client/unstable/org.matrix.msc4140"
	msc4143 = "/_matrix/client/unstable/org.matrix.msc4143"
	// delayParam is the query parameter that turns a send into a delayed
	// event (MSC4140).
	delayParam = "org.matrix.msc4140.delay"
)

// Delayed is what the delayed-event endpoints call.
type Delayed interface {
	Schedule(ctx context.Context, r delayed.Request) (string, error)
	Replayed(userID, deviceID, roomID, txnID string) (string, bool)
	Act(ctx context.Context, userID, delayID, action string) error
	ActByID(ctx context.Context, delayID, action string) error
	List(ctx context.Context, userID string, q delayed.Query) (delayed.Page, error)
	Get(ctx context.Context, userID, delayID string) (store.FinalisedDelayed, error)
}

// RTCDelegation takes a member's delayed leave over for the SFU (MSC4195);
// cmd/salon wires the embedded SFU's to it.
type RTCDelegation interface {
	DelegateDelayedLeave(ctx context.Context, userID, roomID, slotID, deviceID, memberID, delayID string) error
}

const msc4195 = "/_matrix/client/unstable/io.element.msc4195"

func (a *API) rtcRoutes() {
	a.handle(v3+"/user/{userId}/openid/request_token", methods{http.MethodPost: a.authed(a.openIDRequest)})
	a.handle("/_matrix/federation/v1/openid/userinfo", methods{http.MethodGet: a.openIDUserInfo})
	// MSC4143's transports, at its unstable path and at the stable one
	// clients that follow the spec ask first.
	a.handle(msc4143+"/rtc/transports", methods{http.MethodGet: a.authed(a.rtcTransports)})
	a.handle(v1+"/rtc/transports", methods{http.MethodGet: a.authed(a.rtcTransports)})
	if a.p.RTCDelegation != nil {
		a.handle(msc4195+"/rtc/livekit/delegate_delayed_leave", methods{http.MethodPost: a.authed(a.delegateDelayedLeave)})
	}
	if a.p.Delayed != nil {
		a.delayedRoutes()
	}
}

// delayedRoutes serves MSC4140. Its management endpoints
// (…/delayed_events/{delayId}/{action}) take no access token: the delay
// ID is the capability, so a service (the SFU's JWT service, MSC4195) can
// restart or send a client's delayed leave for it. The unstable paths
// answer as Synapse does and as matrix-js-sdk's MatrixRTC expects (an
// action on an event no longer scheduled that does not match how it was
// finalised is 404 M_NOT_FOUND, after which the client schedules a new
// one); the v1 paths follow the MSC's current text (409 M_UNKNOWN).
func (a *API) delayedRoutes() {
	a.handle(msc4140+"/delayed_events", methods{http.MethodGet: a.authed(a.listDelayed(false))})
	a.handle(v1+"/delayed_events", methods{http.MethodGet: a.authed(a.listDelayed(true))})
	// The older form with the action in the body.
	a.handle(msc4140+"/delayed_events/{delayId}", methods{
		http.MethodPost: a.actDelayedByID(false), http.MethodGet: a.authed(a.getDelayed),
	})
	a.handle(v1+"/delayed_events/{delayId}", methods{
		http.MethodPost: a.authed(a.actDelayed), http.MethodGet: a.authed(a.getDelayed),
	})
	a.handle(msc4140+"/delayed_events/{delayId}/{action}", methods{http.MethodPost: a.actDelayedByID(false)})
	a.handle(v1+"/delayed_events/{delayId}/{action}", methods{http.MethodPost: a.actDelayedByID(true)})
	// The scheduling endpoint of the MSC's current text, and its unstable path.
	a.handle(v3+"/rooms/{roomId}/delayed_event/{eventType}/{txnId}", methods{http.MethodPut: a.authed(a.putDelayedEvent)})
	a.handle(msc4140+"/rooms/{roomId}/delayed_event/{eventType}/{txnId}", methods{http.MethodPut: a.authed(a.putDelayedEvent)})
}

// Unauthenticated delayed-event actions are limited per delay ID (a
// client and its JWT service restart one every few seconds) and per
// address (someone probing delay IDs).
const (
	delayActPerID   = 2
	delayActIDBurst = 20
	delayActPerIP   = 100
	delayActIPBurst = 500
)

// delayOf reads ?org.matrix.msc4140.delay=MS; ok is false when absent.
func delayOf(r *http.Request) (ms int64, ok bool, err error) {
	v, present := r.URL.Query()[delayParam]
	if !present {
		return 0, false, nil
	}
	if len(v) != 1 {
		return 0, true, mxerr.InvalidParamf("%s given more than once", delayParam)
	}
	ms, perr := strconv.ParseInt(v[0], 10, 64)
	if perr != nil || ms <= 0 {
		return 0, true, mxerr.InvalidParamf("%s must be a positive integer number of milliseconds", delayParam)
	}
	return ms, true, nil
}

// scheduleDelayed turns a send or state request into a delayed event.
func (a *API) scheduleDelayed(w http.ResponseWriter, r *http.Request, dev store.Device, roomID, typ string, stateKey *string, content json.RawMessage, ms int64) error {
	if a.p.Delayed == nil {
		return mxerr.New(mxerr.Unrecognized, "Delayed events are not enabled")
	}
	id, err := a.p.Delayed.Schedule(r.Context(), delayed.Request{
		UserID: dev.UserID, DeviceID: dev.DeviceID, RoomID: roomID, Type: typ, StateKey: stateKey, Content: content, DelayMS: ms,
		TxnID: r.PathValue("txnId"),
	})
	if err != nil {
		return err
	}
	return reply(w, map[string]string{"delay_id": id})
}

func (a *API) actDelayed(w http.ResponseWriter, r *http.Request, dev store.Device) error {
	action, err := a.delayedAction(r)
	if err != nil {
		return err
	}
	if err := a.p.Delayed.Act(r.Context(), dev.UserID, r.PathValue("delayId"), action); err != nil {
		return err
	}
	return reply(w, empty)
}

// actDelayedByID acts for whoever holds the delay ID; conflicts says
// whether an action that conflicts with how the event was finalised is
// MSC4140's 409 (v1) or the unstable path's 404.
func (a *API) actDelayedByID(conflicts bool) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if ok, wait := a.delayIPLimit.Allow(a.clientIP(r)); !ok {
			return rateLimited(wait)
		}
		action, err := a.delayedAction(r)
		if err != nil {
			return err
		}
		id := r.PathValue("delayId")
		if ok, wait := a.delayIDLimit.Allow(id); !ok {
			return rateLimited(wait)
		}
		err = a.p.Delayed.ActByID(r.Context(), id, action)
		if !conflicts && errors.Is(err, delayed.ErrFinalised) {
			return mxerr.NotFoundf("Unknown delayed event")
		}
		if err != nil {
			return err
		}
		return reply(w, empty)
	}
}

// delayedAction reads the action from the path (…/{delayId}/{action}; an
// unknown one is an unknown endpoint, 404) or, on the older path, from
// the body.
func (a *API) delayedAction(r *http.Request) (string, error) {
	action := r.PathValue("action")
	if action == "" {
		var body struct {
			Action string `json:"action"`
		}
		if err := a.decode(r, &body, false); err != nil {
			return "", err
		}
		action = body.Action
	} else {
		switch action {
		case "restart", "cancel", "send":
		default:
			return "", mxerr.New(mxerr.Unrecognized, "Unrecognized request")
		}
		if err := a.decode(r, &struct{}{}, true); err != nil {
			return "", err
		}
	}
	switch action {
	case "restart", "cancel", "send":
		return action, nil
	case "":
		return "", missing("action")
	default:
		return "", mxerr.InvalidParamf("action must be restart, cancel or send")
	}
}

// delayedJSON is a delayed event as MSC4140's GET endpoints describe it.
func delayedJSON(d store.FinalisedDelayed) map[string]any {
	e := map[string]any{
		"delay_id": d.DelayID, "room_id": d.RoomID, "type": d.Type, "delay": d.DelayMS,
		"running_since": d.RunningSince, "content": json.RawMessage(d.Content),
	}
	if d.StateKey != nil {
		e["state_key"] = *d.StateKey
	}
	if d.Outcome != "" {
		e["origin_server_ts"] = d.FinalisedTS
		if d.EventID != "" {
			e["event_id"] = d.EventID
		}
		if len(d.Error) > 0 {
			e["error"] = json.RawMessage(d.Error)
		}
	}
	return e
}

// listDelayed: GET …/delayed_events. v1 answers as the MSC's current
// text (delayed_events in the asked order, next_batch or prev_batch);
// the unstable path reads the whole list from the start, as clients of
// the older text do, and also answers in that text's shape (scheduled,
// finalised with outcome and reason).
func (a *API) listDelayed(v1 bool) authedFunc {
	return func(w http.ResponseWriter, r *http.Request, dev store.Device) error {
		if ok, wait := a.delayIPLimit.Allow(a.clientIP(r)); !ok {
			return rateLimited(wait)
		}
		q, err := delayed.ParseQuery(func(k string) []string { return r.URL.Query()[k] }, time.Now().UnixMilli())
		if err != nil {
			return err
		}
		if !v1 {
			if r.URL.Query().Get("since_ts") == "" {
				q.SinceAll = true
			}
			q.Limit = 100
		}
		page, err := a.p.Delayed.List(r.Context(), dev.UserID, q)
		if err != nil {
			return err
		}
		events := make([]map[string]any, 0, len(page.Events))
		for _, d := range page.Events {
			events = append(events, delayedJSON(d))
		}
		body := map[string]any{"delayed_events": events}
		if page.Next != "" {
			body["next_batch"] = page.Next
		}
		if page.Prev != "" {
			body["prev_batch"] = page.Prev
		}
		if !v1 {
			scheduled, finalised := []any{}, []any{}
			for i, d := range page.Events {
				if d.Outcome == "" {
					scheduled = append(scheduled, events[i])
					continue
				}
				f := map[string]any{"delayed_event": events[i], "origin_server_ts": d.FinalisedTS}
				switch d.Outcome {
				case store.DelayedOutcomeError:
					f["outcome"], f["reason"] = store.DelayedOutcomeCancel, "error"
				default:
					f["outcome"], f["reason"] = d.Outcome, d.Reason
				}
				if d.EventID != "" {
					f["event_id"] = d.EventID
				}
				if len(d.Error) > 0 {
					f["error"] = json.RawMessage(d.Error)
				}
				finalised = append(finalised, f)
			}
			// delayed_events here has been the scheduled ones since
			// Salon first served this path; clients read it so.
			body["scheduled"], body["finalised"], body["delayed_events"] = scheduled, finalised, scheduled
		}
		return reply(w, body)
	}
}

// getDelayed: GET …/delayed_events/{delayId}, one of the user's delayed
// events, scheduled or finalised.
func (a *API) getDelayed(w http.ResponseWriter, r *http.Request, dev store.Device) error {
	d, err := a.p.Delayed.Get(r.Context(), dev.UserID, r.PathValue("delayId"))
	if err != nil {
		return err
	}
	return reply(w, delayedJSON(d))
}

// openIDTTL is how long an OpenID token is valid: long enough to fetch an
// SFU token, short enough to be useless if it leaks.
const openIDTTL = time.Hour

func (a *API) openIDRequest(w http.ResponseWriter, r *http.Request, dev store.Device) error {
	if r.PathValue("userId") != dev.UserID {
		return mxerr.Forbid("You can only request OpenID tokens for yourself")
	}
	if err := a.decode(r, &struct{}{}, true); err != nil {
		return err
	}
	tok, err := a.p.Auth.CreateOpenIDToken(r.Context(), dev.UserID, openIDTTL)
	if err != nil {
		return err
	}
	return reply(w, map[string]any{
		"access_token": string(tok), "token_type": "Bearer", "matrix_server_name": a.p.Config.ServerName,
		"expires_in": int64(openIDTTL.Seconds()),
	})
}

func (a *API) openIDUserInfo(w http.ResponseWriter, r *http.Request) error {
	tok := r.URL.Query().Get("access_token")
	if tok == "" {
		return mxerr.New(mxerr.MissingToken, "Missing access_token")
	}
	u, err := a.p.Auth.OpenIDUser(r.Context(), tok)
	if err != nil {
		return err
	}
	return reply(w, map[string]string{"sub": u})
}

func (a *API) rtcTransports(w http.ResponseWriter, r *http.Request, dev store.Device) error {
	return reply(w, map[string]any{"rtc_transports": a.foci()})
}

// foci are the MatrixRTC media foci this server advertises.
func (a *API) foci() []map[string]string {
	if a.p.Config.LiveKitServiceURL == "" {
		return []map[string]string{}
	}
	return []map[string]string{{"type": "livekit", "livekit_service_url": a.p.Config.LiveKitServiceURL}}
}

// delegateDelayedLeave hands the member's delayed leave to the SFU, which
// restarts it while the member is connected and sends it when the member
// goes (MSC4195, "Delegated MatrixRTC membership lifecycle tracking").
func (a *API) delegateDelayedLeave(w http.ResponseWriter, r *http.Request, dev store.Device) error {
	var body struct {
		RoomID string `json:"room_id"`
		SlotID string `json:"slot_id"`
		Member struct {
			ID              string `json:"id"`
			ClaimedUserID   string `json:"claimed_user_id"`
			ClaimedDeviceID string `json:"claimed_device_id"`
		} `json:"member"`
		DelayID string `json:"delay_id"`
	}
	if err := a.decode(r, &body, false); err != nil {
		return err
	}
	for _, f := range []struct{ name, v string }{
		{"room_id", body.RoomID}, {"slot_id", body.SlotID}, {"member.id", body.Member.ID}, {"delay_id", body.DelayID},
	} {
		if f.v == "" {
			return missing(f.name)
		}
	}
	if body.Member.ClaimedUserID != "" && body.Member.ClaimedUserID != dev.UserID {
		return mxerr.Forbid("member.claimed_user_id is not you")
	}
	device := body.Member.ClaimedDeviceID
	if device == "" {
		device = dev.DeviceID
	}
	if err := a.p.RTCDelegation.DelegateDelayedLeave(r.Context(), dev.UserID, body.RoomID, body.SlotID, device, body.Member.ID, body.DelayID); err != nil {
		return err
	}
	return reply(w, empty)
}

// putDelayedEvent is MSC4140's PUT /rooms/{roomId}/delayed_event/{type}/{txnId}
// with {"delay_ms", "state_key"?, "content"}: the same scheduling as the
// delay query parameter, with the transaction ID's replay, and a delay over
// the maximum refused with 403 M_FORBIDDEN as the MSC now says.
func (a *API) putDelayedEvent(w http.ResponseWriter, r *http.Request, dev store.Device) error {
	roomID, err := roomIDParam(r)
	if err != nil {
		return err
	}
	typ, txn := r.PathValue("eventType"), r.PathValue("txnId")
	if err := validEventType(typ); err != nil {
		return err
	}
	if txn == "" || len(txn) > 255 {
		return mxerr.InvalidParamf("Invalid transaction ID")
	}
	if id, ok := a.p.Delayed.Replayed(dev.UserID, dev.DeviceID, roomID, txn); ok {
		return reply(w, map[string]string{"delay_id": id})
	}
	// The MSC's current text names the delay "delay"; an earlier one
	// "delay_ms".
	var body struct {
		Delay    *int64          `json:"delay"`
		DelayMS  *int64          `json:"delay_ms"`
		StateKey *string         `json:"state_key"`
		Content  json.RawMessage `json:"content"`
	}
	if err := a.decode(r, &body, false); err != nil {
		return err
	}
	if body.Delay != nil {
		body.DelayMS = body.Delay
	}
	if body.DelayMS == nil {
		return missing("delay")
	}
	if len(body.Content) == 0 || body.Content[0] != '{' {
		return mxerr.New(mxerr.BadJSON, "content must be an object")
	}
	if *body.DelayMS <= 0 {
		return mxerr.InvalidParamf("delay must be a positive number of milliseconds")
	}
	if typ == "m.room.member" && body.StateKey != nil && *body.StateKey != dev.UserID {
		return mxerr.Forbid("Use /invite, /kick, /ban and /unban to change another user's membership")
	}
	if ok, wait := a.sendLimit.Allow(dev.UserID); !ok {
		return rateLimited(wait)
	}
	id, err := a.p.Delayed.Schedule(r.Context(), delayed.Request{
		UserID: dev.UserID, DeviceID: dev.DeviceID, RoomID: roomID, Type: typ, StateKey: body.StateKey,
		Content: body.Content, DelayMS: *body.DelayMS, TxnID: txn,
	})
	if err != nil {
		return err
	}
	return reply(w, map[string]string{"delay_id": id})
}
