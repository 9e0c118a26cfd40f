package messenger

import (
	"errors"
	"testing"
)

// Vectors computed independently with `openssl dgst -hmac`.
const (
	vecBody   = `{"object":"page","entry":[]}`
	vecSecret = "s3cr3t"
	vecSHA256 = "sha256=0b36918e92cea1735987421f3800c4016053b7e8951c42caa969731f7b34bcd5"
	vecSHA1   = "sha1=53d211779896a61a293e6258ce6c2935b8c1496c"
	vecToken  = "EAAGtoken"
	vecProof  = "1ec91f6677a3fa40e8a42668b9d5787d59cab9d4f928397a19dfabf508d54ea4"
)

func TestSignVectors(t *testing.T) {
	if got := Sign([]byte(vecBody), vecSecret); got != vecSHA256 {
		t.Errorf("Sign = %s, want %s", got, vecSHA256)
	}
	if got := SignSHA1([]byte(vecBody), vecSecret); got != vecSHA1 {
		t.Errorf("SignSHA1 = %s, want %s", got, vecSHA1)
	}
	if got := AppSecretProof(vecToken, vecSecret); got != vecProof {
		t.Errorf("AppSecretProof = %s, want %s", got, vecProof)
	}
}

func TestVerifySignature(t *testing.T) {
	body := []byte(vecBody)
	otherSHA256 := Sign(body, "other")
	otherSHA1 := SignSHA1(body, "other")
	tests := []struct {
		name         string
		body         []byte
		sig256, sig1 string
		secret       string
		want         error
	}{
		{"sha256 valid", body, vecSHA256, "", vecSecret, nil},
		{"sha256 valid with surrounding spaces", body, " " + vecSHA256 + " ", "", vecSecret, nil},
		{"sha256 valid, sha1 wrong: sha256 decides", body, vecSHA256, otherSHA1, vecSecret, nil},
		{"sha256 wrong, sha1 valid: sha1 not accepted", body, otherSHA256, vecSHA1, vecSecret, ErrBadSignature},
		{"sha256 malformed, sha1 valid", body, "sha256=zz", vecSHA1, vecSecret, ErrBadSignature},
		{"sha1 only, valid", body, "", vecSHA1, vecSecret, nil},
		{"sha1 only, wrong", body, "", otherSHA1, vecSecret, ErrBadSignature},
		{"neither", body, "", "", vecSecret, ErrMissingSignature},
		{"sha256 wrong secret", body, otherSHA256, "", vecSecret, ErrBadSignature},
		{"sha256 without prefix", body, vecSHA256[len("sha256="):], "", vecSecret, ErrBadSignature},
		{"sha1 value in the sha256 header", body, vecSHA1, "", vecSecret, ErrBadSignature},
		{"sha256 not hex", body, "sha256=" + string(make([]byte, 64)), "", vecSecret, ErrBadSignature},
		{"sha256 truncated", body, vecSHA256[:len(vecSHA256)-2], "", vecSecret, ErrBadSignature},
		{"body changed", []byte(vecBody + " "), vecSHA256, "", vecSecret, ErrBadSignature},
		{"empty app secret", body, Sign(body, ""), "", "", ErrBadSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := VerifySignature(tt.body, tt.sig256, tt.sig1, tt.secret)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("VerifySignature: %v", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("VerifySignature = %v, want %v", err, tt.want)
			}
		})
	}
}

// Meta signs the bytes it sends, with non-ASCII escaped: the decoded,
// re-encoded text must not verify.
func TestVerifySignatureEscapedBody(t *testing.T) {
	escaped := []byte(`{"object":"page","entry":[{"messaging":[{"message":{"text":"K\u00e4se"}}]}]}`)
	sig := Sign(escaped, vecSecret)
	if err := VerifySignature(escaped, sig, "", vecSecret); err != nil {
		t.Fatalf("escaped body: %v", err)
	}
	unescaped := []byte(`{"object":"page","entry":[{"messaging":[{"message":{"text":"Käse"}}]}]}`)
	if err := VerifySignature(unescaped, sig, "", vecSecret); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("re-serialised body verified: %v", err)
	}
}
