package fs

import (
	"regexp"
	"strings"
	"syscall"
)

// Names of the rendered views.
const (
	statusName = ".status"
	envName    = ".env"
	jsonName   = ".json"
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

// maxNameBytes is Infisical's key column size.
const maxNameBytes = 500

// checkSecretName applies Infisical's key rules, refusing what the server
// would silently change (surrounding spaces) as well as what it rejects.
func checkSecretName(name string) (syscall.Errno, string) {
	switch {
	case strings.ContainsAny(name, ":/"):
		return syscall.EINVAL, "a secret name may not contain ':' or '/'"
	case strings.TrimSpace(name) != name:
		return syscall.EINVAL, "a secret name may not start or end with white space (Infisical would trim it)"
	case len(name) > maxNameBytes:
		return syscall.EINVAL, "a secret name may be at most 500 bytes"
	case name == "":
		return syscall.EINVAL, "a secret name may not be empty"
	}
	return 0, ""
}

var folderName = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// checkFolderName applies Infisical's folder name rule.
func checkFolderName(name string) (syscall.Errno, string) {
	if !folderName.MatchString(name) {
		return syscall.EINVAL, "a folder name may only hold letters, digits, '-' and '_'"
	}
	return 0, ""
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
