// Package ldaptest runs a real OpenLDAP slapd for tests: on a free
// loopback port, from a temporary directory, loaded with a fixture of
// people (one disabled) and groups. Changes go through ldapmodify, as an
// operator's would.
package ldaptest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/salonhq/salon/internal/testnet"
)

// Base is the fixture's suffix; People and Groups its two branches.
const (
	Base       = "dc=salon,dc=test"
	People     = "ou=people," + Base
	Groups     = "ou=groups," + Base
	AdminDN    = "cn=admin," + Base
	AdminPW    = "admin-secret"
	ServiceDN  = "cn=salon,ou=services," + Base
	ServicePW  = "service-secret"
	UserFilter = "(&(objectClass=inetOrgPerson)(!(employeeType=disabled)))"
)

// Server is a running slapd.
type Server struct {
	URL  string
	Port int
	// LDAPSURL and CAFile are set by StartTLS: an ldaps:// listener, and
	// the CA that signed the server's certificate (for 127.0.0.1).
	LDAPSURL string
	CAFile   string
	dir      string
	cmd      *exec.Cmd
	done     chan struct{}
}

// binary finds a program in PATH or Debian's sbin.
func binary(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, d := range []string{"/usr/sbin", "/usr/bin"} {
		if p := filepath.Join(d, name); fileExists(p) {
			return p
		}
	}
	return ""
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// unavailable fails the test under CI=true and skips it otherwise.
func unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...) + " (scripts/test-deps.sh installs slapd and ldap-utils)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// Start runs slapd with the fixture (plus extra LDIF) until the test ends.
func Start(t testing.TB, extra ...string) *Server {
	t.Helper()
	return start(t, false, extra)
}

// StartTLS is Start with TLS: StartTLS on URL, and an ldaps:// listener.
func StartTLS(t testing.TB, extra ...string) *Server {
	t.Helper()
	return start(t, true, extra)
}

func start(t testing.TB, withTLS bool, extra []string) *Server {
	t.Helper()
	slapd, slapadd := binary("slapd"), binary("slapadd")
	if slapd == "" || slapadd == "" || binary("ldapmodify") == "" {
		unavailable(t, "slapd, slapadd or ldapmodify not found")
	}
	dir, err := os.MkdirTemp("", "salon-slapd-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Mkdir(filepath.Join(dir, "db"), 0o700); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "slapd.conf")
	tlsConf := ""
	if withTLS {
		tlsConf = writeCerts(t, dir)
	}
	writeFile(t, conf, tlsConf+fmt.Sprintf(slapdConf, dir, dir, Base, AdminDN, AdminPW, filepath.Join(dir, "db")))
	ldif := filepath.Join(dir, "fixture.ldif")
	writeFile(t, ldif, Fixture+strings.Join(extra, "\n"))
	if out, err := exec.Command(slapadd, "-q", "-f", conf, "-l", ldif).CombinedOutput(); err != nil {
		unavailable(t, "slapadd: %v: %s", err, out)
	}
	for attempt := 0; ; attempt++ {
		s := &Server{dir: dir, done: make(chan struct{})}
		s.Port = freePort(t)
		s.URL = fmt.Sprintf("ldap://127.0.0.1:%d", s.Port)
		listen := s.URL + "/"
		if withTLS {
			s.LDAPSURL = fmt.Sprintf("ldaps://127.0.0.1:%d", freePort(t))
			s.CAFile = filepath.Join(dir, "ca.pem")
			listen += " " + s.LDAPSURL + "/"
		}
		var logs bytes.Buffer
		s.cmd = exec.Command(slapd, "-d", "0", "-h", listen, "-f", conf)
		s.cmd.Stdout, s.cmd.Stderr = &logs, &logs
		if err := s.cmd.Start(); err != nil {
			unavailable(t, "start slapd: %v", err)
		}
		go func() { _ = s.cmd.Wait(); close(s.done) }()
		if s.waitUp(20 * time.Second) {
			t.Cleanup(s.Stop)
			return s
		}
		s.Stop()
		if attempt == 2 {
			unavailable(t, "slapd did not start: %s", logs.String())
		}
	}
}

func (s *Server) waitUp(d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			return false
		default:
		}
		if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", s.Port), time.Second); err == nil {
			c.Close()
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

// Stop ends slapd (the directory is then unreachable) and waits for it.
func (s *Server) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// Modify applies LDIF change records with ldapmodify as the directory's
// administrator.
func (s *Server) Modify(t testing.TB, ldif string) {
	t.Helper()
	cmd := exec.Command(binary("ldapmodify"), "-x", "-H", s.URL, "-D", AdminDN, "-w", AdminPW)
	cmd.Stdin = strings.NewReader(ldif)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ldapmodify: %v: %s", err, out)
	}
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func freePort(t testing.TB) int {
	t.Helper()
	return testnet.Port(t)
}

const slapdConf = `include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/nis.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile %s/slapd.pid
argsfile %s/slapd.args
sizelimit size.soft=500 size.hard=500 size.prtotal=unlimited
database mdb
maxsize 268435456
suffix "%s"
rootdn "%s"
rootpw %s
directory %s
index objectClass eq
index uid,cn,mail eq,sub
index member,memberUid eq
index entryUUID eq
`

// Fixture is the directory the tests start with. Passwords are the
// login name followed by "-pw".
const Fixture = `dn: ` + Base + `
objectClass: dcObject
objectClass: organization
dc: salon
o: Salon test

dn: ou=people,` + Base + `
objectClass: organizationalUnit
ou: people

dn: ou=groups,` + Base + `
objectClass: organizationalUnit
ou: groups

dn: ou=services,` + Base + `
objectClass: organizationalUnit
ou: services

dn: ` + ServiceDN + `
objectClass: organizationalRole
objectClass: simpleSecurityObject
cn: salon
userPassword: ` + ServicePW + `

dn: uid=alice,` + People + `
objectClass: inetOrgPerson
uid: alice
cn: Alice Liddell
sn: Liddell
mail: alice@salon.test
userPassword: alice-pw

dn: uid=bob,` + People + `
objectClass: inetOrgPerson
uid: bob
cn: Bob Marley
sn: Marley
mail: bob@salon.test
userPassword: bob-pw

dn: uid=carol,` + People + `
objectClass: inetOrgPerson
uid: carol
cn: Carol Danvers
sn: Danvers
mail: carol@salon.test
userPassword: carol-pw

dn: uid=Dave.Grohl,` + People + `
objectClass: inetOrgPerson
uid: Dave.Grohl
cn: Dave Grohl
sn: Grohl
mail: dave@salon.test
userPassword: Dave.Grohl-pw

dn: uid=mallory,` + People + `
objectClass: inetOrgPerson
uid: mallory
cn: Mallory Disabled
sn: Disabled
employeeType: disabled
mail: mallory@salon.test
userPassword: mallory-pw

dn: cn=physics,` + Groups + `
objectClass: groupOfNames
cn: physics
member: uid=alice,` + People + `
member: uid=bob,` + People + `

dn: cn=chemistry,` + Groups + `
objectClass: posixGroup
cn: chemistry
gidNumber: 5001
memberUid: carol

`
