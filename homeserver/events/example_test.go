package events_test

import (
	"fmt"

	"github.com/salonhq/salon/homeserver/events"
)

func ExampleCanonicalJSON() {
	out, err := events.CanonicalJSON([]byte(`{"b": "2", "a": 1e3, "本": "\u65E5"}`))
	fmt.Println(string(out), err)
	// Output: {"a":1000,"b":"2","本":"日"} <nil>
}

func ExampleSignJSON() {
	// The key and expected signature of the spec's appendix test vectors.
	seed, _ := events.DecodeBase64("YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1")
	key, _ := events.SigningKeyFromSeed("ed25519:1", seed)
	signed, _ := events.SignJSON([]byte(`{"one": 1, "two": "Two"}`), "domain", key)
	fmt.Println(string(signed))
	fmt.Println(events.VerifyJSON(signed, "domain", "ed25519:1", key.Public()))
	// Output:
	// {"one":1,"signatures":{"domain":{"ed25519:1":"KqmLSbO39/Bzb0QIYE82zqLwsA+PDzYIpIRA2sRQ4sL53+sN6/fpNSoqE7BP7vBZhG6kYdD13EIMJpvhJI+6Bw"}},"two":"Two"}
	// <nil>
}

func ExampleBuild() {
	seed := make([]byte, 32)
	key, _ := events.SigningKeyFromSeed("ed25519:a", seed)
	stateKey := ""
	e, err := events.Build(events.Proto{
		RoomID:         "!room:example.org",
		Sender:         "@alice:example.org",
		Type:           "m.room.topic",
		StateKey:       &stateKey,
		Content:        []byte(`{"topic": "Salon"}`),
		OriginServerTS: 1700000000000,
		PrevEvents:     []string{},
		AuthEvents:     []string{},
		Depth:          1,
	}, events.RoomV11, "example.org", key)
	if err != nil {
		fmt.Println(err)
		return
	}
	redacted, _ := e.Redacted()
	fmt.Println(e.IsState(), string(e.Content), string(redacted.Content), redacted.ID == e.ID)
	// Output: true {"topic":"Salon"} {} true
}
