package media

import (
	"os"
	"testing"

	"github.com/salonhq/salon/homeserver/store"
)

// TestBlobWriteFullDisk writes a blob to /dev/full, which answers every
// write ENOSPC as a full disk does: the failure is marked unavailable
// (503 with Retry-After), the caller's to answer.
func TestBlobWriteFullDisk(t *testing.T) {
	f, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Skipf("no /dev/full: %v", err)
	}
	w := &localWriter{f: f, name: "/dev/full"}
	defer f.Close()
	_, err = w.Write(make([]byte, 4096))
	if err == nil || !store.IsUnavailable(err) {
		t.Fatalf("write to a full device: %v, want it marked unavailable", err)
	}
}
