package secrets

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func newTestBox(t *testing.T) *Box {
	t.Helper()
	enc, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	key, err := ParseKey(enc)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewBox(key)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSealOpen(t *testing.T) {
	b := newTestBox(t)
	for _, pt := range []string{"", "x", "EAAB-page-token-äöü", strings.Repeat("s", 4096)} {
		sealed, err := b.Seal(pt, "accounts/1/app_secret")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(sealed, "v1:") {
			t.Errorf("Seal = %q, want v1: prefix", sealed)
		}
		if len(pt) > 8 && strings.Contains(sealed, pt) {
			t.Errorf("sealed value contains the plaintext")
		}
		got, err := b.Open(sealed, "accounts/1/app_secret")
		if err != nil {
			t.Fatal(err)
		}
		if got != pt {
			t.Errorf("Open = %q, want %q", got, pt)
		}
	}
}

func TestSealIsRandomized(t *testing.T) {
	b := newTestBox(t)
	s1, err := b.Seal("same", "a")
	if err != nil {
		t.Fatal(err)
	}
	s2, err := b.Seal("same", "a")
	if err != nil {
		t.Fatal(err)
	}
	if s1 == s2 {
		t.Error("two seals of the same plaintext are equal; nonce reused?")
	}
}

func TestOpenRejects(t *testing.T) {
	b := newTestBox(t)
	sealed, err := b.Seal("secret", "accounts/1/app_secret")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(sealed, "v1:"))
	if err != nil {
		t.Fatal(err)
	}
	raw[len(raw)-1] ^= 1
	tampered := "v1:" + base64.StdEncoding.EncodeToString(raw)

	for _, tc := range []struct {
		name, sealed, aad string
		box               *Box
	}{
		{"other row", sealed, "accounts/2/app_secret", b},
		{"other column", sealed, "pages/1/access_token", b},
		{"other key", sealed, "accounts/1/app_secret", newTestBox(t)},
		{"tampered", tampered, "accounts/1/app_secret", b},
		{"no prefix", strings.TrimPrefix(sealed, "v1:"), "accounts/1/app_secret", b},
		{"bad base64", "v1:***", "accounts/1/app_secret", b},
		{"too short", "v1:AAAA", "accounts/1/app_secret", b},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got, err := tc.box.Open(tc.sealed, tc.aad); err == nil {
				t.Errorf("Open = %q, want error", got)
			}
		})
	}
}

func TestNewBoxKeySize(t *testing.T) {
	for _, n := range []int{0, 16, 24, 31, 33} {
		if _, err := NewBox(make([]byte, n)); err == nil {
			t.Errorf("NewBox(%d bytes) succeeded, want error", n)
		}
	}
}

func TestParseKey(t *testing.T) {
	key := make([]byte, 32)
	for i := range key {
		key[i] = byte(i*7 + 250) // includes bytes that differ between std and url alphabets
	}
	for _, s := range []string{
		base64.StdEncoding.EncodeToString(key),
		base64.RawStdEncoding.EncodeToString(key),
		base64.URLEncoding.EncodeToString(key),
		base64.RawURLEncoding.EncodeToString(key),
		hex.EncodeToString(key),
		strings.ToUpper(hex.EncodeToString(key)),
		"  " + base64.StdEncoding.EncodeToString(key) + "\n",
	} {
		got, err := ParseKey(s)
		if err != nil {
			t.Errorf("ParseKey(%q): %v", s, err)
			continue
		}
		if !bytes.Equal(got, key) {
			t.Errorf("ParseKey(%q) = %x, want %x", s, got, key)
		}
	}
	for _, s := range []string{
		"",
		"not a key!",
		base64.StdEncoding.EncodeToString(make([]byte, 16)),
		hex.EncodeToString(make([]byte, 16)),
		strings.Repeat("z", 64),
	} {
		if _, err := ParseKey(s); err == nil {
			t.Errorf("ParseKey(%q) succeeded, want error", s)
		} else if !strings.Contains(err.Error(), "secrets.ParseKey") {
			t.Errorf("ParseKey(%q) error %q does not say where it comes from", s, err)
		}
	}
}

func TestLoadOrCreateKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "dir", "key")
	k1, created, err := LoadOrCreateKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !created || len(k1) != 32 {
		t.Fatalf("first call: created=%v len=%d, want true 32", created, len(k1))
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("key file mode = %o, want 600", perm)
	}
	di, err := os.Stat(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if perm := di.Mode().Perm(); perm != 0o700 {
		t.Errorf("key dir mode = %o, want 700", perm)
	}
	k2, created, err := LoadOrCreateKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if created || !bytes.Equal(k1, k2) {
		t.Errorf("second call: created=%v, same key=%v; want false, true", created, bytes.Equal(k1, k2))
	}

	bad := filepath.Join(t.TempDir(), "bad")
	if err := os.WriteFile(bad, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadOrCreateKeyFile(bad); err == nil {
		t.Error("LoadOrCreateKeyFile(garbage file) succeeded, want error")
	}
}

func TestHint(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "…"},
		{"abc", "…"},
		{"1234567", "…"},
		{"12345678", "…5678"},
		{"EAABsecrettokenXYZW", "…XYZW"},
		{"ééééééééàèìò", "…àèìò"},
	} {
		if got := Hint(tc.in); got != tc.want {
			t.Errorf("Hint(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
