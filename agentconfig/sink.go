package agentconfig

import (
	"fmt"
	"os"
	"path/filepath"
)

// WriteToken writes the access token to a file sink as the agent does, but
// with mode 0600 (the agent's os.WriteFile uses 0644) and atomically: a
// temporary file in the same directory, fsync, rename, so a reader never
// sees half a token.
func WriteToken(path string, token []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("token sink %s: %w", path, err)
	}
	tmp := f.Name()
	fail := func(err error) error {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("token sink %s: %w", path, err)
	}
	if err := f.Chmod(0o600); err != nil {
		return fail(err)
	}
	if _, err := f.Write(token); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("token sink %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("token sink %s: %w", path, err)
	}
	return nil
}

// WriteSinks writes the token to every sink of s, returning the first
// error after trying them all.
func (s *Settings) WriteSinks(token []byte) error {
	var first error
	for _, p := range s.Sinks {
		if err := WriteToken(p, token); err != nil && first == nil {
			first = err
		}
	}
	return first
}
