package events

import (
	"strings"
	"testing"
)

// benchPDU is a typical received PDU (~1 KiB), indented and with keys out of
// order, so every step of canonicalisation does work.
const benchPDU = `{
  "type": "m.room.message",
  "sender": "@alice:example.org",
  "room_id": "!OGEhHVWSdvArJzumhm:matrix.org",
  "origin_server_ts": 1700000000000,
  "depth": 12345,
  "content": {
    "msgtype": "m.text",
    "format": "org.matrix.custom.html",
    "formatted_body": "<p>Hello <b>world</b> — ünïcödé and emoji 😀</p>",
    "body": "Hello **world** — ünïcödé and emoji 😀\nsecond line \"quoted\"",
    "m.mentions": {"user_ids": ["@bob:example.org", "@carol:example.net"]},
    "m.relates_to": {"m.in_reply_to": {"event_id": "$Rqnc-F-dvnEYJTyHq_iKxU2bZ1CI92-kuZq3a5lr5Zg"}}
  },
  "prev_events": ["$Rqnc-F-dvnEYJTyHq_iKxU2bZ1CI92-kuZq3a5lr5Zg"],
  "auth_events": [
    "$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    "$BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB",
    "$CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC"
  ],
  "hashes": {"sha256": "5jM4wQpv6lnBo7CLIghJuHdW+s2CMBJPUOGOC89ncos"},
  "signatures": {
    "example.org": {
      "ed25519:a_XyZw": "KxwGjPSDEtvnFgU00fwFz+l6d2pJM6XBIaMEn81SXPTRl16AqLAYqfIReFGZlHi5KLjAWbOoMszkwsQma+lYAg"
    }
  },
  "unsigned": {"age": 1234}
}`

func BenchmarkCanonicalJSON(b *testing.B) {
	canon, err := CanonicalJSON([]byte(benchPDU))
	if err != nil {
		b.Fatal(err)
	}
	large := []byte(`{"body":"` + strings.Repeat("lorem ipsum dolor sit amet ", 2000) + `","n":[` + strings.Repeat("1,", 2000) + `1]}`)
	for _, in := range []struct {
		name string
		b    []byte
	}{
		{"indented-unsorted-1KiB", []byte(benchPDU)},
		{"already-canonical-1KiB", canon},
		{"large-58KiB", large},
	} {
		b.Run(in.name, func(b *testing.B) {
			b.SetBytes(int64(len(in.b)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := CanonicalJSON(in.b); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkBuild(b *testing.B) {
	key := testKey(b)
	p := protoFor("m.room.message", nil, `{"msgtype":"m.text","body":"Hello world, a message of ordinary length."}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Build(p, RoomV11, "example.org", key); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParse(b *testing.B) {
	e, err := Build(protoFor("m.room.message", nil, `{"msgtype":"m.text","body":"Hello"}`), RoomV11, "example.org", testKey(b))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(RoomV11, e.JSON); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyEvent(b *testing.B) {
	key := testKey(b)
	e, err := Build(protoFor("m.room.message", nil, `{"msgtype":"m.text","body":"Hello"}`), RoomV11, "example.org", key)
	if err != nil {
		b.Fatal(err)
	}
	pub := key.Public()
	b.ReportAllocs()
	for b.Loop() {
		if err := VerifyEvent(e, "example.org", key.ID, pub); err != nil {
			b.Fatal(err)
		}
	}
}
