package federation

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/salonhq/salon/homeserver/events"
	"github.com/salonhq/salon/homeserver/keys"
	"github.com/salonhq/salon/homeserver/store"
	"github.com/salonhq/salon/internal/mxerr"
)

// Transaction limits (Server-Server API, "Transactions").
const (
	maxTxnPDUs = 50
	maxTxnEDUs = 100
	// inboundTxnTTL is how long an answered transaction is remembered
	// for replays.
	inboundTxnTTL = 24 * time.Hour
)

// transaction is the body of PUT /send/{txnId}.
type transaction struct {
	Origin         string            `json:"origin"`
	OriginServerTS int64             `json:"origin_server_ts"`
	PDUs           []json.RawMessage `json:"pdus"`
	EDUs           []edu             `json:"edus"`
}

type edu struct {
	Type    string          `json:"edu_type"`
	Content json.RawMessage `json:"content"`
}

// pduNotAccepted is the per-PDU answer until rooms accept remote events.
const pduNotAccepted = "Salon does not accept PDUs over federation yet"

func (s *Service) originLock(origin string) *sync.Mutex {
	s.inboundMu.Lock()
	defer s.inboundMu.Unlock()
	if s.inbound == nil {
		s.inbound = map[string]*sync.Mutex{}
	}
	m, ok := s.inbound[origin]
	if !ok {
		m = &sync.Mutex{}
		s.inbound[origin] = m
	}
	return m
}

// send receives a transaction. A transaction seen before is answered as
// it was the first time, without doing anything again.
func (s *Service) send(w http.ResponseWriter, r *http.Request, origin string, body []byte) error {
	txnID := r.PathValue("txnId")
	if txnID == "" || len(txnID) > 255 {
		return mxerr.InvalidParamf("Invalid transaction ID")
	}
	var txn transaction
	if body == nil || json.Unmarshal(body, &txn) != nil {
		s.m.refused.WithLabelValues("bad_transaction").Inc()
		return mxerr.BadJSONf("Malformed transaction")
	}
	if txn.Origin != origin {
		s.m.refused.WithLabelValues("forged_origin").Inc()
		s.log.Info("transaction origin differs from its signer", "signed_by", origin, "origin", txn.Origin)
		return mxerr.Forbid("The transaction's origin is not the server that signed the request")
	}
	if len(txn.PDUs) > maxTxnPDUs || len(txn.EDUs) > maxTxnEDUs {
		s.m.refused.WithLabelValues("too_many_items").Inc()
		s.log.Info("transaction over the limits", "origin", origin, "pdus", len(txn.PDUs), "edus", len(txn.EDUs))
		return mxerr.BadJSONf("A transaction holds at most %d PDUs and %d EDUs", maxTxnPDUs, maxTxnEDUs)
	}
	lock := s.originLock(origin)
	lock.Lock()
	defer lock.Unlock()
	ctx := r.Context()
	if prev, err := s.p.Store.InboundTxn(ctx, origin, txnID); err == nil {
		s.m.txns.WithLabelValues("in", "replayed").Inc()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(prev)
		return nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	pdus := map[string]any{}
	for i, raw := range txn.PDUs {
		id, err := s.receivePDU(ctx, origin, raw)
		if id == "" {
			s.m.refused.WithLabelValues("bad_pdu").Inc()
			s.log.Info("malformed PDU in a transaction", "origin", origin, "index", i, "err", err)
			continue
		}
		if err != nil {
			s.m.refused.WithLabelValues("pdu_refused").Inc()
			pdus[id] = map[string]string{"error": pduError(err)}
			continue
		}
		pdus[id] = map[string]any{}
	}
	for _, e := range txn.EDUs {
		if err := s.receiveEDU(ctx, origin, e); err != nil {
			var me *mxerr.Error
			if !errors.As(err, &me) {
				return err
			}
			s.m.refused.WithLabelValues("bad_edu").Inc()
			s.log.Info("EDU refused", "origin", origin, "type", e.Type, "err", err)
		}
	}
	answer, err := json.Marshal(map[string]any{"pdus": pdus})
	if err != nil {
		return err
	}
	now := s.p.Now()
	if err := s.p.Store.PutInboundTxn(ctx, origin, txnID, answer, now.UnixMilli(), now.Add(-inboundTxnTTL).UnixMilli()); err != nil {
		return err
	}
	s.m.txns.WithLabelValues("in", "ok").Inc()
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(answer)
	return nil
}

// receivePDU hands one PDU to the PDUReceiver; without one it is not
// accepted. id is "" for a PDU that does not even parse.
func (s *Service) receivePDU(ctx context.Context, origin string, raw json.RawMessage) (string, error) {
	if s.p.PDUs == nil {
		id := pduEventID(raw)
		return id, errors.New(pduNotAccepted)
	}
	id, err := s.p.PDUs.ReceivePDU(ctx, origin, raw)
	if id == "" && err != nil {
		// Refused before the room (and so its version) was known: the
		// ID as versions 4 and later compute it.
		id = pduEventID(raw)
	}
	return id, err
}

// userOf refuses an EDU naming (as role: "sender", "user") a user who
// is not a user of origin.
func userOf(origin, userID, role string) error {
	if !events.ValidUserID(userID) || events.ServerOf(userID) != origin {
		return mxerr.Forbid("%s %q is not a user of %s", role, userID, origin)
	}
	return nil
}

// pduError is the text a PDU's error is answered with: a Matrix error's
// message; an internal error's is not disclosed.
func pduError(err error) string {
	var me *mxerr.Error
	if errors.As(err, &me) {
		return me.Message
	}
	if err.Error() == pduNotAccepted {
		return pduNotAccepted
	}
	return "Internal error"
}

// pduEventID is a PDU's event ID as room versions 4 and later compute it
// ("" when the PDU does not parse). The room's own version is known once
// rooms accept remote PDUs; the reference hash is the same from v4 on.
func pduEventID(raw json.RawMessage) string {
	e, err := events.Parse(events.DefaultRoomVersion, raw)
	if err != nil {
		return ""
	}
	return e.ID
}

// receiveEDU hands one EDU on; an *mxerr.Error refuses that EDU only.
func (s *Service) receiveEDU(ctx context.Context, origin string, e edu) error {
	switch e.Type {
	case "m.direct_to_device":
		var c struct {
			Sender    string                                `json:"sender"`
			Type      string                                `json:"type"`
			MessageID string                                `json:"message_id"`
			Messages  map[string]map[string]json.RawMessage `json:"messages"`
		}
		if err := json.Unmarshal(e.Content, &c); err != nil {
			return mxerr.BadJSONf("malformed m.direct_to_device")
		}
		if err := userOf(origin, c.Sender, "sender"); err != nil {
			return err
		}
		err := s.p.Keys.DeliverRemote(ctx, c.Sender, c.Type, c.MessageID, c.Messages)
		if keys.IsReplay(err) {
			return nil
		}
		return err
	case "m.typing":
		var c struct {
			RoomID string `json:"room_id"`
			UserID string `json:"user_id"`
			Typing bool   `json:"typing"`
		}
		if err := json.Unmarshal(e.Content, &c); err != nil || !events.ValidRoomID(c.RoomID) {
			return mxerr.BadJSONf("malformed m.typing")
		}
		if err := userOf(origin, c.UserID, "user"); err != nil {
			return err
		}
		if s.p.EDUs == nil {
			return nil
		}
		if err := s.roomACL(ctx, c.RoomID, origin); err != nil {
			return err
		}
		return s.p.EDUs.Typing(ctx, c.RoomID, c.UserID, c.Typing)
	case "m.receipt":
		var c map[string]map[string]map[string]struct {
			Data struct {
				TS       int64  `json:"ts"`
				ThreadID string `json:"thread_id"`
			} `json:"data"`
			EventIDs []string `json:"event_ids"`
		}
		if err := json.Unmarshal(e.Content, &c); err != nil {
			return mxerr.BadJSONf("malformed m.receipt")
		}
		for roomID, byType := range c {
			if err := s.roomACL(ctx, roomID, origin); err != nil {
				return err
			}
			for typ, byUser := range byType {
				for userID, rc := range byUser {
					if err := userOf(origin, userID, "user"); err != nil {
						return err
					}
					if s.p.EDUs == nil {
						continue
					}
					for _, ev := range rc.EventIDs {
						if err := s.p.EDUs.Receipt(ctx, roomID, userID, typ, ev, rc.Data.ThreadID, rc.Data.TS); err != nil {
							return err
						}
					}
				}
			}
		}
		return nil
	case "m.device_list_update":
		var c struct {
			UserID   string `json:"user_id"`
			DeviceID string `json:"device_id"`
			Deleted  bool   `json:"deleted"`
		}
		if err := json.Unmarshal(e.Content, &c); err != nil || c.DeviceID == "" {
			return mxerr.BadJSONf("malformed m.device_list_update")
		}
		if err := userOf(origin, c.UserID, "user"); err != nil {
			return err
		}
		if s.p.EDUs == nil {
			return nil
		}
		return s.p.EDUs.DeviceListUpdate(ctx, c.UserID, c.DeviceID, c.Deleted)
	case "m.signing_key_update":
		var c struct {
			UserID string `json:"user_id"`
		}
		if err := json.Unmarshal(e.Content, &c); err != nil {
			return mxerr.BadJSONf("malformed m.signing_key_update")
		}
		if err := userOf(origin, c.UserID, "user"); err != nil {
			return err
		}
		if s.p.EDUs == nil {
			return nil
		}
		// The keys themselves are asked for again (/user/keys/query).
		return s.p.EDUs.DeviceListUpdate(ctx, c.UserID, "", false)
	case "m.presence":
		var c struct {
			Push []struct {
				UserID        string `json:"user_id"`
				Presence      string `json:"presence"`
				StatusMsg     string `json:"status_msg"`
				LastActiveAgo int64  `json:"last_active_ago"`
			} `json:"push"`
		}
		if err := json.Unmarshal(e.Content, &c); err != nil {
			return mxerr.BadJSONf("malformed m.presence")
		}
		for _, p := range c.Push {
			if err := userOf(origin, p.UserID, "user"); err != nil {
				return err
			}
			if s.p.EDUs == nil {
				continue
			}
			if err := s.p.EDUs.Presence(ctx, p.UserID, p.Presence, p.StatusMsg, p.LastActiveAgo); err != nil {
				return err
			}
		}
		return nil
	default:
		return nil // unknown types are ignored
	}
}

// SendToDevice implements keys.Remote: it queues an m.direct_to_device
// EDU for server, carrying messages to its users.
func (s *Service) SendToDevice(ctx context.Context, server, sender, evType, messageID string, messages map[string]map[string]json.RawMessage) error {
	if !s.enabled {
		return ErrDisabled
	}
	if !s.policy.Allowed(server) || !events.ValidServerName(server) {
		return ErrDenied
	}
	content := map[string]any{"sender": sender, "type": evType, "message_id": messageID, "messages": messages}
	return s.queue.EnqueueEDU(ctx, server, "m.direct_to_device", content)
}

// QueuePDU queues a PDU (signed, as the room version sends it) for each
// destination. The caller chooses the destinations: servers with members
// in the room, as its history visibility and server ACL allow.
func (s *Service) QueuePDU(ctx context.Context, destinations []string, pdu json.RawMessage) error {
	if !s.enabled {
		return ErrDisabled
	}
	var to []string
	for _, d := range destinations {
		if d != s.p.ServerName && s.policy.Allowed(d) && events.ValidServerName(d) {
			to = append(to, d)
		}
	}
	return s.queue.EnqueuePDU(ctx, to, pdu)
}

// QueueEDU queues an EDU for destination (typing, receipts, device
// lists, once rooms are shared).
func (s *Service) QueueEDU(ctx context.Context, destination, eduType string, content any) error {
	if !s.enabled {
		return ErrDisabled
	}
	if !s.policy.Allowed(destination) || !events.ValidServerName(destination) {
		return ErrDenied
	}
	return s.queue.EnqueueEDU(ctx, destination, eduType, content)
}
