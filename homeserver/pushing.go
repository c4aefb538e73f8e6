package homeserver

import (
	"github.com/salonhq/salon/homeserver/pushgateway"
	"github.com/salonhq/salon/homeserver/sync"
)

// pushingNotifier is the rooms service's Notifier: it wakes /sync and
// queues the same events for the push gateways.
type pushingNotifier struct {
	*sync.Notifier
	gateway *pushgateway.Sender // set once in New, before any send
}

func (n *pushingNotifier) NotifyRange(first, last int64, roomID string, userIDs []string) {
	n.Notifier.NotifyRange(first, last, roomID, userIDs)
	if n.gateway != nil {
		n.gateway.Wake(first, last, roomID)
	}
}
