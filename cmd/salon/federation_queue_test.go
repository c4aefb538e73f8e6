package main

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/salonhq/salon/homeserver/mxtest"
)

// TestFederationQueueSurvivesKill9: a to-device message alice's server
// acknowledged while bob's server was down reaches bob's /sync after
// alice's server was killed (-9) and restarted, and bob's server came up
// only after that: the outbound queue is stored, and retried with
// backoff. Both backends.
func TestFederationQueueSurvivesKill9(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db string) {
		n := fedNodes(t, db, "a.test", "b.test")
		a, b := n[0], n[1]

		// Bob exists on B, which then goes down.
		sb := b.start(t)
		bob := mxtest.Register(t, sb.URL, "bob", "password bob")
		tok := syncKeys(t, bob, "", 0).NextBatch
		sb.Stop()

		// A runs as a real process.
		cert, key := a.ca.Issue(t, a.Name, a.Name)
		yaml := fmt.Sprintf("server_name: a.test\nfederation:\n  listen: %s\n  tls_cert: %s\n  tls_key: %s\n  ca_file: %s\n  resolve:\n    b.test: %s\n",
			a.FedAddr, cert, key, a.ca.File, b.FedAddr)
		pa := startProcessYAML(t, yaml, "--data-dir", a.DataDir, "--database", a.DB)
		alice := mxtest.Register(t, pa.url, "alice", "password alice")
		sendToDevice(alice, 200, "", "m.test", "q1", map[string]any{bob.UserID: map[string]any{bob.DeviceID: map[string]any{"seq": 7}}})
		sendToDevice(alice, 200, "", "m.test", "q2", map[string]any{bob.UserID: map[string]any{"*": map[string]any{"seq": 8}}})
		// Let at least one attempt fail against the closed port.
		time.Sleep(300 * time.Millisecond)
		if err := pa.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = pa.cmd.Wait()

		// A comes back, then B, late.
		startProcessYAML(t, yaml, "--data-dir", a.DataDir, "--database", a.DB)
		time.Sleep(500 * time.Millisecond)
		sb = b.start(t)
		bob.Base = sb.URL

		var got []float64
		waitFor(t, "the queued to-device messages on B", func() bool {
			s := syncKeys(t, bob, tok, 2*time.Second)
			tok = s.NextBatch
			for _, e := range s.ToDevice.Events {
				if e.Sender != alice.UserID {
					t.Fatalf("to-device from %s", e.Sender)
				}
				got = append(got, e.Content["seq"].(float64))
			}
			return len(got) >= 2
		})
		if len(got) != 2 || got[0] != 7 || got[1] != 8 {
			t.Fatalf("messages after kill -9 and restart: %v", got)
		}
	})
}
