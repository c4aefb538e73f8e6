package turn

import (
	"crypto/tls"
	"fmt"
	"os"
	"sync"
	"time"
)

// certReloader serves the certificate in certFile/keyFile and reloads it
// when either file changes, so a renewed certificate (ACME) is picked up
// without a restart.
type certReloader struct {
	certFile, keyFile string

	mu      sync.Mutex
	cert    *tls.Certificate
	modTime time.Time
}

func newTLSConfig(certFile, keyFile string) (*tls.Config, error) {
	r := &certReloader{certFile: certFile, keyFile: keyFile}
	if _, err := r.get(nil); err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: r.get,
	}, nil
}

func (r *certReloader) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	mod, err := latestModTime(r.certFile, r.keyFile)
	if err != nil && r.cert != nil {
		return r.cert, nil // keep serving the last good certificate
	}
	if err != nil {
		return nil, fmt.Errorf("turn: TLS certificate: %w", err)
	}
	if r.cert != nil && !mod.After(r.modTime) {
		return r.cert, nil
	}
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		if r.cert != nil {
			return r.cert, nil
		}
		return nil, fmt.Errorf("turn: TLS certificate: %w", err)
	}
	r.cert, r.modTime = &cert, mod
	return r.cert, nil
}

func latestModTime(files ...string) (time.Time, error) {
	var latest time.Time
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			return time.Time{}, err
		}
		if fi.ModTime().After(latest) {
			latest = fi.ModTime()
		}
	}
	return latest, nil
}
