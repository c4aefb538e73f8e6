package federation

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/salonhq/salon/homeserver/events"
)

// XMatrix is one Authorization: X-Matrix header (Server-Server API,
// "Request Authentication").
type XMatrix struct {
	Origin      string
	Destination string // "" when the sender left it out (older servers)
	KeyID       string
	Sig         string
}

// String formats the header value.
func (x XMatrix) String() string {
	var b strings.Builder
	b.WriteString(`X-Matrix origin="` + x.Origin + `"`)
	if x.Destination != "" {
		b.WriteString(`,destination="` + x.Destination + `"`)
	}
	b.WriteString(`,key="` + x.KeyID + `",sig="` + x.Sig + `"`)
	return b.String()
}

var errBadHeader = errors.New("malformed X-Matrix authorization")

// ParseXMatrix reads an Authorization header value. Parameters may be
// quoted or not, in any order; unknown ones are ignored.
func ParseXMatrix(h string) (XMatrix, error) {
	rest, ok := cutPrefixFold(h, "X-Matrix ")
	if !ok {
		return XMatrix{}, errBadHeader
	}
	var x XMatrix
	for _, part := range splitParams(rest) {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return XMatrix{}, errBadHeader
		}
		if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
			v = strings.ReplaceAll(v[1:len(v)-1], `\"`, `"`)
		}
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "origin":
			x.Origin = v
		case "destination":
			x.Destination = v
		case "key":
			x.KeyID = v
		case "sig":
			x.Sig = v
		}
	}
	if x.Origin == "" || x.KeyID == "" || x.Sig == "" || !events.ValidServerName(x.Origin) {
		return XMatrix{}, errBadHeader
	}
	return x, nil
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) < len(prefix) || !strings.EqualFold(s[:len(prefix)], prefix) {
		return s, false
	}
	return s[len(prefix):], true
}

// splitParams splits on commas outside quotes.
func splitParams(s string) []string {
	var out []string
	start, quoted := 0, false
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			quoted = !quoted
		case ',':
			if !quoted {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}

// requestJSON is the object a request's signature covers: method, URI
// (path and query as sent), origin, destination and the JSON body if any.
func requestJSON(method, uri, origin, destination string, content []byte) ([]byte, error) {
	return json.Marshal(requestObject(method, uri, origin, destination, content))
}

func requestObject(method, uri, origin, destination string, content []byte) map[string]any {
	obj := map[string]any{"method": method, "uri": uri, "origin": origin, "destination": destination}
	if len(content) > 0 {
		obj["content"] = json.RawMessage(content)
	}
	return obj
}

// signedRequestJSON is requestJSON for a request received by destination,
// carrying the header's signature, as events.VerifyJSON checks it.
func (x XMatrix) signedRequestJSON(method, uri, destination string, content []byte) ([]byte, error) {
	obj := requestObject(method, uri, x.Origin, destination, content)
	obj["signatures"] = map[string]any{x.Origin: map[string]string{x.KeyID: x.Sig}}
	return json.Marshal(obj)
}

// SignRequest returns the X-Matrix header for a request from origin to
// destination signed with key.
func SignRequest(key events.SigningKey, method, uri, origin, destination string, content []byte) (XMatrix, error) {
	obj, err := requestJSON(method, uri, origin, destination, content)
	if err != nil {
		return XMatrix{}, err
	}
	signed, err := events.SignJSON(obj, origin, key)
	if err != nil {
		return XMatrix{}, err
	}
	var s struct {
		Signatures map[string]map[string]string `json:"signatures"`
	}
	if err := json.Unmarshal(signed, &s); err != nil {
		return XMatrix{}, err
	}
	sig := s.Signatures[origin][key.ID]
	if sig == "" {
		return XMatrix{}, fmt.Errorf("federation: signing request: no signature")
	}
	return XMatrix{Origin: origin, Destination: destination, KeyID: key.ID, Sig: sig}, nil
}
