package ldap

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/salonhq/salon/homeserver/events"
	"github.com/salonhq/salon/homeserver/identity"
	"github.com/salonhq/salon/internal/redact"
)

// Config is the `ldap` section of salon.yaml. LDAP is off while URL is
// empty. A zero value of any other field means its default.
type Config struct {
	// URL is ldap://HOST[:389] or ldaps://HOST[:636].
	URL string `yaml:"url"`
	// StartTLS upgrades an ldap:// connection to TLS before binding.
	StartTLS bool `yaml:"start_tls"`
	// CAFile is a PEM bundle to verify the directory's certificate with
	// (default: the system's roots).
	CAFile string `yaml:"ca_file"`
	// BindDN and BindPassword are the service account that searches the
	// directory (empty: an anonymous search).
	BindDN       string        `yaml:"bind_dn"`
	BindPassword redact.Secret `yaml:"bind_password"`
	// BaseDN is where people are searched for.
	BaseDN string `yaml:"base_dn"`
	// UserFilter selects the entries that may sign in; an entry that does
	// not match (disabled, or gone) cannot. Default (objectClass=inetOrgPerson).
	UserFilter string `yaml:"user_filter"`
	// LoginAttribute is matched against the name typed at sign-in (uid).
	LoginAttribute string `yaml:"login_attribute"`
	// LocalpartAttribute makes the Matrix localpart at first sign-in (uid),
	// normalised as single sign-on does (identity.NormaliseLocalpart), so
	// a move from LDAP to SAML keeps people's Matrix IDs.
	LocalpartAttribute string `yaml:"localpart_attribute"`
	// DisplayNameAttribute (cn) and MailAttribute (mail) are kept in step
	// with the profile at each sign-in.
	DisplayNameAttribute string `yaml:"display_name_attribute"`
	MailAttribute        string `yaml:"mail_attribute"`
	// IDAttribute is the entry's stable ID the account is linked to:
	// entryUUID (default; survives renames and moves) or dn.
	IDAttribute string `yaml:"id_attribute"`
	// Timeout bounds each connection and operation (default 5s).
	Timeout time.Duration `yaml:"timeout"`
	// Missing says what happens to the account of an entry gone from the
	// directory or no longer matching user_filter: "refuse" (default: it
	// cannot sign in) or "deactivate" (also deactivated once it has been
	// missing for deactivate_after).
	Missing         string        `yaml:"missing"`
	DeactivateAfter time.Duration `yaml:"deactivate_after"`
	// Directory lets the user directory search find people who have never
	// signed in.
	Directory DirectoryConfig `yaml:"directory"`
	// Sync runs the group → room membership sync.
	Sync SyncConfig `yaml:"sync"`
	// Groups maps LDAP groups to rooms and spaces.
	Groups []GroupConfig `yaml:"groups"`
}

// DirectoryConfig exposes directory entries to the user directory search
// of signed-in users.
type DirectoryConfig struct {
	Enabled bool `yaml:"enabled"`
	// MaxResults bounds the entries one search returns (default 20).
	MaxResults int `yaml:"max_results"`
	// MinTermLength is the shortest search term sent to LDAP (default 2).
	MinTermLength int `yaml:"min_term_length"`
}

// SyncConfig tunes the group sync.
type SyncConfig struct {
	// Interval between full syncs (default 15m); each sign-in also syncs
	// the user who signed in.
	Interval time.Duration `yaml:"interval"`
	// Account is the localpart of the server-owned account that makes the
	// changes (default ldap-sync). Invite it to each room and give it the
	// power level to invite and kick.
	Account string `yaml:"account"`
	// ChangesPerSecond bounds membership events written (default 10).
	ChangesPerSecond float64 `yaml:"changes_per_second"`
	// PageSize is the paged-search page size (default 500).
	PageSize int `yaml:"page_size"`
}

// GroupConfig maps one group to rooms.
type GroupConfig struct {
	// DN names a group entry whose member_attribute lists its members; or
	// Filter selects the members themselves, e.g. (departmentNumber=42).
	DN     string `yaml:"dn"`
	Filter string `yaml:"filter"`
	// MemberAttribute holds the group's members: member (default) or
	// uniqueMember with DNs, memberUid with login names.
	MemberAttribute string `yaml:"member_attribute"`
	// Rooms are room IDs or aliases (rooms or spaces).
	Rooms []string `yaml:"rooms"`
	// Mode is invite (default) or join.
	Mode string `yaml:"mode"`
	// RemoveLeavers removes from the rooms those the sync added who have
	// left the group.
	RemoveLeavers bool `yaml:"remove_leavers"`
	// RemoveHandAdded also removes members the sync did not add and who
	// are not in the group. Off by default: hand-added members stay.
	RemoveHandAdded bool `yaml:"remove_hand_added"`
}

// Name is how the group appears in reasons and output.
func (g GroupConfig) Name() string {
	if g.DN != "" {
		return g.DN
	}
	return g.Filter
}

// Defaults is the built-in LDAP configuration (off).
func Defaults() Config {
	return Config{
		UserFilter:           "(objectClass=inetOrgPerson)",
		LoginAttribute:       "uid",
		LocalpartAttribute:   "uid",
		DisplayNameAttribute: "cn",
		MailAttribute:        "mail",
		IDAttribute:          "entryUUID",
		Timeout:              5 * time.Second,
		Missing:              "refuse",
		DeactivateAfter:      7 * 24 * time.Hour,
		Directory:            DirectoryConfig{MaxResults: 20, MinTermLength: 2},
		Sync:                 SyncConfig{Interval: 15 * time.Minute, Account: "ldap-sync", ChangesPerSecond: 10, PageSize: 500},
	}
}

// Enabled reports whether LDAP is configured.
func (c *Config) Enabled() bool { return c.URL != "" }

// fill gives zero fields (also of each group) their defaults.
func (c *Config) fill() {
	d := Defaults()
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&c.UserFilter, d.UserFilter)
	def(&c.LoginAttribute, d.LoginAttribute)
	def(&c.LocalpartAttribute, d.LocalpartAttribute)
	def(&c.DisplayNameAttribute, d.DisplayNameAttribute)
	def(&c.MailAttribute, d.MailAttribute)
	def(&c.IDAttribute, d.IDAttribute)
	def(&c.Missing, d.Missing)
	def(&c.Sync.Account, d.Sync.Account)
	if c.Timeout == 0 {
		c.Timeout = d.Timeout
	}
	if c.DeactivateAfter == 0 {
		c.DeactivateAfter = d.DeactivateAfter
	}
	if c.Directory.MaxResults == 0 {
		c.Directory.MaxResults = d.Directory.MaxResults
	}
	if c.Directory.MinTermLength == 0 {
		c.Directory.MinTermLength = d.Directory.MinTermLength
	}
	if c.Sync.Interval == 0 {
		c.Sync.Interval = d.Sync.Interval
	}
	if c.Sync.ChangesPerSecond == 0 {
		c.Sync.ChangesPerSecond = d.Sync.ChangesPerSecond
	}
	if c.Sync.PageSize == 0 {
		c.Sync.PageSize = d.Sync.PageSize
	}
	for i := range c.Groups {
		def(&c.Groups[i].MemberAttribute, "member")
		def(&c.Groups[i].Mode, "invite")
	}
}

// Validate fills defaults in and reports every problem, each naming its
// key.
func (c *Config) Validate() error {
	if !c.Enabled() {
		if len(c.Groups) > 0 || c.Directory.Enabled {
			return errors.New("ldap.url: must be set when ldap.groups or ldap.directory are")
		}
		return nil
	}
	c.fill()
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("ldap.%s: %s", key, fmt.Sprintf(format, args...)))
	}
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "ldap" && u.Scheme != "ldaps") || u.Host == "" {
		bad("url", "%q must be ldap://HOST[:PORT] or ldaps://HOST[:PORT]", c.URL)
	} else if c.StartTLS && u.Scheme == "ldaps" {
		bad("start_tls", "is for ldap:// URLs; ldaps:// is TLS already")
	}
	if c.BaseDN == "" {
		bad("base_dn", "must be set, such as ou=people,dc=example,dc=org")
	} else if _, err := goldap.ParseDN(c.BaseDN); err != nil {
		bad("base_dn", "%q is not a DN: %v", c.BaseDN, err)
	}
	if c.BindDN != "" {
		if _, err := goldap.ParseDN(c.BindDN); err != nil {
			bad("bind_dn", "%q is not a DN: %v", c.BindDN, err)
		}
	}
	if _, err := goldap.CompileFilter(c.UserFilter); err != nil {
		bad("user_filter", "%q is not an LDAP filter: %v", c.UserFilter, err)
	}
	if c.Timeout < 100*time.Millisecond || c.Timeout > time.Minute {
		bad("timeout", "%s must be between 100ms and 1m", c.Timeout)
	}
	switch c.Missing {
	case "refuse", "deactivate":
	default:
		bad("missing", "%q must be refuse or deactivate", c.Missing)
	}
	if c.DeactivateAfter < 0 {
		bad("deactivate_after", "must not be negative")
	}
	if c.Directory.MaxResults < 1 || c.Directory.MaxResults > 100 {
		bad("directory.max_results", "%d must be between 1 and 100", c.Directory.MaxResults)
	}
	if c.Directory.MinTermLength < 1 {
		bad("directory.min_term_length", "must be at least 1")
	}
	if c.Sync.Interval < time.Second {
		bad("sync.interval", "%s must be at least 1s", c.Sync.Interval)
	}
	if c.Sync.ChangesPerSecond < 0 {
		bad("sync.changes_per_second", "must not be negative")
	}
	if c.Sync.PageSize < 1 || c.Sync.PageSize > 10000 {
		bad("sync.page_size", "%d must be between 1 and 10000", c.Sync.PageSize)
	}
	if identity.NormaliseLocalpart(c.Sync.Account) != c.Sync.Account {
		bad("sync.account", "%q is not a valid localpart", c.Sync.Account)
	}
	for i, g := range c.Groups {
		key := fmt.Sprintf("groups[%d]", i)
		switch {
		case (g.DN == "") == (g.Filter == ""):
			bad(key, "needs exactly one of dn and filter")
		case g.DN != "":
			if _, err := goldap.ParseDN(g.DN); err != nil {
				bad(key+".dn", "%q is not a DN: %v", g.DN, err)
			}
		default:
			if _, err := goldap.CompileFilter(g.Filter); err != nil {
				bad(key+".filter", "%q is not an LDAP filter: %v", g.Filter, err)
			}
		}
		if g.Mode != "invite" && g.Mode != "join" {
			bad(key+".mode", "%q must be invite or join", g.Mode)
		}
		if len(g.Rooms) == 0 {
			bad(key+".rooms", "must list at least one room ID or alias")
		}
		for j, r := range g.Rooms {
			if !events.ValidRoomID(r) && !events.ValidRoomAlias(r) {
				bad(fmt.Sprintf("%s.rooms[%d]", key, j), "%q is not a room ID or alias", r)
			}
		}
	}
	return errors.Join(errs...)
}
