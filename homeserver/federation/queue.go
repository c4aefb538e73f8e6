package federation

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/salonhq/salon/homeserver/store"
)

// Queue sends EDUs and PDUs to other servers in transactions, one sender
// per destination. Items are stored before Enqueue returns, so they reach
// their destination after a restart or a kill -9; a transaction that got
// no answer is sent again with the same ID and items (the receiver
// answers a replay without acting twice). A failing destination is retried
// with exponential backoff (1 s doubling to 10 min), kept in the store.
type Queue struct {
	store   store.Federation
	client  *Client
	origin  string
	log     *slog.Logger
	m       *metrics
	now     func() time.Time
	wakeups chan string

	mu      sync.Mutex
	senders map[string]*senderState
}

// senderState is how a destination's running sender is woken: wake for
// new items, reach when the destination contacted this server (it is up:
// the backoff ends early).
type senderState struct {
	wake, reach chan struct{}
}

// Backoff bounds.
const (
	minBackoff = time.Second
	maxBackoff = 10 * time.Minute
)

func newQueue(st store.Federation, c *Client, origin string, log *slog.Logger, m *metrics, now func() time.Time) *Queue {
	return &Queue{store: st, client: c, origin: origin, log: log, m: m, now: now,
		wakeups: make(chan string, 256), senders: map[string]*senderState{}}
}

// EnqueueEDU stores an EDU for destination and wakes its sender.
func (q *Queue) EnqueueEDU(ctx context.Context, destination, eduType string, content any) error {
	body, err := json.Marshal(map[string]any{"edu_type": eduType, "content": content})
	if err != nil {
		return err
	}
	if err := q.store.EnqueueFederation(ctx, []store.OutboxItem{{
		Destination: destination, Kind: "edu", Body: body, CreatedTS: q.now().UnixMilli(),
	}}); err != nil {
		return err
	}
	q.m.queueDepth.WithLabelValues(destination).Inc()
	q.wake(destination)
	return nil
}

// EnqueuePDU stores a PDU for each destination and wakes their senders.
func (q *Queue) EnqueuePDU(ctx context.Context, destinations []string, pdu json.RawMessage) error {
	if len(destinations) == 0 {
		return nil
	}
	now := q.now().UnixMilli()
	items := make([]store.OutboxItem, 0, len(destinations))
	for _, d := range destinations {
		items = append(items, store.OutboxItem{Destination: d, Kind: "pdu", Body: pdu, CreatedTS: now})
	}
	if err := q.store.EnqueueFederation(ctx, items); err != nil {
		return err
	}
	for _, d := range destinations {
		q.m.queueDepth.WithLabelValues(d).Inc()
		q.wake(d)
	}
	return nil
}

func (q *Queue) wake(destination string) {
	q.mu.Lock()
	st, running := q.senders[destination]
	if running {
		// Under q.mu: a sender deciding to stop sees this wake-up or has
		// left the map already.
		select {
		case st.wake <- struct{}{}:
		default:
		}
		q.mu.Unlock()
		return
	}
	q.mu.Unlock()
	select {
	case q.wakeups <- destination:
	default:
		// Run picks every destination with items up at its next scan.
	}
}

// Reachable says destination just contacted this server: a sender
// waiting out a backoff for it tries again now.
func (q *Queue) Reachable(destination string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if st, ok := q.senders[destination]; ok {
		select {
		case st.reach <- struct{}{}:
		default:
		}
	}
}

// Run starts a sender for every destination with queued items (from
// before a restart too) and for each one woken later, until ctx ends.
func (q *Queue) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	start := func(dest string) {
		q.mu.Lock()
		defer q.mu.Unlock()
		if _, ok := q.senders[dest]; ok {
			return
		}
		st := &senderState{wake: make(chan struct{}, 1), reach: make(chan struct{}, 1)}
		q.senders[dest] = st
		wg.Add(1)
		go func() {
			defer wg.Done()
			q.sender(ctx, dest, st)
		}()
	}
	scan := func() {
		depths, err := q.store.FederationQueueDepths(ctx)
		if err != nil {
			if ctx.Err() == nil {
				q.log.Warn("federation queue: listing destinations", "err", err)
			}
			return
		}
		q.m.queueDepth.Reset()
		for dest, n := range depths {
			q.m.queueDepth.WithLabelValues(dest).Set(float64(n))
			start(dest)
		}
	}
	scan()
	t := time.NewTicker(30 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case dest := <-q.wakeups:
			start(dest)
		case <-t.C:
			scan()
		}
	}
}

// sender sends dest's transactions one at a time until its queue is
// empty, then exits.
func (q *Queue) sender(ctx context.Context, dest string, st *senderState) {
	log := q.log.With("destination", dest)
	defer func() {
		q.mu.Lock()
		if q.senders[dest] == st {
			delete(q.senders, dest)
		}
		q.mu.Unlock()
	}()
	for {
		retry, err := q.store.FederationRetry(ctx, dest)
		if err != nil {
			if ctx.Err() == nil {
				log.Warn("federation queue: reading backoff", "err", err)
			}
			if !sleep(ctx, minBackoff, nil) {
				return
			}
			continue
		}
		if wait := time.Duration(retry.RetryTS-q.now().UnixMilli()) * time.Millisecond; wait > 0 {
			if !sleep(ctx, wait, st.reach) {
				return
			}
		}
		txnID, items, err := q.store.NextFederationTxn(ctx, dest, newTxnID(q.now()), maxTxnPDUs, maxTxnEDUs)
		if err != nil {
			if ctx.Err() == nil {
				log.Warn("federation queue: reading queue", "err", err)
			}
			if !sleep(ctx, minBackoff, nil) {
				return
			}
			continue
		}
		if len(items) == 0 {
			q.m.queueDepth.DeleteLabelValues(dest)
			// Stop, unless a wake-up came after the read; under q.mu so
			// that a later one starts a new sender.
			q.mu.Lock()
			select {
			case <-st.wake:
				q.mu.Unlock()
				continue
			default:
			}
			delete(q.senders, dest)
			q.mu.Unlock()
			return
		}
		err = q.sendTxn(ctx, dest, txnID, items)
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, ErrDenied) {
			// The allow or deny list changed since these were queued:
			// they will never go.
			log.Info("federation queue: dropping a transaction for a server no longer allowed", "txn", txnID, "items", len(items))
			err = nil
		}
		if err != nil {
			retry.Failures++
			backoff := min(minBackoff<<min(retry.Failures-1, 20), maxBackoff)
			retry.RetryTS = q.now().Add(backoff).UnixMilli()
			log.Info("federation transaction failed; will retry", "txn", txnID, "failures", retry.Failures, "in", backoff, "err", err)
			if err := q.store.SetFederationRetry(ctx, retry); err != nil && ctx.Err() == nil {
				log.Warn("federation queue: storing backoff", "err", err)
			}
			continue
		}
		if retry.Failures > 0 {
			log.Info("destination reachable again", "after_failures", retry.Failures)
			if err := q.store.SetFederationRetry(ctx, store.DestinationRetry{Destination: dest}); err != nil && ctx.Err() == nil {
				log.Warn("federation queue: clearing backoff", "err", err)
			}
		}
		if err := q.store.DeleteFederationTxn(ctx, dest, txnID); err != nil && ctx.Err() == nil {
			log.Warn("federation queue: removing a sent transaction", "err", err)
		}
		q.m.queueDepth.WithLabelValues(dest).Sub(float64(len(items)))
	}
}

func (q *Queue) sendTxn(ctx context.Context, dest, txnID string, items []store.OutboxItem) error {
	txn := map[string]any{"origin": q.origin, "origin_server_ts": q.now().UnixMilli()}
	pdus, edus := []json.RawMessage{}, []json.RawMessage{}
	for _, it := range items {
		if it.Kind == "pdu" {
			pdus = append(pdus, it.Body)
		} else {
			edus = append(edus, it.Body)
		}
	}
	txn["pdus"], txn["edus"] = pdus, edus
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	var answer struct {
		PDUs map[string]struct {
			Error string `json:"error"`
		} `json:"pdus"`
	}
	err := q.client.Put(ctx, dest, "/_matrix/federation/v1/send/"+txnID, txn, &answer)
	result := "ok"
	if err != nil {
		result = "error"
		var re *RemoteError
		if errors.As(err, &re) {
			result = fmt.Sprintf("http_%d", re.Status)
		}
	}
	q.m.txnSeconds.WithLabelValues(result).Observe(time.Since(start).Seconds())
	q.m.txns.WithLabelValues("out", result).Inc()
	if err != nil {
		return err
	}
	for id, r := range answer.PDUs {
		if r.Error != "" {
			q.log.Info("destination refused a PDU", "destination", dest, "event", id, "error", r.Error)
		}
	}
	return nil
}

// sleep waits d or until ctx ends (false) or wake fires.
func sleep(ctx context.Context, d time.Duration, wake <-chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
	case <-wake:
	}
	return true
}

// newTxnID is unique across restarts: the time and random bits.
func newTxnID(now time.Time) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%d.%x", now.UnixMilli(), b)
}
