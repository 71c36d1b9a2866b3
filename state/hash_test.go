package state

import (
	"bytes"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestHasher(t *testing.T) {
	// Reference from openssl dgst -sha256 -mac HMAC -macopt hexkey:0707…07.
	if got := testHasher.Hash("DATABASE_URL", []byte("postgres://x")); got != "d124573e8d77830812c2a91a7ccde8ba9a2c6a17364d11011c5c16d62cf25341" {
		t.Errorf("HMAC = %s", got)
	}
	if got := PlainHasher().Hash("DATABASE_URL", []byte("postgres://x")); got != Hash("DATABASE_URL", []byte("postgres://x")) {
		t.Errorf("plain hasher = %s, want the original design's hash", got)
	}
	// Reused hash states give the same answers (the pool resets them).
	for range 3 {
		if testHasher.Hash("K", []byte("v")) != testHasher.Hash("K", []byte("v")) {
			t.Fatal("hash not stable")
		}
	}
	other := mustHasher(HashHMAC, bytes.Repeat([]byte{8}, KeySize))
	if other.KeyID() == testHasher.KeyID() || len(testHasher.KeyID()) != 16 || PlainHasher().KeyID() != "" {
		t.Errorf("key ids %q %q %q", testHasher.KeyID(), other.KeyID(), PlainHasher().KeyID())
	}
	if strings.Contains(hex.EncodeToString(bytes.Repeat([]byte{7}, KeySize)), testHasher.KeyID()) {
		t.Error("the key id is a piece of the key")
	}
	for _, bad := range []struct {
		scheme string
		key    []byte
	}{{HashHMAC, nil}, {HashHMAC, make([]byte, 16)}, {HashSHA256, make([]byte, 32)}, {"md5", nil}} {
		if _, err := NewHasher(bad.scheme, bad.key); err == nil {
			t.Errorf("NewHasher(%q, %d bytes) accepted", bad.scheme, len(bad.key))
		}
	}
}

func TestMountKeyFromClientSecret(t *testing.T) {
	k1, src := MountKey([]byte("client-secret-1"), "/mnt/a")
	if src != KeyFromClientSecret || len(k1) != KeySize {
		t.Fatalf("source %q, %d bytes", src, len(k1))
	}
	again, _ := MountKey([]byte("client-secret-1"), "/mnt/a")
	otherMount, _ := MountKey([]byte("client-secret-1"), "/mnt/b")
	otherSecret, _ := MountKey([]byte("client-secret-2"), "/mnt/a")
	if !bytes.Equal(k1, again) {
		t.Error("the derived key is not stable: it would not survive a restart")
	}
	if bytes.Equal(k1, otherMount) || bytes.Equal(k1, otherSecret) {
		t.Error("two mounts or two secrets share a key")
	}
	if bytes.Contains(k1, []byte("client-secret-1")) {
		t.Error("the key holds the secret")
	}
}

// Without a client secret the key lives in the kernel user keyring: the
// same key for the same mount point, from this process or the next.
func TestMountKeyFromKeyring(t *testing.T) {
	mnt := t.TempDir()
	desc := "infisicalfs:state-hash:" + mnt
	t.Cleanup(func() {
		if id, err := unix.KeyctlSearch(unix.KEY_SPEC_USER_KEYRING, "user", desc, 0); err == nil {
			_, _ = unix.KeyctlInt(unix.KEYCTL_UNLINK, id, unix.KEY_SPEC_USER_KEYRING, 0, 0)
		}
	})
	k1, src := MountKey(nil, mnt)
	if src == KeyEphemeral {
		t.Skip("no kernel keyring here (seccomp?): the key is per process, as documented")
	}
	if src != KeyFromKeyring || len(k1) != KeySize {
		t.Fatalf("source %q, %d bytes", src, len(k1))
	}
	k2, src2 := MountKey(nil, mnt)
	if src2 != KeyFromKeyring || !bytes.Equal(k1, k2) {
		t.Fatal("the keyring gave another key for the same mount")
	}
	k3, _ := MountKey(nil, mnt+"-other")
	if bytes.Equal(k1, k3) {
		t.Error("two mounts share a keyring key")
	}
	if id, err := unix.KeyctlSearch(unix.KEY_SPEC_USER_KEYRING, "user", desc+"-other", 0); err == nil {
		_, _ = unix.KeyctlInt(unix.KEYCTL_UNLINK, id, unix.KEY_SPEC_USER_KEYRING, 0, 0)
	}
	// Nothing of it on disk: the key is in no file under the mount's state
	// directory after a save.
	path := filepath.Join(t.TempDir(), FileName)
	st, err := OpenWith(path, Options{Hasher: mustHasher(HashHMAC, k1)})
	if err != nil {
		t.Fatal(err)
	}
	st.Update(sampleUpdate)
	if err := st.Save(); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if bytes.Contains(b, k1) || bytes.Contains(b, []byte(hex.EncodeToString(k1))) {
		t.Error("the key reached the state file")
	}
}

// TestNewKeyForgetsOldHashes: a file saved under one key and opened under
// another keeps its versions, forgets its hashes (they cannot compare),
// names the new key, and is rewritten on the next save; under the same key
// nothing is forgotten and nothing is due.
func TestNewKeyForgetsOldHashes(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	s, _ := mustOpen(t, path)
	s.UpdateRecords(func(f *File) bool { sampleUpdate(f); return true })
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}

	same, _ := mustOpen(t, path)
	if rec := same.Snapshot().Secrets["p1/prod/API_KEY"]; rec.Hash == "" {
		t.Fatal("the same key forgot the hashes")
	}
	if records, any := same.Dirty(); records || any {
		t.Fatal("opening under the same key left something to save")
	}

	other := mustHasher(HashHMAC, bytes.Repeat([]byte{9}, KeySize))
	s2, log := mustOpenWith(t, path, other)
	f := s2.Snapshot()
	rec := f.Secrets["p1/prod/API_KEY"]
	if rec.Hash != "" || rec.Version != 2 || f.HashKeyID != other.KeyID() || f.HashScheme != HashHMAC {
		t.Fatalf("under a new key: record %+v, file key %q scheme %q", rec, f.HashKeyID, f.HashScheme)
	}
	if !strings.Contains(log.String(), "another key") {
		t.Errorf("the re-key is not logged: %s", log)
	}
	if saved, err := s2.SaveIfDue(time.Hour); !saved || err != nil {
		t.Fatalf("a re-keyed file is not saved at once: %v %v", saved, err)
	}
	b, _ := os.ReadFile(path)
	if bytes.Contains(b, []byte(testHasher.KeyID())) || !bytes.Contains(b, []byte(other.KeyID())) {
		t.Fatalf("the file still names the old key:\n%s", b)
	}

	// To the plain scheme: the file says sha256 and carries no key id.
	s3, _ := mustOpenWith(t, path, PlainHasher())
	if _, err := s3.SaveIfDue(time.Hour); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(path)
	if !bytes.Contains(b, []byte(`"hash_scheme": "sha256"`)) || bytes.Contains(b, []byte("hash_key_id")) {
		t.Fatalf("plain scheme not recorded:\n%s", b)
	}
}

// TestSaveIfDue: soft changes wait for their age, record changes do not,
// and a save clears both.
func TestSaveIfDue(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	s, _ := mustOpen(t, path)
	if saved, _ := s.SaveIfDue(0); saved {
		t.Fatal("a fresh store with nothing changed saved")
	}
	s.UpdateRecords(func(f *File) bool { return false })
	s.Update(func(f *File) { f.PullCount++ })
	if saved, _ := s.SaveIfDue(time.Hour); saved {
		t.Fatal("a counter change saved before its age")
	}
	if _, err := os.Stat(path); err == nil {
		t.Fatal("the file was written")
	}
	time.Sleep(20 * time.Millisecond)
	if saved, err := s.SaveIfDue(10 * time.Millisecond); !saved || err != nil {
		t.Fatalf("an old counter change was not saved: %v %v", saved, err)
	}
	if records, any := s.Dirty(); records || any {
		t.Fatal("still dirty after the save")
	}
	fi1, _ := os.Stat(path)
	s.UpdateRecords(func(f *File) bool { f.Secrets["p/e/K"] = Secret{Hash: "h", Version: 1}; return true })
	if saved, err := s.SaveIfDue(time.Hour); !saved || err != nil {
		t.Fatalf("a record change was not saved at once: %v %v", saved, err)
	}
	fi2, _ := os.Stat(path)
	if os.SameFile(fi1, fi2) {
		t.Error("the file was not replaced")
	}
	if n := s.Saves(); n != 2 {
		t.Errorf("saves = %d, want 2", n)
	}
	// A soft change made while a save runs is not lost: the generation
	// saved is the one copied, not the newest.
	s.Update(func(f *File) { f.PushCount = 5 })
	if saved, _ := s.SaveIfDue(0); !saved {
		t.Fatal("SaveIfDue(0) did not save a pending change")
	}
	s2, _ := mustOpen(t, path)
	if f := s2.Snapshot(); f.PushCount != 5 || f.Secrets["p/e/K"].Version != 1 {
		t.Fatalf("reloaded %+v", f)
	}
}

func TestHasherFor(t *testing.T) {
	h, src, err := HasherFor(HashHMAC, []byte("s3cret"), "/mnt/x")
	if err != nil || src != KeyFromClientSecret || h.Scheme() != HashHMAC {
		t.Fatalf("%v %q %v", h, src, err)
	}
	again, _, _ := HasherFor(HashHMAC, []byte("s3cret"), "/mnt/x")
	if again.KeyID() != h.KeyID() || again.Hash("K", []byte("v")) != h.Hash("K", []byte("v")) {
		t.Error("the same secret and mount gave another key")
	}
	if p, src, err := HasherFor(HashSHA256, []byte("s3cret"), "/mnt/x"); err != nil || src != "" || p.Hash("K", []byte("v")) != Hash("K", []byte("v")) {
		t.Errorf("sha256: %q %v", src, err)
	}
	if _, _, err := HasherFor("md5", nil, "/mnt/x"); err == nil {
		t.Error("an unknown scheme was accepted")
	}
}
