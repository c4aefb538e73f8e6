package events

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// The appendices' "Cryptographic Test Vectors" key.
const (
	specSeed       = "YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1"
	specServerName = "domain"
	specKeyID      = "ed25519:1"
)

func specKey(t testing.TB) SigningKey {
	t.Helper()
	seed, err := DecodeBase64(specSeed)
	if err != nil {
		t.Fatal(err)
	}
	k, err := SigningKeyFromSeed(specKeyID, seed)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// mustCanonical is CanonicalJSON for test literals.
func mustCanonical(t testing.TB, s string) string {
	t.Helper()
	b, err := CanonicalJSON([]byte(s))
	if err != nil {
		t.Fatalf("CanonicalJSON(%s): %v", s, err)
	}
	return string(b)
}

func TestSignJSONSpecVectors(t *testing.T) {
	// appendices.md, "Cryptographic Test Vectors", "JSON Signing".
	tests := []struct{ name, in, want string }{
		{"empty object", `{}`, `{
    "signatures": {
        "domain": {
            "ed25519:1": "K8280/U9SSy9IVtjBuVeLr+HpOB4BQFWbg+UZaADMtTdGYI7Geitb76LTrr5QV/7Xg4ahLwYGYZzuHGZKM5ZAQ"
        }
    }
}`},
		{"data values", `{"one": 1, "two": "Two"}`, `{
    "one": 1,
    "signatures": {
        "domain": {
            "ed25519:1": "KqmLSbO39/Bzb0QIYE82zqLwsA+PDzYIpIRA2sRQ4sL53+sN6/fpNSoqE7BP7vBZhG6kYdD13EIMJpvhJI+6Bw"
        }
    },
    "two": "Two"
}`},
	}
	key := specKey(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := SignJSON([]byte(tt.in), specServerName, key)
			if err != nil {
				t.Fatalf("SignJSON: %v", err)
			}
			if want := mustCanonical(t, tt.want); string(got) != want {
				t.Errorf("got  %s\nwant %s", got, want)
			}
			if err := VerifyJSON(got, specServerName, specKeyID, key.Public()); err != nil {
				t.Errorf("VerifyJSON: %v", err)
			}
		})
	}
}

func TestSignJSONKeepsUnsignedAndOtherSignatures(t *testing.T) {
	key := specKey(t)
	in := `{"b":2,"a":1,"unsigned":{"age_ts":5},"signatures":{"other.org":{"ed25519:x":"c2ln"},"domain":{"ed25519:0":"b2xk"}}}`
	got, err := SignJSON([]byte(in), specServerName, key)
	if err != nil {
		t.Fatal(err)
	}
	// Neither signatures nor unsigned are covered: the signature equals the
	// one over {"a":1,"b":2} alone.
	plain, err := SignJSON([]byte(`{"a":1,"b":2}`), specServerName, key)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := findSignature(mustFields(t, plain), specServerName, specKeyID)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf(`{"a":1,"b":2,"signatures":{"domain":{"ed25519:0":"b2xk","ed25519:1":%q},"other.org":{"ed25519:x":"c2ln"}},"unsigned":{"age_ts":5}}`, EncodeBase64(sig))
	if string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	// Changing unsigned or adding signatures does not break the signature.
	changed := strings.Replace(string(got), `"age_ts":5`, `"age_ts":6`, 1)
	if err := VerifyJSON([]byte(changed), specServerName, specKeyID, key.Public()); err != nil {
		t.Errorf("VerifyJSON after changing unsigned: %v", err)
	}
}

func mustFields(t testing.TB, b []byte) []field {
	t.Helper()
	f, err := objectFields(b)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestVerifyJSONFailures(t *testing.T) {
	key := specKey(t)
	signed, err := SignJSON([]byte(`{"one":1,"two":"Two"}`), specServerName, key)
	if err != nil {
		t.Fatal(err)
	}
	other, err := GenerateSigningKey(bytes.NewReader(bytes.Repeat([]byte{7}, 64)))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name          string
		obj           string
		server, keyID string
		pub           ed25519.PublicKey
		want          error
	}{
		{"tampered", strings.Replace(string(signed), `"one":1`, `"one":2`, 1), specServerName, specKeyID, key.Public(), ErrBadSignature},
		{"added member", strings.Replace(string(signed), `{"one"`, `{"extra":0,"one"`, 1), specServerName, specKeyID, key.Public(), ErrBadSignature},
		{"wrong public key", string(signed), specServerName, specKeyID, other.Public(), ErrBadSignature},
		{"unknown server", string(signed), "elsewhere", specKeyID, key.Public(), ErrMissingSignature},
		{"unknown key", string(signed), specServerName, "ed25519:2", key.Public(), ErrMissingSignature},
		{"no signatures", `{"one":1}`, specServerName, specKeyID, key.Public(), ErrMissingSignature},
		{"short public key", string(signed), specServerName, specKeyID, key.Public()[:5], ErrBadKey},
		{"unknown algorithm", string(signed), specServerName, "curve25519:1", key.Public(), ErrBadKey},
		{"signatures not object", `{"signatures":[]}`, specServerName, specKeyID, key.Public(), ErrBadSignature},
		{"server entry not object", `{"signatures":{"domain":"x"}}`, specServerName, specKeyID, key.Public(), ErrBadSignature},
		{"signature not string", `{"signatures":{"domain":{"ed25519:1":1}}}`, specServerName, specKeyID, key.Public(), ErrBadSignature},
		{"signature not base64", `{"signatures":{"domain":{"ed25519:1":"!!"}}}`, specServerName, specKeyID, key.Public(), ErrBadSignature},
		{"signature wrong length", `{"signatures":{"domain":{"ed25519:1":"AAAA"}}}`, specServerName, specKeyID, key.Public(), ErrBadSignature},
		{"not an object", `[1]`, specServerName, specKeyID, key.Public(), ErrBadEvent},
		{"not JSON", `{`, specServerName, specKeyID, key.Public(), ErrBadJSON},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := VerifyJSON([]byte(tt.obj), tt.server, tt.keyID, tt.pub)
			if !errors.Is(err, tt.want) {
				t.Errorf("VerifyJSON error = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestVerifyJSONAcceptsPaddedSignature(t *testing.T) {
	key := specKey(t)
	signed, err := SignJSON([]byte(`{}`), specServerName, key)
	if err != nil {
		t.Fatal(err)
	}
	padded := strings.Replace(string(signed), `AQ"`, `AQ=="`, 1)
	if padded == string(signed) {
		t.Fatal("test vector changed")
	}
	if err := VerifyJSON([]byte(padded), specServerName, specKeyID, key.Public()); err != nil {
		t.Errorf("padded signature rejected: %v", err)
	}
}

func TestSigningKeyFile(t *testing.T) {
	key := specKey(t)
	file, err := EncodeSigningKeyFile(key)
	if err != nil {
		t.Fatal(err)
	}
	// The spec writes the seed with non-zero padding bits ("...XA1"); the
	// canonical encoding of the same 32 bytes ends in "XA0".
	if want := "ed25519 1 YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA0\n"; string(file) != want {
		t.Errorf("EncodeSigningKeyFile = %q, want %q", file, want)
	}
	back, err := ParseSigningKeyFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if back.ID != key.ID || !bytes.Equal(back.Priv, key.Priv) {
		t.Errorf("round trip changed the key: %v", back)
	}

	tests := []struct {
		name, file, wantID string
		wantErr            bool
	}{
		{"synapse style", "ed25519 a_AbCd " + specSeed + "\n", "ed25519:a_AbCd", false},
		{"no trailing newline, padded seed", "ed25519 a " + specSeed + "=", "ed25519:a", false},
		{"first of two keys", "\ned25519 new " + specSeed + "\ned25519 old " + specSeed + "\n", "ed25519:new", false},
		{"CRLF", "ed25519 a " + specSeed + "\r\n", "ed25519:a", false},
		{"empty", "", "", true},
		{"only blank lines", "\n\n", "", true},
		{"wrong algorithm", "curve25519 a " + specSeed, "", true},
		{"missing seed", "ed25519 a", "", true},
		{"extra field", "ed25519 a " + specSeed + " x", "", true},
		{"bad base64", "ed25519 a !!!!", "", true},
		{"short seed", "ed25519 a AAAA", "", true},
		{"bad version chars", "ed25519 a-b " + specSeed, "", true},
		{"second line bad", "ed25519 a " + specSeed + "\ngarbage\n", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := ParseSigningKeyFile([]byte(tt.file))
			if tt.wantErr {
				if !errors.Is(err, ErrBadKey) {
					t.Errorf("ParseSigningKeyFile error = %v, want ErrBadKey", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if k.ID != tt.wantID || !bytes.Equal(k.Priv, key.Priv) {
				t.Errorf("got %v", k)
			}
		})
	}
}

func TestGenerateSigningKey(t *testing.T) {
	// A deterministic reader: the same bytes give the same key.
	src := bytes.Repeat([]byte{0xfe, 3, 200, 251, 252, 0, 99}, 20)
	k1, err := GenerateSigningKey(bytes.NewReader(src))
	if err != nil {
		t.Fatal(err)
	}
	k2, err := GenerateSigningKey(bytes.NewReader(src))
	if err != nil {
		t.Fatal(err)
	}
	if k1.ID != k2.ID || !bytes.Equal(k1.Priv, k2.Priv) {
		t.Error("GenerateSigningKey is not a function of its reader")
	}
	if !validKeyID(k1.ID) || len(k1.ID) != len("ed25519:")+keyIDLen {
		t.Errorf("key ID %q", k1.ID)
	}
	if err := k1.check(); err != nil {
		t.Error(err)
	}
	if _, err := GenerateSigningKey(bytes.NewReader(src[:10])); err == nil {
		t.Error("short reader: want error")
	}
}

func TestSigningKeyNeverPrintsSecret(t *testing.T) {
	key := specKey(t)
	seed := EncodeBase64(key.Priv.Seed())
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("key", "k", key)
	for _, s := range []string{fmt.Sprint(key), fmt.Sprintf("%v %+v %#v %s", key, key, key, key), logged.String()} {
		if strings.Contains(s, seed) || strings.Contains(s, fmt.Sprint([]byte(key.Priv))) {
			t.Errorf("secret printed: %s", s)
		}
		if !strings.Contains(s, "REDACTED") {
			t.Errorf("no REDACTED marker: %s", s)
		}
	}
}

func TestSignWithBadKey(t *testing.T) {
	for _, k := range []SigningKey{
		{ID: "ed25519:1"},
		{ID: "ed25519:1", Priv: make([]byte, 10)},
		{ID: "1", Priv: specKey(t).Priv},
	} {
		if _, err := SignJSON([]byte(`{}`), "domain", k); !errors.Is(err, ErrBadKey) {
			t.Errorf("SignJSON with %v: error %v, want ErrBadKey", k, err)
		}
	}
}

func TestBase64(t *testing.T) {
	// appendices.md, "Unpadded Base64".
	for in, want := range map[string]string{"": "", "f": "Zg", "fo": "Zm8", "foo": "Zm9v", "foob": "Zm9vYg", "fooba": "Zm9vYmE", "foobar": "Zm9vYmFy"} {
		if got := EncodeBase64([]byte(in)); got != want {
			t.Errorf("EncodeBase64(%q) = %q, want %q", in, got, want)
		}
		for _, enc := range []string{want, want + strings.Repeat("=", (4-len(want)%4)%4)} {
			if got, err := DecodeBase64(enc); err != nil || string(got) != in {
				t.Errorf("DecodeBase64(%q) = %q, %v", enc, got, err)
			}
		}
	}
}
