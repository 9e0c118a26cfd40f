// Package secrets encrypts secrets at rest (Facebook app secrets, page access
// tokens) with AES-256-GCM.
//
// A sealed value is "v1:" followed by the standard base64 of nonce||ciphertext.
// Every value is sealed with additional authenticated data naming the row and
// column it belongs to (for example "accounts/<id>/app_secret"), so that a
// ciphertext copied into another row or column fails to open.
package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"
)

// KeySize is the size in bytes of an AES-256 key.
const KeySize = 32

// version prefixes sealed values so that the format can change later.
const version = "v1:"

// Box seals and opens secrets with one key. It is safe for concurrent use.
type Box struct {
	aead cipher.AEAD
}

// NewBox returns a Box for a 32-byte key.
func NewBox(key []byte) (*Box, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("secrets.NewBox: key is %d bytes, want %d", len(key), KeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("secrets.NewBox: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("secrets.NewBox: %w", err)
	}
	return &Box{aead: aead}, nil
}

// Seal encrypts plaintext, binding it to aad.
func (b *Box) Seal(plaintext, aad string) (string, error) {
	nonce := make([]byte, b.aead.NonceSize(), b.aead.NonceSize()+len(plaintext)+b.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("secrets.Seal: nonce: %w", err)
	}
	out := b.aead.Seal(nonce, nonce, []byte(plaintext), []byte(aad))
	return version + base64.StdEncoding.EncodeToString(out), nil
}

// Open decrypts a value produced by Seal with the same aad.
func (b *Box) Open(sealed, aad string) (string, error) {
	rest, ok := strings.CutPrefix(sealed, version)
	if !ok {
		return "", errors.New("secrets.Open: not a sealed value (missing v1: prefix)")
	}
	raw, err := base64.StdEncoding.DecodeString(rest)
	if err != nil {
		return "", fmt.Errorf("secrets.Open: %w", err)
	}
	n := b.aead.NonceSize()
	if len(raw) < n+b.aead.Overhead() {
		return "", errors.New("secrets.Open: sealed value too short")
	}
	pt, err := b.aead.Open(nil, raw[:n], raw[n:], []byte(aad))
	if err != nil {
		// Do not echo aad or the value: this error may be logged.
		return "", errors.New("secrets.Open: decryption failed (wrong key, or the value belongs to another row)")
	}
	return string(pt), nil
}

// ParseKey decodes a 32-byte key written as base64 (standard or URL
// alphabet, padded or not) or as 64 hexadecimal characters.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("secrets.ParseKey: empty key")
	}
	// Hex first: 64 hex characters are also valid base64 (of 48 bytes).
	if len(s) == 2*KeySize {
		if k, err := hex.DecodeString(s); err == nil {
			return k, nil
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		k, err := enc.DecodeString(s)
		if err != nil {
			continue
		}
		if len(k) != KeySize {
			return nil, fmt.Errorf("secrets.ParseKey: key decodes to %d bytes, want %d (generate one with: openssl rand -base64 32)", len(k), KeySize)
		}
		return k, nil
	}
	return nil, errors.New("secrets.ParseKey: key is neither base64 nor 64 hex characters (generate one with: openssl rand -base64 32)")
}

// GenerateKey returns a new random key, base64 (standard alphabet) encoded.
func GenerateKey() (string, error) {
	k := make([]byte, KeySize)
	if _, err := rand.Read(k); err != nil {
		return "", fmt.Errorf("secrets.GenerateKey: %w", err)
	}
	return base64.StdEncoding.EncodeToString(k), nil
}

// LoadOrCreateKeyFile reads the key stored at path, creating the file (0600,
// parent directory 0700) with a new key when it does not exist. It is meant
// for development: in production the key comes from the environment or a
// secret manager, and losing this file makes every stored secret unreadable.
func LoadOrCreateKeyFile(path string) (key []byte, created bool, err error) {
	key, err = readKeyFile(path)
	if err == nil {
		return key, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, false, fmt.Errorf("secrets.LoadOrCreateKeyFile: %w", err)
	}
	enc, err := GenerateKey()
	if err != nil {
		return nil, false, err
	}
	// O_EXCL: if another process created the file meanwhile, use its key.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		key, err := readKeyFile(path)
		return key, false, err
	}
	if err != nil {
		return nil, false, fmt.Errorf("secrets.LoadOrCreateKeyFile: %w", err)
	}
	_, werr := f.WriteString(enc + "\n")
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		// A partial file would be read back as a bad key next time.
		return nil, false, fmt.Errorf("secrets.LoadOrCreateKeyFile: %w", errors.Join(err, os.Remove(path)))
	}
	key, err = ParseKey(enc)
	if err != nil {
		return nil, false, err
	}
	return key, true, nil
}

func readKeyFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("secrets.LoadOrCreateKeyFile: %w", err)
	}
	k, err := ParseKey(string(b))
	if err != nil {
		return nil, fmt.Errorf("secrets.LoadOrCreateKeyFile: %s: %w", path, err)
	}
	return k, nil
}

// Hint shows the last 4 characters of a secret so that people can tell
// secrets apart without seeing them. Short secrets are masked entirely.
func Hint(secret string) string {
	const mask = "…"
	if utf8.RuneCountInString(secret) < 8 {
		return mask
	}
	r := []rune(secret)
	return mask + string(r[len(r)-4:])
}
