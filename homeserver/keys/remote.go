package keys

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"sort"
	"sync"
	"time"

	"github.com/salonhq/salon/homeserver/events"
	"github.com/salonhq/salon/internal/mxerr"
)

// Remote reaches the users of other servers (the federation package
// implements it). Without one, other servers' users get a failure entry
// in /keys/query and /keys/claim and to-device messages to them are
// dropped.
type Remote interface {
	// QueryKeys asks server for its users' device and cross-signing keys.
	QueryKeys(ctx context.Context, server string, want map[string][]string) (*QueryResult, error)
	// ClaimKeys claims one-time keys of server's users' devices.
	ClaimKeys(ctx context.Context, server string, want map[string]map[string]string) (map[string]map[string]map[string]json.RawMessage, error)
	// SendToDevice queues to-device messages to server's users.
	SendToDevice(ctx context.Context, server, sender, evType, messageID string, messages map[string]map[string]json.RawMessage) error
}

// SetRemote installs the way to other servers. Call it before serving.
func (s *Service) SetRemote(r Remote) { s.remote = r }

// remoteTimeout bounds one server's answer to a query or claim (the
// Client-Server API's default timeout for /keys/query is 10 s).
const remoteTimeout = 10 * time.Second

// queryRemote fills res with the answers of other servers, asked in
// parallel; a server that fails is listed in failures.
func (s *Service) queryRemote(ctx context.Context, byServer map[string]map[string][]string, res *QueryResult) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	for server, want := range byServer {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(ctx, remoteTimeout)
			defer cancel()
			got, err := s.remote.QueryKeys(ctx, server, want)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				s.p.Logger.Info("remote key query failed", "server", server, "err", err)
				res.Failures[server] = map[string]any{"status": 503, "message": "Could not reach the server"}
				return
			}
			for u, devs := range got.DeviceKeys {
				if _, asked := want[u]; asked {
					res.DeviceKeys[u] = devs
				}
			}
			for u, k := range got.MasterKeys {
				res.MasterKeys[u] = k
			}
			for u, k := range got.SelfSigningKeys {
				res.SelfSigningKeys[u] = k
			}
		}()
	}
	wg.Wait()
}

// claimRemote claims keys of other servers' users, in parallel.
func (s *Service) claimRemote(ctx context.Context, byServer map[string]map[string]map[string]string, res *ClaimResult) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	for server, want := range byServer {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(ctx, remoteTimeout)
			defer cancel()
			got, err := s.remote.ClaimKeys(ctx, server, want)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				s.p.Logger.Info("remote key claim failed", "server", server, "err", err)
				res.Failures[server] = map[string]any{"status": 503, "message": "Could not reach the server"}
				return
			}
			for u, devs := range got {
				if _, asked := want[u]; asked {
					res.OneTimeKeys[u] = devs
				}
			}
		}()
	}
	wg.Wait()
}

// UserDevices is the answer of the Server-Server API's
// /user/devices/{userId}: a local user's devices with their keys.
type UserDevices struct {
	UserID         string          `json:"user_id"`
	StreamID       int64           `json:"stream_id"`
	Devices        []RemoteDevice  `json:"devices"`
	MasterKey      json.RawMessage `json:"master_key,omitempty"`
	SelfSigningKey json.RawMessage `json:"self_signing_key,omitempty"`
}

// RemoteDevice is one device in UserDevices.
type RemoteDevice struct {
	DeviceID    string          `json:"device_id"`
	Keys        json.RawMessage `json:"keys,omitempty"`
	DisplayName string          `json:"device_display_name,omitempty"`
}

// UserDevices lists a local user's devices for another server: every
// device (without its name), with its keys when it uploaded some, and the
// user's master and self-signing keys.
func (s *Service) UserDevices(ctx context.Context, userID string) (*UserDevices, error) {
	if !s.isLocal(userID) {
		return nil, mxerr.NotFoundf("Not a user of this server")
	}
	devs, err := s.p.Store.Devices(ctx, userID)
	if err != nil {
		return nil, err
	}
	q, err := s.Query(ctx, "", map[string][]string{userID: {}})
	if err != nil {
		return nil, err
	}
	out := &UserDevices{UserID: userID, StreamID: s.p.Store.CurrentPos(), Devices: []RemoteDevice{},
		MasterKey: q.MasterKeys[userID], SelfSigningKey: q.SelfSigningKeys[userID]}
	sort.Slice(devs, func(i, j int) bool { return devs[i].DeviceID < devs[j].DeviceID })
	for _, d := range devs {
		// No device names: they stay on this server (see Query).
		out.Devices = append(out.Devices, RemoteDevice{DeviceID: d.DeviceID, Keys: q.DeviceKeys[userID][d.DeviceID]})
	}
	return out, nil
}

// remoteTxnDevice is the device column under which inbound to-device
// message IDs are remembered: the sender is another server's user, so it
// never meets a local device's transaction IDs.
const remoteTxnDevice = "federation"

// DeliverRemote queues the to-device messages another server's user
// sent to local devices and wakes their /sync. messageID makes a
// retransmission harmless. Messages to users of other servers are
// ignored.
func (s *Service) DeliverRemote(ctx context.Context, sender, evType, messageID string, messages map[string]map[string]json.RawMessage) error {
	local := map[string]map[string]json.RawMessage{}
	for u, devs := range messages {
		if s.isLocal(u) {
			local[u] = devs
		}
	}
	if messageID == "" || len(messageID) > maxIDLength {
		return mxerr.InvalidParamf("Malformed message_id")
	}
	return s.deliver(ctx, sender, remoteTxnDevice, evType, messageID, local)
}

// forwardRemote queues, per server, the messages meant for other
// servers' users; failures are logged (the local half is delivered, and
// a retry of the request would be taken for a replay).
func (s *Service) forwardRemote(ctx context.Context, sender, senderDevice, evType, txnID string, messages map[string]map[string]json.RawMessage) {
	byServer := map[string]map[string]map[string]json.RawMessage{}
	for u, devs := range messages {
		if s.isLocal(u) {
			continue
		}
		srv := events.ServerOf(u)
		if byServer[srv] == nil {
			byServer[srv] = map[string]map[string]json.RawMessage{}
		}
		byServer[srv][u] = devs
	}
	if len(byServer) == 0 {
		return
	}
	if s.remote == nil {
		s.p.Logger.Info("to-device messages to other servers dropped: federation is off", "sender", sender)
		return
	}
	id := messageID(senderDevice, txnID)
	for srv, msgs := range byServer {
		if err := s.remote.SendToDevice(ctx, srv, sender, evType, id, msgs); err != nil {
			s.p.Logger.Warn("queueing to-device messages for another server", "server", srv, "sender", sender, "err", err)
		}
	}
}

// messageID is the message_id of an outbound m.direct_to_device: the same
// for the same sending device and transaction, random without one.
func messageID(device, txnID string) string {
	if txnID == "" {
		var b [16]byte
		_, _ = rand.Read(b[:])
		return hex.EncodeToString(b[:])
	}
	h := sha256.Sum256([]byte(device + "\x00" + txnID))
	return hex.EncodeToString(h[:16])
}

// RemoteDeviceListChanged records that another server's user changed
// their devices or cross-signing keys (m.device_list_update,
// m.signing_key_update): the local users sharing a room with them see
// them in device_lists.changed and query their keys again.
func (s *Service) RemoteDeviceListChanged(ctx context.Context, userID string) error {
	pos, err := s.p.Store.MarkDeviceListChanged(ctx, userID)
	if err != nil {
		return err
	}
	s.notifyDeviceChange(ctx, userID, pos)
	return nil
}
