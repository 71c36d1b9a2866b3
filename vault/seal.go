package vault

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"fmt"
	"log/slog"
	"sync"

	"github.com/awnumar/memguard"
	"golang.org/x/sys/unix"
)

// Key handling, measured on this machine kind (64-byte value, go test -bench):
//
//	AEAD built once and kept                 ~230 ns/seal,    96 B, 1 alloc
//	aes.NewCipher per seal from a LockedBuffer ~740 ns/seal, 1376 B, 3 allocs
//	Enclave.Open → LockedBuffer per seal     ~77 µs/seal,   1768 B, 7 allocs
//
// We keep one AEAD. The raw key is generated straight into a memguard
// LockedBuffer (mlocked, guard pages, excluded from core dumps), frozen
// read-only and destroyed by Destroy; it is never copied to the Go heap.
// Go's AES key schedule, from which the key can be derived, does live on the
// heap inside the AEAD: crypto/aes offers no way to place or wipe it. The
// other two choices build a fresh schedule per operation and leave it behind
// as unwiped garbage, so they would spread more copies of key material over
// the heap, not fewer, at 3x to 300x the cost. Core dumps and ptrace access
// are closed by harden.DisableCoreDumps.

// sealOverhead is what GCM with a random nonce adds: 12-byte nonce + 16-byte tag.
const sealOverhead = 12 + 16

var mlockWarning sync.Once

type keyring struct {
	buf  *memguard.LockedBuffer // nil when mlock was refused
	raw  []byte                 // fallback key memory (mmap, not locked) when buf is nil
	aead cipher.AEAD
}

func newKeyring(logger *slog.Logger) (*keyring, error) {
	k := &keyring{}
	key, err := k.allocKey(logger)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		k.destroy()
		return nil, fmt.Errorf("vault: create cipher: %w", err)
	}
	if k.aead, err = cipher.NewGCMWithRandomNonce(block); err != nil {
		k.destroy()
		return nil, fmt.Errorf("vault: create GCM: %w", err)
	}
	if k.buf != nil {
		k.buf.Freeze()
	}
	return k, nil
}

// allocKey returns 32 random key bytes in locked memory. memguard panics
// (after purging every buffer it owns) when mlock fails, so probe mlock first
// and, when refused, fall back to an anonymous mapping excluded from core
// dumps, warning once per process.
func (k *keyring) allocKey(logger *slog.Logger) ([]byte, error) {
	perr := probeMlock()
	if perr == nil {
		k.buf = memguard.NewBufferRandom(32)
		return k.buf.Bytes(), nil
	}
	mlockWarning.Do(func() {
		logger.Warn("mlock refused; the vault key is not locked in memory and could be swapped out (raise RLIMIT_MEMLOCK / ulimit -l)", "err", perr)
	})
	mem, err := unix.Mmap(-1, 0, unix.Getpagesize(), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return nil, fmt.Errorf("vault: map key memory: %w", err)
	}
	_ = unix.Madvise(mem, unix.MADV_DONTDUMP) // best effort; dumps are also disabled process-wide
	k.raw = mem[:32]
	if _, err := rand.Read(k.raw); err != nil {
		k.destroy()
		return nil, fmt.Errorf("vault: generate key: %w", err)
	}
	return k.raw, nil
}

// probeMlock tries to lock one page, as memguard will.
var probeMlock = func() error {
	mem, err := unix.Mmap(-1, 0, unix.Getpagesize(), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return fmt.Errorf("map probe page: %w", err)
	}
	defer unix.Munmap(mem)
	if err := unix.Mlock(mem); err != nil {
		return fmt.Errorf("mlock: %w", err)
	}
	return unix.Munlock(mem)
}

// seal encrypts plaintext for associated data ad (an Addr's String form)
// into a fresh nonce||ciphertext||tag.
func (k *keyring) seal(plaintext, ad []byte) []byte {
	out := make([]byte, 0, len(plaintext)+sealOverhead)
	return k.aead.Seal(out, nil, plaintext, ad)
}

// open decrypts sealed for address ad into a fresh buffer; on failure
// whatever was written into that buffer is zeroed.
func (k *keyring) open(sealed, ad []byte) ([]byte, error) {
	n := len(sealed) - sealOverhead
	if n < 0 {
		return nil, fmt.Errorf("vault: sealed value for %s is truncated", ad)
	}
	return k.openInto(make([]byte, 0, n), sealed, ad)
}

// openInto decrypts into out's spare capacity, zeroing all of it on failure.
func (k *keyring) openInto(out, sealed, ad []byte) ([]byte, error) {
	pt, err := k.aead.Open(out, nil, sealed, ad)
	if err != nil {
		clear(out[:cap(out)])
		return nil, fmt.Errorf("vault: open value for %s: %w", ad, err)
	}
	return pt, nil
}

func (k *keyring) destroy() {
	if k.buf != nil {
		k.buf.Destroy()
		k.buf = nil
	}
	if k.raw != nil {
		clear(k.raw)
		_ = unix.Munmap(k.raw[:cap(k.raw)])
		k.raw = nil
	}
	k.aead = nil
}
