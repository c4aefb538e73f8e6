package federation

import (
	"encoding/json"
	"testing"
)

func TestACL(t *testing.T) {
	for _, tc := range []struct {
		name    string
		content string
		server  string
		want    bool
	}{
		{"no event", ``, "evil.example", true},
		{"null", `null`, "evil.example", true},
		{"empty content refuses all", `{}`, "good.example", false},
		{"allow star", `{"allow":["*"]}`, "good.example", true},
		{"deny wins", `{"allow":["*"],"deny":["evil.example"]}`, "evil.example", false},
		{"deny glob subdomain", `{"allow":["*"],"deny":["*.evil.example"]}`, "a.evil.example", false},
		{"deny glob does not cover apex", `{"allow":["*"],"deny":["*.evil.example"]}`, "evil.example", true},
		{"question mark", `{"allow":["s?.example"]}`, "s1.example", true},
		{"question mark one char", `{"allow":["s?.example"]}`, "s12.example", false},
		{"not allowed", `{"allow":["good.example"]}`, "other.example", false},
		{"port ignored", `{"allow":["good.example"]}`, "good.example:8448", true},
		{"case-insensitive", `{"allow":["GOOD.example"]}`, "good.EXAMPLE", true},
		{"ip literal allowed by default", `{"allow":["*"]}`, "1.2.3.4", true},
		{"ip literal refused", `{"allow":["*"],"allow_ip_literals":false}`, "1.2.3.4:8448", false},
		{"ipv6 literal refused", `{"allow":["*"],"allow_ip_literals":false}`, "[::1]:8448", false},
		{"ipv6 literal allowed", `{"allow":["*"]}`, "[2001:db8::1]", true},
		{"numeric-looking host name", `{"allow":["*"],"allow_ip_literals":false}`, "1.2.3.example", true},
		{"allow_ip_literals not a bool is true", `{"allow":["*"],"allow_ip_literals":"no"}`, "1.2.3.4", true},
		{"allow not a list refuses all", `{"allow":"*"}`, "good.example", false},
		{"deny not a list ignored", `{"allow":["*"],"deny":"good.example"}`, "good.example", true},
		{"non-string entries ignored", `{"allow":[1,"good.example"]}`, "good.example", true},
		{"deny with star", `{"allow":["*"],"deny":["*"]}`, "good.example", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ACLAllows(json.RawMessage(tc.content), tc.server); got != tc.want {
				t.Fatalf("ACLAllows(%s, %s) = %v, want %v", tc.content, tc.server, got, tc.want)
			}
		})
	}
}
