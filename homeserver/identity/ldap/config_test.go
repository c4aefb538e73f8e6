package ldap

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	off := Defaults()
	if err := off.Validate(); err != nil {
		t.Fatalf("defaults (off): %v", err)
	}
	off.Groups = []GroupConfig{{DN: "cn=g", Rooms: []string{"#r:s"}}}
	if err := off.Validate(); err == nil || !strings.Contains(err.Error(), "ldap.url") {
		t.Fatalf("groups without a url: %v", err)
	}

	ok := Defaults()
	ok.URL, ok.BaseDN, ok.StartTLS = "ldap://ldap.example.org", "ou=people,dc=example,dc=org", true
	ok.Groups = []GroupConfig{{Filter: "(departmentNumber=1)", Rooms: []string{"#r:example.org", "!abc:example.org"}}}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid: %v", err)
	}
	if ok.Groups[0].Mode != "invite" || ok.Groups[0].MemberAttribute != "member" {
		t.Fatalf("group defaults not filled: %+v", ok.Groups[0])
	}

	bad := Defaults()
	bad.URL, bad.StartTLS = "ldaps://ldap.example.org", true
	bad.UserFilter = "(objectClass=person"
	bad.Missing = "shrug"
	bad.Timeout = time.Hour
	bad.Sync.Account = "LDAP Sync"
	bad.Groups = []GroupConfig{
		{DN: "cn=a", Filter: "(x=1)", Rooms: []string{"#r:s"}},
		{DN: "not a dn", Rooms: []string{"lobby"}, Mode: "drag"},
		{Filter: "(x=1)"},
	}
	err := bad.Validate()
	if err == nil {
		t.Fatal("invalid config accepted")
	}
	for _, key := range []string{"ldap.start_tls", "ldap.base_dn", "ldap.user_filter", "ldap.missing", "ldap.timeout", "ldap.sync.account",
		"ldap.groups[0]", "ldap.groups[1].dn", "ldap.groups[1].mode", "ldap.groups[1].rooms[0]", "ldap.groups[2].rooms"} {
		if !strings.Contains(err.Error(), key+":") {
			t.Errorf("validation does not name %s: %v", key, err)
		}
	}
}

func TestSecretRedacted(t *testing.T) {
	c := Defaults()
	c.BindPassword = "hunter2-service"
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("config", "password", c.BindPassword, "cfg", c)
	if s := buf.String() + fmt.Sprint(c.BindPassword) + fmt.Sprintf("%v", c); strings.Contains(s, "hunter2") {
		t.Fatalf("secret printed: %s", s)
	}
}
