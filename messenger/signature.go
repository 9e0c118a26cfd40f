package messenger

import (
	"crypto/hmac"
	"crypto/sha1" // Meta's legacy X-Hub-Signature is HMAC-SHA1; only accepted when sha256 is absent.
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"strings"
)

var (
	// ErrMissingSignature means the request carried neither X-Hub-Signature-256
	// nor X-Hub-Signature.
	ErrMissingSignature = errors.New("messenger: webhook signature missing")
	// ErrBadSignature means a signature was present but malformed or did not
	// match the body.
	ErrBadSignature = errors.New("messenger: webhook signature does not match")
)

const (
	sha256Prefix = "sha256="
	sha1Prefix   = "sha1="
)

// Sign returns the X-Hub-Signature-256 header value for body:
// "sha256=<lowercase hex HMAC-SHA256(body, appSecret)>".
func Sign(body []byte, appSecret string) string {
	return sha256Prefix + hex.EncodeToString(mac(sha256.New, []byte(appSecret), body))
}

// SignSHA1 returns the legacy X-Hub-Signature header value "sha1=<hex>".
func SignSHA1(body []byte, appSecret string) string {
	return sha1Prefix + hex.EncodeToString(mac(sha1.New, []byte(appSecret), body))
}

// VerifySignature checks the raw webhook body against the signature headers.
// sig256 is X-Hub-Signature-256, sig1 the legacy X-Hub-Signature.
//
// When sig256 is present it alone decides: a valid sha1 cannot rescue a bad
// sha256, otherwise the weaker hash would be the real check. The sha1 header
// is only used when sig256 is absent. Neither present gives
// ErrMissingSignature; a malformed value or a mismatch gives ErrBadSignature.
// An empty appSecret always fails: an empty HMAC key is one anybody can use.
func VerifySignature(body []byte, sig256, sig1, appSecret string) error {
	sig256, sig1 = strings.TrimSpace(sig256), strings.TrimSpace(sig1)
	if sig256 == "" && sig1 == "" {
		return ErrMissingSignature
	}
	if appSecret == "" {
		return fmt.Errorf("%w: no app secret to verify with", ErrBadSignature)
	}
	if sig256 != "" {
		return verify(body, sig256, sha256Prefix, sha256.New, sha256.Size, appSecret)
	}
	return verify(body, sig1, sha1Prefix, sha1.New, sha1.Size, appSecret)
}

func verify(body []byte, header, prefix string, h func() hash.Hash, size int, appSecret string) error {
	hexSig, ok := strings.CutPrefix(header, prefix)
	if !ok {
		return fmt.Errorf("%w: expected a %q prefix", ErrBadSignature, prefix)
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil || len(got) != size {
		return fmt.Errorf("%w: not %d hex-encoded bytes", ErrBadSignature, size)
	}
	if !hmac.Equal(got, mac(h, []byte(appSecret), body)) {
		return ErrBadSignature
	}
	return nil
}

// AppSecretProof returns hex HMAC-SHA256(key=appSecret, message=accessToken),
// the appsecret_proof Graph API parameter that ties a token to the app.
func AppSecretProof(accessToken, appSecret string) string {
	return hex.EncodeToString(mac(sha256.New, []byte(appSecret), []byte(accessToken)))
}

func mac(h func() hash.Hash, key, msg []byte) []byte {
	m := hmac.New(h, key)
	m.Write(msg) // hash.Hash.Write never returns an error.
	return m.Sum(nil)
}
