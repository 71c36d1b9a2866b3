package csi

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// memToken holds a service-account token where the infisical client's
// Kubernetes auth can read it at every login: that client reads a file
// path, and /proc/self/fd/N of an anonymous memory file (memfd) is a path
// that exists on no disk and that only this process (root, non-dumpable)
// can open. Set swaps a new memfd onto the same descriptor number with
// dup3, so a login reads the old token or the new one, never half of each.
type memToken struct {
	fd int
}

func memfdWith(jwt string) (int, error) {
	fd, err := unix.MemfdCreate("infisicalfs-sa-token", unix.MFD_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("memfd for the service-account token: %w", err)
	}
	for b := []byte(jwt); len(b) > 0; {
		n, err := unix.Write(fd, b)
		if err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("write the service-account token to its memfd: %w", err)
		}
		b = b[n:]
	}
	return fd, nil
}

func newMemToken(jwt string) (*memToken, error) {
	fd, err := memfdWith(jwt)
	if err != nil {
		return nil, err
	}
	return &memToken{fd: fd}, nil
}

// Path is what KubernetesTokenPath names.
func (m *memToken) Path() string { return fmt.Sprintf("/proc/self/fd/%d", m.fd) }

// Set replaces the token.
func (m *memToken) Set(jwt string) error {
	fd, err := memfdWith(jwt)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := unix.Dup3(fd, m.fd, unix.O_CLOEXEC); err != nil {
		return fmt.Errorf("swap in the new service-account token: %w", err)
	}
	return nil
}

// Close frees the memory file.
func (m *memToken) Close() error { return unix.Close(m.fd) }
