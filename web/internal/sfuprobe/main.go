// Command sfuprobe looks at what Salon's SFU forwards, from outside it:
// it joins a call as a plain LiveKit-protocol subscriber (sfu/lktest, with
// a token from the MatrixRTC JWT service, and no media key of any member),
// records the RTP packets of every VP8 track the SFU sends it, rebuilds
// the VP8 frames and checks each one: is it a well-formed VP8 frame that a
// VP8 decoder decodes, or a frame in livekit-client's end-to-end encrypted
// format (the clear VP8 header, AES-GCM ciphertext, IV, trailer)? Given
// the members' media keys afterwards, it decrypts the recorded frames and
// decodes them, which shows the forwarded bytes were exactly that
// ciphertext and nothing readable. Browser scenario 18 runs it; it is a
// test tool, never part of the salon binary.
//
//	sfuprobe --url ws://127.0.0.1:8008/livekit/sfu --token JWT --seconds 8
//
// It prints one JSON line when the recording is over ({"recorded": …}),
// then reads one JSON line from stdin with the keys to try
// ({"keys":[{"index":0,"key":"base64"}]}, or {"keys":[]}), and prints the
// report ({"tracks":[…]}).
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/salonhq/salon/sfu/lktest"
)

type recorder struct {
	mu     sync.Mutex
	tracks map[string]*assembler
	stream map[string]string
}

func (r *recorder) onRTP(t *lktest.RemoteTrack, pkt []byte) {
	if !strings.EqualFold(t.Mime, "video/VP8") {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	a := r.tracks[t.SID]
	if a == nil {
		a = newAssembler()
		r.tracks[t.SID] = a
		r.stream[t.SID] = t.StreamID
	}
	a.add(pkt)
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "sfuprobe:", err)
		os.Exit(1)
	}
}

func run() error {
	url := flag.String("url", "", "the SFU's LiveKit URL (ws://…), as get_token returns it")
	token := flag.String("token", "", "a LiveKit access token for the call")
	seconds := flag.Float64("seconds", 8, "how long to record")
	flag.Parse()
	if *url == "" || *token == "" {
		return errors.New("--url and --token are required")
	}
	rec := &recorder{tracks: map[string]*assembler{}, stream: map[string]string{}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := lktest.Connect(ctx, *url, *token, lktest.Options{AutoSubscribe: true, OnRTP: rec.onRTP})
	if err != nil {
		return fmt.Errorf("joining the call: %w", err)
	}
	defer c.Close()
	time.Sleep(time.Duration(*seconds * float64(time.Second)))
	c.Leave()
	c.Close()

	rec.mu.Lock()
	defer rec.mu.Unlock()
	counts := map[string]int{}
	for sid, a := range rec.tracks {
		counts[sid] = a.packets
	}
	out := json.NewEncoder(os.Stdout)
	if err := out.Encode(map[string]any{"recorded": counts}); err != nil {
		return err
	}

	var in struct {
		Keys []MediaKey `json:"keys"`
	}
	line, err := bufio.NewReader(os.Stdin).ReadBytes('\n')
	if err != nil && len(line) == 0 {
		return fmt.Errorf("reading the keys: %w", err)
	}
	if err := json.Unmarshal(line, &in); err != nil {
		return fmt.Errorf("reading the keys: %w", err)
	}
	keys, err := prepareKeys(in.Keys)
	if err != nil {
		return err
	}
	type track struct {
		TrackReport
		StreamID string `json:"streamId"`
	}
	var report struct {
		Tracks []track `json:"tracks"`
	}
	for sid, a := range rec.tracks {
		report.Tracks = append(report.Tracks, track{analyse(sid, a, keys), rec.stream[sid]})
	}
	return out.Encode(report)
}
