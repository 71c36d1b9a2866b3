package state

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"sync"
)

// Hash schemes of Secret.Hash, recorded in File.HashScheme.
const (
	// HashHMAC is the default: HMAC-SHA256 of "KEY:VALUE" under a per-mount
	// key kept away from the file (see MountKey). A plain hash of a short
	// password is an offline-guessable copy of it; a keyed one is not
	// without the key.
	HashHMAC = "hmac-sha256"
	// HashSHA256 is the original design's plain SHA-256 of "KEY:VALUE", for
	// tools that compare against it (state_hash = "sha256").
	HashSHA256 = "sha256"
)

// KeySize is the length of a hash key.
const KeySize = 32

// Hasher computes Secret.Hash under one scheme (and key). It is safe for
// concurrent use.
type Hasher struct {
	scheme string
	keyID  string
	pool   sync.Pool // of hash.Hash, reset before use: one per listing would allocate per secret
}

// NewHasher returns a hasher for scheme: HashHMAC needs a key of KeySize
// bytes (copied), HashSHA256 takes none.
func NewHasher(scheme string, key []byte) (*Hasher, error) {
	switch scheme {
	case HashSHA256:
		if key != nil {
			return nil, errors.New("state: the sha256 hash takes no key")
		}
		h := &Hasher{scheme: scheme}
		h.pool.New = func() any { return sha256.New() }
		return h, nil
	case HashHMAC:
		if len(key) != KeySize {
			return nil, fmt.Errorf("state: an %s key has %d bytes, not %d", HashHMAC, KeySize, len(key))
		}
		k := append([]byte(nil), key...)
		h := &Hasher{scheme: scheme, keyID: keyID(k)}
		h.pool.New = func() any { return hmac.New(sha256.New, k) }
		return h, nil
	default:
		return nil, fmt.Errorf("state: unknown hash scheme %q (want %q or %q)", scheme, HashHMAC, HashSHA256)
	}
}

// PlainHasher is the original design's plain SHA-256.
func PlainHasher() *Hasher {
	h, _ := NewHasher(HashSHA256, nil)
	return h
}

// keyID names a key without revealing it: the first 8 bytes of an HMAC of
// a fixed label under the key, a PRF output that says nothing about the
// key or any hash made with it, but tells two keys apart.
func keyID(key []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("infisicalfs state key id v1"))
	return hex.EncodeToString(m.Sum(nil)[:8])
}

// Scheme is HashHMAC or HashSHA256.
func (h *Hasher) Scheme() string { return h.scheme }

// KeyID identifies the key ("" for HashSHA256); it reveals nothing.
func (h *Hasher) KeyID() string { return h.keyID }

// Hash returns the hex hash of "KEY:VALUE", hashing value in place.
func (h *Hasher) Hash(key string, value []byte) string {
	m := h.pool.Get().(hash.Hash)
	m.Reset()
	m.Write([]byte(key))
	m.Write([]byte{':'})
	m.Write(value)
	var sum [sha256.Size]byte
	out := hex.EncodeToString(m.Sum(sum[:0]))
	h.pool.Put(m)
	return out
}

// same reports whether hashes recorded under (scheme, keyID) compare with
// h's. A file without a scheme is the original design's: sha256.
func (h *Hasher) same(scheme, id string) bool {
	if scheme == "" {
		scheme = HashSHA256
	}
	return scheme == h.scheme && id == h.keyID
}
