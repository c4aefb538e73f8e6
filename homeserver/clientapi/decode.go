package clientapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/salonhq/salon/internal/mxerr"
)

// readBody reads a request body up to limit bytes; a larger body is
// M_TOO_LARGE.
func readBody(r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, mxerr.New(mxerr.TooLarge, "Request body is larger than %d bytes", limit)
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, mxerr.New(mxerr.NotJSON, "Could not read request body")
	}
	if int64(len(b)) > limit {
		return nil, mxerr.New(mxerr.TooLarge, "Request body is larger than %d bytes", limit)
	}
	if hasNULEscape(b) {
		return nil, mxerr.BadJSONf("Strings must not hold NUL characters (\\u0000)")
	}
	return b, nil
}

// hasNULEscape reports whether a JSON text holds the escape \u0000 (a NUL
// in a string). PostgreSQL refuses NUL in text, so a room name, display
// name or alias with one answered M_UNKNOWN 500 there (and was stored on
// SQLite); every JSON body the Client-Server API reads is refused with
// one instead, on both backends (found by TestHTTPFuzz).
func hasNULEscape(b []byte) bool {
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' || i+1 >= len(b) {
			continue
		}
		if b[i+1] == 'u' && i+6 <= len(b) && string(b[i+2:i+6]) == "0000" {
			return true
		}
		i++ // the escaped character: \\ is not the start of another escape
	}
	return false
}

// decodeJSON decodes body into v: a body that is not JSON at all is
// M_NOT_JSON, JSON of the wrong shape is M_BAD_JSON. An empty body decodes
// as {} when allowEmpty.
func decodeJSON(body []byte, v any, allowEmpty bool) error {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		if allowEmpty {
			body = []byte("{}")
		} else {
			return mxerr.New(mxerr.NotJSON, "Request body must be a JSON object")
		}
	}
	// JSON is UTF-8 (RFC 8259); Go's decoder would quietly turn bad bytes
	// into U+FFFD.
	if !json.Valid(body) || !utf8.Valid(body) {
		return mxerr.New(mxerr.NotJSON, "Request body is not valid JSON")
	}
	if body[0] != '{' {
		return mxerr.BadJSONf("Request body must be a JSON object")
	}
	if err := json.Unmarshal(body, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			field := te.Field
			if field == "" {
				field = "body"
			}
			return mxerr.BadJSONf("%s must be %s", field, jsonKind(te.Type.Kind().String()))
		}
		return mxerr.BadJSONf("Malformed request body")
	}
	return nil
}

func jsonKind(k string) string {
	switch {
	case strings.HasPrefix(k, "int"), strings.HasPrefix(k, "uint"), strings.HasPrefix(k, "float"):
		return "a number"
	case k == "string":
		return "a string"
	case k == "bool":
		return "a boolean"
	case k == "slice", k == "array":
		return "an array"
	}
	return "an object"
}

// decode reads and decodes a JSON request body (allowEmpty: an empty body
// is {}).
func (a *API) decode(r *http.Request, v any, allowEmpty bool) error {
	b, err := readBody(r, a.p.Config.MaxRequestBytes)
	if err != nil {
		return err
	}
	return decodeJSON(b, v, allowEmpty)
}

func missing(param string) error {
	return mxerr.New(mxerr.MissingParam, "Missing parameter %s", param)
}
