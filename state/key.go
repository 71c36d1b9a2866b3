package state

import (
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Where the per-mount hash key comes from (MountKey), in order:
//
//  1. Derived with HKDF-SHA256 from the client secret (universal auth), with
//     the mount point as context. Nothing is stored anywhere, the key
//     survives reboots (so start-up change detection compares hashes), and
//     whoever can recompute it holds the credential that reads the values
//     themselves, so the hashes give them nothing more. A rotated client
//     secret gives a new key: the file says so by its key id and is
//     re-hashed from the first listing.
//  2. Without a client secret (token or Kubernetes auth: their credentials
//     rotate, so nothing stable to derive from), a random key kept in the
//     kernel's user keyring under "infisicalfs:state-hash:<mount point>".
//     It is never on disk, so a copied state file cannot be guessed at
//     offline; it lives until reboot (or the user's last process), after
//     which a new key is made and start-up detection falls back to
//     versions.
//  3. Where the keyring is not allowed (Docker's and Kubernetes' default
//     seccomp profiles refuse keyctl), a random key for this process only,
//     with the same fallback to versions at every start.
//
// A key file beside the state file was rejected: whoever reads one reads
// the other, and the hashes would be as guessable as plain ones.

// Key sources MountKey reports.
const (
	KeyFromClientSecret = "client-secret"
	KeyFromKeyring      = "keyring"
	KeyEphemeral        = "process"
)

// MountKey returns the hash key of the mount at mountpoint and where it
// came from (KeyFromClientSecret, KeyFromKeyring or KeyEphemeral). It never
// fails: the last resort is a key for this process only.
func MountKey(clientSecret []byte, mountpoint string) (key []byte, source string) {
	mnt := mountpoint
	if abs, err := filepath.Abs(mountpoint); err == nil {
		mnt = abs
	}
	if len(clientSecret) > 0 {
		k, err := DeriveKey(clientSecret, mnt)
		if err == nil {
			return k, KeyFromClientSecret
		}
	}
	if k, err := keyringKey("infisicalfs:state-hash:" + mnt); err == nil {
		return k, KeyFromKeyring
	}
	k := make([]byte, KeySize)
	_, _ = rand.Read(k) // crypto/rand.Read never fails (Go 1.24+)
	return k, KeyEphemeral
}

// DeriveKey is source 1 of MountKey: HKDF-SHA256 of the client secret with a
// fixed salt naming this use and the absolute mount point as info, so two
// mounts of the same identity get unrelated keys.
func DeriveKey(clientSecret []byte, mountpoint string) ([]byte, error) {
	k, err := hkdf.Key(sha256.New, clientSecret, []byte("infisicalfs state hash v1"), mountpoint, KeySize)
	if err != nil {
		return nil, fmt.Errorf("state: derive the hash key: %w", err)
	}
	return k, nil
}

// keyPerm lets the possessor and the owning user do everything with the
// key: a service started with a private session keyring (systemd's default)
// does not possess the user keyring's keys, and reads them as their user.
// (KEY_POS_ALL | KEY_USR_ALL of <linux/keyctl.h>; x/sys/unix lacks them.)
const keyPerm = 0x3f000000 | 0x003f0000

// keyringKey finds desc in the user keyring, or adds a random key there.
func keyringKey(desc string) ([]byte, error) {
	// A key of another size, or one we cannot read, is replaced below:
	// add_key updates a key of the same description.
	if id, err := unix.KeyctlSearch(unix.KEY_SPEC_USER_KEYRING, "user", desc, 0); err == nil {
		buf := make([]byte, KeySize+1) // one more, to see a payload of another size
		if n, err := unix.KeyctlBuffer(unix.KEYCTL_READ, id, buf, 0); err == nil && n == KeySize {
			return buf[:KeySize], nil
		}
	} else if !errors.Is(err, unix.ENOKEY) {
		return nil, fmt.Errorf("state: search the user keyring: %w", err)
	}
	k := make([]byte, KeySize)
	_, _ = rand.Read(k)
	id, err := unix.AddKey("user", desc, k, unix.KEY_SPEC_USER_KEYRING)
	if err != nil {
		return nil, fmt.Errorf("state: add a key to the user keyring: %w", err)
	}
	if err := unix.KeyctlSetperm(id, keyPerm); err != nil {
		return nil, fmt.Errorf("state: set the key's permissions: %w", err)
	}
	return k, nil
}

// HasherFor is the daemon's one call: the hasher of state_hash = scheme for
// the mount at mountpoint, and where its key came from ("" for HashSHA256).
// clientSecret may be empty (token or Kubernetes auth).
func HasherFor(scheme string, clientSecret []byte, mountpoint string) (*Hasher, string, error) {
	switch scheme {
	case HashSHA256:
		return PlainHasher(), "", nil
	case HashHMAC:
	default:
		return nil, "", fmt.Errorf("state: unknown hash scheme %q (want %q or %q)", scheme, HashHMAC, HashSHA256)
	}
	key, source := MountKey(clientSecret, mountpoint)
	defer clear(key)
	h, err := NewHasher(scheme, key)
	if err != nil {
		return nil, "", err
	}
	return h, source, nil
}
