// Package sealed encrypts token sets at rest for the fleet stores: AES-256-GCM
// (NIST SP 800-38D) under a 32-byte key, with the credential's key as
// additional data, so a row or value alone reveals no token and cannot be
// moved to another credential.
package sealed

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"

	"github.com/latchdev/latch/credential"
)

// KeySize is the size of a store key: AES-256.
const KeySize = 32

// Version prefixes a sealed value; "p" marks plaintext (opted into).
const (
	versionAESGCM    = 's'
	versionPlaintext = 'p'
)

// Box seals and opens token sets. A Box with no key writes plaintext; it
// is made only when a person asked for that.
type Box struct {
	aead cipher.AEAD
}

// New returns a Box for key (KeySize bytes), or a plaintext Box for nil.
func New(key []byte) (*Box, error) {
	if key == nil {
		return &Box{}, nil
	}
	if len(key) != KeySize {
		return nil, fmt.Errorf("store key is %d bytes, want %d", len(key), KeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Box{aead: aead}, nil
}

// Encrypted reports whether b encrypts.
func (b *Box) Encrypted() bool { return b.aead != nil }

// ReadKeyFile reads a store key: 32 raw bytes, or 64 hex digits, or 44
// base64 characters, in a file no one else can read.
func ReadKeyFile(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("store key: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("store key %s is readable by others (mode %v): chmod 600 %s", path, fi.Mode().Perm(), path)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("store key: %w", err)
	}
	if len(raw) == KeySize {
		return raw, nil
	}
	s := bytes.TrimSpace(raw)
	if k, err := hex.DecodeString(string(s)); err == nil && len(k) == KeySize {
		return k, nil
	}
	if k, err := base64.StdEncoding.DecodeString(string(s)); err == nil && len(k) == KeySize {
		return k, nil
	}
	return nil, fmt.Errorf("store key %s: want %d random bytes (raw, hex or base64), e.g. head -c 32 /dev/urandom > %s", path, KeySize, path)
}

func aad(k credential.Key) []byte {
	return []byte("latch/v1\x00" + k.Issuer + "\x00" + k.ClientID + "\x00" + k.Account)
}

// Seal encodes t for storage under k.
func (b *Box) Seal(k credential.Key, t *credential.Token) ([]byte, error) {
	plain, err := json.Marshal(t)
	if err != nil {
		return nil, err
	}
	if b.aead == nil {
		return append([]byte{versionPlaintext}, plain...), nil
	}
	nonce := make([]byte, b.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	out := append([]byte{versionAESGCM}, nonce...)
	return b.aead.Seal(out, nonce, plain, aad(k)), nil
}

// OpenError is a stored value this Box cannot open: another key, no
// key for an encrypted value, a plaintext value where a key is required,
// or a damaged value. It matches credential.ErrUnusable.
type OpenError struct{ Reason string }

func (e *OpenError) Error() string { return "stored credential cannot be opened: " + e.Reason }
func (e *OpenError) Unwrap() error { return credential.ErrUnusable }

// Open decodes a value Seal wrote for k.
func (b *Box) Open(k credential.Key, v []byte) (*credential.Token, error) {
	if len(v) == 0 {
		return nil, &OpenError{Reason: "empty value"}
	}
	var plain []byte
	switch v[0] {
	case versionPlaintext:
		if b.aead != nil {
			return nil, &OpenError{Reason: "it is stored in plaintext, and this store requires a key"}
		}
		plain = v[1:]
	case versionAESGCM:
		if b.aead == nil {
			return nil, &OpenError{Reason: "it is encrypted: set the store key"}
		}
		ns := b.aead.NonceSize()
		if len(v) < 1+ns+b.aead.Overhead() {
			return nil, &OpenError{Reason: "value cut short"}
		}
		var err error
		plain, err = b.aead.Open(nil, v[1:1+ns], v[1+ns:], aad(k))
		if err != nil {
			return nil, &OpenError{Reason: "wrong store key, or the value was altered"}
		}
	default:
		return nil, &OpenError{Reason: "unknown format"}
	}
	var t credential.Token
	if err := json.Unmarshal(plain, &t); err != nil {
		return nil, &OpenError{Reason: "not a token set"}
	}
	return &t, nil
}
