// Package credential makes and checks TURN REST API credentials, the
// time-limited form that coturn's use-auth-secret and Synapse's
// turn_shared_secret use: the username is "EXPIRY:USERID" (EXPIRY in Unix
// seconds) and the password is base64(HMAC-SHA1(secret, username)).
//
// It is pure (no I/O, no clock of its own) so the homeserver's
// /voip/turnServer handler and the embedded relay share one definition, and
// an external coturn configured with the same secret accepts the same
// credentials. It must not import any other Salon package.
//
// See draft-uberti-behave-turn-rest-00 and the Matrix client-server spec,
// "GET /_matrix/client/v3/voip/turnServer".
package credential

import (
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // HMAC-SHA1 is what the TURN REST form and coturn use.
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Generate returns a username valid until now+ttl for userID and its
// password. The expiry is rounded down to whole seconds, as the wire form
// carries seconds.
func Generate(secret []byte, userID string, ttl time.Duration, now time.Time) (username, password string) {
	expiry := now.Add(ttl).Unix()
	username = strconv.FormatInt(expiry, 10) + ":" + userID
	return username, Password(secret, username)
}

// Password returns base64(HMAC-SHA1(secret, username)), the password that
// belongs to a TURN REST username.
func Password(secret []byte, username string) string {
	mac := hmac.New(sha1.New, secret)
	mac.Write([]byte(username)) // hash.Hash.Write never fails
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// Check parses username, refuses it if it is malformed or expired at now,
// and returns the user ID it names and the password that belongs to it.
// The TURN server does not see the client's password: it derives the
// long-term key from the password returned here and STUN's
// MESSAGE-INTEGRITY proves the client knew it, so a forged password fails
// there, not here.
//
// The username is split at the first ':', so user IDs that contain ':'
// (every Matrix user ID does) round-trip. A username without a user ID
// ("EXPIRY" alone, pion's own form) is refused as malformed: every
// credential Salon hands out names its user.
func Check(secret []byte, username string, now time.Time) (userID, password string, err error) {
	expiryText, userID, ok := strings.Cut(username, ":")
	if !ok || userID == "" {
		return "", "", fmt.Errorf("%w: want EXPIRY:USERID", ErrMalformed)
	}
	expiry, err := strconv.ParseInt(expiryText, 10, 64)
	if err != nil || expiry < 0 || expiryText[0] == '+' {
		return "", "", fmt.Errorf("%w: expiry %q is not Unix seconds", ErrMalformed, expiryText)
	}
	// Valid through the expiry second itself, as coturn treats it.
	if now.Unix() > expiry {
		return "", "", fmt.Errorf("%w: at %d, now %d", ErrExpired, expiry, now.Unix())
	}
	return userID, Password(secret, username), nil
}

// Principal is what a credential's username names after the expiry: the
// Matrix user ID, and the device it was handed to when there is one, as
// "USERID/DEVICEID". The relay asks the homeserver, with both, whether the
// holder is still logged in. A Matrix user ID has no '/' after its first
// ':' (the server name cannot hold one), so SplitPrincipal finds the
// device even when it holds ':' or '/' itself.
func Principal(userID, deviceID string) string {
	if deviceID == "" {
		return userID
	}
	return userID + "/" + deviceID
}

// SplitPrincipal undoes Principal: the user ID and the device ID ("" when
// the principal names none). A principal that is not a Matrix user ID
// (no leading '@', e.g. an SFU participant's identity) is returned whole
// as the user.
func SplitPrincipal(p string) (userID, deviceID string) {
	if !strings.HasPrefix(p, "@") {
		return p, ""
	}
	colon := strings.IndexByte(p, ':')
	if colon < 0 {
		return p, ""
	}
	slash := strings.IndexByte(p[colon:], '/')
	if slash < 0 {
		return p, ""
	}
	return p[:colon+slash], p[colon+slash+1:]
}
