// Package pushgateway sends notifications to users' HTTP push gateways
// (the Push Gateway API, POST /_matrix/push/v1/notify): after events are
// stored in a room, the joined members with http pushers whose push rules
// say notify get one request per pusher. It never blocks the send path:
// Wake only queues the work that Run does.
package pushgateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/salonhq/salon/homeserver/events"
	"github.com/salonhq/salon/homeserver/push"
	"github.com/salonhq/salon/homeserver/store"
)

// Rules evaluates push rules (the pushrules service).
type Rules interface {
	Evaluate(ctx context.Context, userID string, row store.EventRow) (notify, highlight bool, actions []push.Action, err error)
	Counts(ctx context.Context, userID, roomID string, pos int64) (notifications, highlights int, err error)
}

// Params are the sender's dependencies.
type Params struct {
	Store store.Store
	Rules Rules
	// Version returns a room's version, to read its events.
	Version func(ctx context.Context, roomID string) (events.RoomVersion, error)
	// AllowPrivate lets gateways be on loopback and private addresses
	// (a push gateway beside the server; tests). Off, such targets are
	// refused when dialling, whatever their name resolves to.
	AllowPrivate bool
	Logger       *slog.Logger
	// Timeout bounds one request (default 10s).
	Timeout time.Duration
}

type job struct {
	first, last int64
	roomID      string
}

// Sender is the push gateway client.
type Sender struct {
	p      Params
	log    *slog.Logger
	client *http.Client
	queue  chan job
}

// queueLen bounds the rooms waiting to be pushed; past it new work is
// dropped (and logged) rather than slowing sends.
const queueLen = 4096

// parallel bounds the requests in flight.
const parallel = 8

// New returns a Sender; Run does its work.
func New(p Params) *Sender {
	if p.Logger == nil {
		p.Logger = slog.New(slog.DiscardHandler)
	}
	if p.Timeout <= 0 {
		p.Timeout = 10 * time.Second
	}
	dialer := &net.Dialer{Timeout: p.Timeout}
	if !p.AllowPrivate {
		dialer.Control = refusePrivate
	}
	client := &http.Client{
		Timeout:   p.Timeout,
		Transport: &http.Transport{DialContext: dialer.DialContext, Proxy: nil, MaxIdleConnsPerHost: 4, IdleConnTimeout: time.Minute},
		// A gateway answers; it does not send us elsewhere.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return &Sender{p: p, log: p.Logger, client: client, queue: make(chan job, queueLen)}
}

// errPrivateTarget refuses a gateway on a loopback, private, link-local or
// unspecified address.
var errPrivateTarget = errors.New("push gateway address is not public")

func refusePrivate(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return err
	}
	ip = ip.Unmap()
	if ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsUnspecified() || ip.IsMulticast() || ip.IsInterfaceLocalMulticast() {
		return errPrivateTarget
	}
	return nil
}

// Wake queues the events at positions first..last of a room.
func (s *Sender) Wake(first, last int64, roomID string) {
	select {
	case s.queue <- job{first, last, roomID}:
	default:
		s.log.Warn("push queue full, notifications dropped", "room", roomID)
	}
}

// Run sends until ctx ends, then waits for the requests in flight.
func (s *Sender) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	slots := make(chan struct{}, parallel)
	for {
		select {
		case <-ctx.Done():
			return nil
		case j := <-s.queue:
			for _, n := range s.notifications(ctx, j) {
				select {
				case slots <- struct{}{}:
				case <-ctx.Done():
					return nil
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer func() { <-slots }()
					s.deliver(ctx, n)
				}()
			}
		}
	}
}

// outgoing is one request to one pusher's gateway.
type outgoing struct {
	pusher store.Pusher
	url    string
	body   []byte
}

// notifications builds the requests a job calls for.
func (s *Sender) notifications(ctx context.Context, j job) []outgoing {
	pushers, err := s.p.Store.RoomPushers(ctx, j.roomID, "http")
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("list room pushers", "room", j.roomID, "err", err)
		}
		return nil
	}
	rows, err := s.p.Store.RoomEvents(ctx, j.roomID, j.first-1, j.last+1, int(j.last-j.first+1), false)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("read events to push", "room", j.roomID, "err", err)
		}
		return nil
	}
	invited := s.invitedPushers(ctx, rows)
	if len(pushers) == 0 && len(invited) == 0 {
		return nil
	}
	v, err := s.p.Version(ctx, j.roomID)
	if err != nil {
		return nil
	}
	byUser := map[string][]store.Pusher{}
	var users []string
	for _, p := range pushers {
		if byUser[p.UserID] == nil {
			users = append(users, p.UserID)
		}
		byUser[p.UserID] = append(byUser[p.UserID], p)
	}
	var out []outgoing
	for _, row := range rows {
		ev, err := events.Parse(v, row.JSON)
		if err != nil {
			continue
		}
		targets := users
		if ps := invited[row.EventID]; len(ps) > 0 {
			// An invitee is told of their invite, and of nothing else.
			u := ps[0].UserID
			byUser[u] = ps
			targets = append(slices.Clip(users), u)
		}
		for _, u := range targets {
			notify, highlight, actions, err := s.p.Rules.Evaluate(ctx, u, row)
			if err != nil || !notify {
				continue
			}
			unread, _, _ := s.p.Rules.Counts(ctx, u, j.roomID, row.Pos)
			for _, p := range byUser[u] {
				body, url, err := notificationBody(p, row, ev, highlight, actions, unread)
				if err != nil {
					s.log.Warn("pusher data", "user", u, "app_id", p.AppID, "err", err)
					continue
				}
				out = append(out, outgoing{pusher: p, url: url, body: body})
			}
		}
	}
	return out
}

// invitedPushers returns, by invite event ID, the http pushers of the
// users the events invite.
func (s *Sender) invitedPushers(ctx context.Context, rows []store.EventRow) map[string][]store.Pusher {
	out := map[string][]store.Pusher{}
	for _, row := range rows {
		if row.Type != "m.room.member" || row.Membership != "invite" || row.StateKey == nil {
			continue
		}
		ps, err := s.p.Store.Pushers(ctx, *row.StateKey)
		if err != nil {
			continue
		}
		for _, p := range ps {
			if p.Kind == "http" {
				out[row.EventID] = append(out[row.EventID], p)
			}
		}
	}
	return out
}

// notificationBody is the request of the Push Gateway API for one pusher,
// and the URL to send it to. The event_id_only format sends no content.
func notificationBody(p store.Pusher, row store.EventRow, ev *events.Event, highlight bool, actions []push.Action, unread int) ([]byte, string, error) {
	var data map[string]any
	if err := json.Unmarshal(p.Data, &data); err != nil {
		return nil, "", err
	}
	url, _ := data["url"].(string)
	if url == "" {
		return nil, "", errors.New("no url")
	}
	delete(data, "url") // the gateway's own address is not for it
	tweaks := map[string]any{}
	for _, a := range actions {
		var t struct {
			SetTweak string          `json:"set_tweak"`
			Value    json.RawMessage `json:"value"`
		}
		if json.Unmarshal([]byte(a), &t) != nil || t.SetTweak == "" {
			continue
		}
		if len(t.Value) == 0 {
			tweaks[t.SetTweak] = true
		} else {
			tweaks[t.SetTweak] = t.Value
		}
	}
	n := map[string]any{
		"event_id": row.EventID,
		"room_id":  row.RoomID,
		"counts":   map[string]int{"unread": unread},
		"devices": []map[string]any{{
			"app_id": p.AppID, "pushkey": p.PushKey, "pushkey_ts": p.CreatedTS / 1000, "data": data, "tweaks": tweaks,
		}},
	}
	if format, _ := data["format"].(string); format != "event_id_only" {
		prio := "low"
		if highlight || tweaks["sound"] != nil {
			prio = "high"
		}
		n["type"], n["sender"], n["prio"] = row.Type, row.Sender, prio
		if len(ev.Content) > 0 {
			n["content"] = json.RawMessage(ev.Content)
		}
		if row.StateKey != nil && row.Type == "m.room.member" {
			n["user_is_target"] = *row.StateKey == p.UserID
		}
	}
	b, err := json.Marshal(map[string]any{"notification": n})
	return b, url, err
}

// deliver posts one notification, trying again twice on a failure that
// may pass; a gateway that rejects the pushkey gets the pusher removed,
// as the Push Gateway API asks.
func (s *Sender) deliver(ctx context.Context, o outgoing) {
	backoff := time.Second
	for attempt := 1; ; attempt++ {
		rejected, err := s.post(ctx, o)
		if err == nil {
			for _, key := range rejected {
				if key != o.pusher.PushKey {
					continue
				}
				if err := s.p.Store.DeletePusher(ctx, o.pusher.UserID, o.pusher.AppID, key); err != nil {
					s.log.Warn("remove rejected pusher", "user", o.pusher.UserID, "err", err)
				} else {
					s.log.Info("push gateway rejected a pushkey, pusher removed", "user", o.pusher.UserID, "app_id", o.pusher.AppID)
				}
			}
			return
		}
		var perm permanent
		if errors.As(err, &perm) || errors.Is(err, errPrivateTarget) || attempt == 3 {
			s.log.Warn("push gateway", "user", o.pusher.UserID, "app_id", o.pusher.AppID, "err", err)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff *= 2
	}
}

// permanent is a gateway answer that another try will not change.
type permanent struct{ status int }

func (p permanent) Error() string { return fmt.Sprintf("push gateway answered %d", p.status) }

func (s *Sender) post(ctx context.Context, o outgoing) ([]string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, o.url, bytes.NewReader(o.body))
	if err != nil {
		return nil, permanent{0}
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	switch {
	case res.StatusCode >= 500 || res.StatusCode == http.StatusTooManyRequests:
		return nil, fmt.Errorf("push gateway answered %d", res.StatusCode)
	case res.StatusCode != http.StatusOK:
		return nil, permanent{res.StatusCode}
	}
	var answer struct {
		Rejected []string `json:"rejected"`
	}
	_ = json.NewDecoder(http.MaxBytesReader(nil, res.Body, 1<<16)).Decode(&answer)
	return answer.Rejected, nil
}
