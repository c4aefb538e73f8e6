package main

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/salonhq/salon/internal/testnet"

	"github.com/salonhq/salon/homeserver/store/storetest"
)

// simpleSAMLphpWWW is where Debian's simplesamlphp package puts the web
// root.
const simpleSAMLphpWWW = "/usr/share/simplesamlphp/www"

// simpleSAMLphp is a real SAML identity provider — SimpleSAMLphp, served
// by PHP's built-in web server on loopback — configured in a temporary
// directory with one user, student1 (password student1pass).
type simpleSAMLphp struct {
	URL         string // http://127.0.0.1:PORT
	MetadataURL string
	dir         string
}

// writeKeyPair writes a self-signed RSA certificate and its key (PEM).
func writeKeyPair(t testing.TB, keyFile, certFile, cn string) []byte {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600); err != nil {
		t.Fatal(err)
	}
	return der
}

// startSimpleSAMLphp starts the IdP. Without PHP or SimpleSAMLphp the test
// skips (scripts/test-deps.sh installs them), and under CI=true fails.
func startSimpleSAMLphp(t *testing.T) *simpleSAMLphp {
	t.Helper()
	php, err := exec.LookPath("php")
	if _, serr := os.Stat(filepath.Join(simpleSAMLphpWWW, "saml2/idp/SSOService.php")); err != nil || serr != nil {
		if storetest.MustReachPostgres() { // CI=true: scripts/test-deps.sh installs it
			t.Fatalf("SimpleSAMLphp is not installed (php: %v, %s: %v); run scripts/test-deps.sh", err, simpleSAMLphpWWW, serr)
		}
		t.Skip("SimpleSAMLphp is not installed (apt-get install simplesamlphp)")
	}
	port := testnet.Port(t)
	s := &simpleSAMLphp{URL: "http://127.0.0.1:" + strconv.Itoa(port), dir: t.TempDir()}
	s.MetadataURL = s.URL + "/saml2/idp/metadata.php"
	for _, d := range []string{"config", "metadata", "cert", "tmp", "log", "sessions"} {
		if err := os.MkdirAll(filepath.Join(s.dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	writeKeyPair(t, filepath.Join(s.dir, "cert/idp.key"), filepath.Join(s.dir, "cert/idp.crt"), "SimpleSAMLphp test IdP")
	s.write(t, "config/config.php", fmt.Sprintf(`<?php
$config = [
    'baseurlpath' => '%s/',
    'certdir' => '%s/cert/',
    'loggingdir' => '%s/log/',
    'datadir' => '%s/tmp/',
    'tempdir' => '%s/tmp/',
    'metadatadir' => '%s/metadata/',
    'metadata.sources' => [['type' => 'flatfile', 'directory' => '%s/metadata/']],
    'secretsalt' => 'salon-test-salt-0123456789',
    'auth.adminpassword' => 'salon-test-admin',
    'admin.protectindexpage' => false,
    'admin.protectmetadata' => false,
    'technicalcontact_name' => 'Salon tests',
    'technicalcontact_email' => 'tests@salon.example',
    'timezone' => 'UTC',
    'logging.level' => SimpleSAML\Logger::DEBUG,
    'logging.handler' => 'file',
    'logging.logfile' => 'simplesamlphp.log',
    'enable.saml20-idp' => true,
    'enable.shib13-idp' => false,
    'module.enable' => ['exampleauth' => true, 'core' => true, 'saml' => true, 'admin' => true],
    'session.cookie.secure' => false,
    'session.phpsession.savepath' => '%s/sessions',
    'store.type' => 'phpsession',
    'language.available' => ['en'],
    'language.default' => 'en',
];
`, s.URL, s.dir, s.dir, s.dir, s.dir, s.dir, s.dir, s.dir))
	s.write(t, "config/authsources.php", `<?php
$config = [
    'admin' => ['core:AdminPassword'],
    'students' => [
        'exampleauth:UserPass',
        'student1:student1pass' => [
            'uid' => ['Student1'],
            'displayName' => ['Student One'],
            'mail' => ['student1@uni.example'],
        ],
    ],
];
`)
	s.write(t, "metadata/saml20-idp-hosted.php", fmt.Sprintf(`<?php
$metadata['%s'] = [
    'host' => '__DEFAULT__',
    'privatekey' => 'idp.key',
    'certificate' => 'idp.crt',
    'auth' => 'students',
    'saml20.sign.assertion' => true,
    'attributes.NameFormat' => 'urn:oasis:names:tc:SAML:2.0:attrname-format:basic',
];
`, s.MetadataURL))
	s.write(t, "metadata/saml20-sp-remote.php", "<?php\n")
	cmd := exec.Command(php, "-S", "127.0.0.1:"+strconv.Itoa(port), "-t", simpleSAMLphpWWW)
	cmd.Env = append(os.Environ(), "SIMPLESAMLPHP_CONFIG_DIR="+filepath.Join(s.dir, "config"))
	logf, err := os.Create(filepath.Join(s.dir, "log/php-server.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start php -S: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		logf.Close()
		if t.Failed() {
			for _, f := range []string{"log/php-server.log", "log/simplesamlphp.log"} {
				b, _ := os.ReadFile(filepath.Join(s.dir, f))
				t.Logf("%s:\n%s", f, tail(string(b), 4000))
			}
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(s.MetadataURL)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 && strings.Contains(string(body), "IDPSSODescriptor") {
				break
			}
			err = fmt.Errorf("status %d: %.300s", resp.StatusCode, body)
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(s.dir, "log/php-server.log"))
			t.Fatalf("SimpleSAMLphp did not serve its metadata within 30s (last: %v): %s", err, tail(string(b), 3000))
		}
		time.Sleep(100 * time.Millisecond)
	}
	return s
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func (s *simpleSAMLphp) write(t testing.TB, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(s.dir, name), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// trustSP registers a service provider: its entity ID, assertion consumer
// service and signing certificate (AuthnRequests must be signed by it).
func (s *simpleSAMLphp) trustSP(t testing.TB, entityID, acs string, certDER []byte) {
	t.Helper()
	s.write(t, "metadata/saml20-sp-remote.php", fmt.Sprintf(`<?php
$metadata['%s'] = [
    'AssertionConsumerService' => [['Binding' => 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST', 'Location' => '%s']],
    'certData' => '%s',
    'validate.authnrequest' => true,
    'NameIDFormat' => 'urn:oasis:names:tc:SAML:2.0:nameid-format:transient',
];
`, entityID, acs, base64.StdEncoding.EncodeToString(certDER)))
}
