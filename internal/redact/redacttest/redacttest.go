// Package redacttest renders a value every way it may leave the process
// (fmt verbs, JSON, YAML, slog's JSON and text handlers), for tests that
// check no secret in it is printed.
package redacttest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"testing"

	"gopkg.in/yaml.v3"
)

// Renderings is v printed with %v, %+v, %#v, %s and %q, marshalled as
// JSON and YAML, and logged as an attribute by slog's JSON and text
// handlers.
func Renderings(t testing.TB, v any) []string {
	t.Helper()
	var out []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q"} {
		out = append(out, fmt.Sprintf(verb, v))
	}
	j, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	y, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, string(j), string(y))
	for _, h := range []func(*bytes.Buffer) slog.Handler{
		func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
		func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
	} {
		var b bytes.Buffer
		slog.New(h(&b)).Info("value", "v", v)
		out = append(out, b.String())
	}
	return out
}
