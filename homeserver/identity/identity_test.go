package identity

import "testing"

func TestNormaliseLocalpart(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"alice", "alice"},
		{"Alice.Martin", "alice.martin"},
		{"  bob  ", "bob"},
		{"o'neil", "o=27neil"},
		{"Jürgen", "j=c3=bcrgen"},
		{"a=b", "a=3db"}, // '=' escaped too, so distinct names stay distinct
		{"x@uni.example", "x=40uni.example"},
		{"under_score", "under_score"},
		{"..", ""},
		{"", ""},
	} {
		if got := NormaliseLocalpart(tc.in); got != tc.want {
			t.Errorf("NormaliseLocalpart(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestOrigin(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"https://App.Example.org/path?q#f", "https://app.example.org", true},
		{"https://app.example.org:443/", "https://app.example.org", true},
		{"http://127.0.0.1:8008/#/login", "http://127.0.0.1:8008", true},
		{"http://[::1]:80/", "http://[::1]", true},
		{"javascript:alert(1)", "", false},
		{"//evil.example/", "", false},
		{"https://user@evil.example/", "", false},
		{"io.element.elementx://sso/callback", "io.element.elementx://sso", true},
		{"DATA:text/html,x", "", false},
		{"file:///etc/passwd", "", false},
		{"/relative", "", false},
	} {
		got, ok := Origin(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("Origin(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}
