package fs

import (
	"regexp"
	"strings"
)

// sedTemp matches GNU sed's in-place temporary file, "sed" and six characters.
var sedTemp = regexp.MustCompile(`^sed[A-Za-z0-9]{6}$`)

// scratchPattern reports whether a name looks like an editor's or tool's
// scratch file: such files stay in memory, are never pushed, and are gone at
// unmount. A secret that already exists under such a name is still a secret.
func scratchPattern(name string) bool {
	switch {
	case strings.HasPrefix(name, "."),
		strings.HasSuffix(name, "~"),
		strings.HasSuffix(name, ".swp"),
		strings.HasSuffix(name, ".swx"),
		strings.HasSuffix(name, ".tmp"),
		name == "4913",
		sedTemp.MatchString(name):
		return true
	}
	return false
}

// shellName reports whether a key can be a shell variable, so .env can hold it.
func shellName(k string) bool {
	if k == "" {
		return false
	}
	for i, c := range k {
		switch {
		case c == '_', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
