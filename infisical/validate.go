package infisical

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxKeySize is the length limit of a secret key: the backend stores keys in
// a varchar(500) column and answers a longer one with a 500, so the client
// refuses it first (counted in bytes, which is never looser than characters).
const MaxKeySize = 500

// ValidateKey checks a secret key against the server's rules (contract §7)
// and the ones infisicalfs adds: Infisical would silently trim surrounding
// whitespace, which would make the file name and the secret differ, so such
// names are refused instead. The error wraps ErrValidation and names the rule.
func ValidateKey(key string) error {
	switch {
	case key == "":
		return keyError(key, "must not be empty")
	case len(key) > MaxKeySize:
		return keyError(key, fmt.Sprintf("must be at most %d bytes", MaxKeySize))
	case !utf8.ValidString(key):
		return keyError(key, "must be valid UTF-8")
	case strings.ContainsAny(key, ":/"):
		return keyError(key, "must not contain ':' or '/'")
	case strings.ContainsRune(key, 0):
		return keyError(key, "must not contain a NUL byte")
	}
	first, _ := utf8.DecodeRuneInString(key)
	last, _ := utf8.DecodeLastRuneInString(key)
	if isTrimmedSpace(first) || isTrimmedSpace(last) {
		return keyError(key, "must not begin or end with whitespace (Infisical would trim it)")
	}
	return nil
}

// isTrimmedSpace reports whether JavaScript's String.prototype.trim, which
// the server applies to keys, would remove r. Go's unicode.IsSpace misses
// only U+FEFF of that set (and adds U+0085, which refusing costs nothing).
func isTrimmedSpace(r rune) bool { return unicode.IsSpace(r) || r == '\uFEFF' }

func keyError(key, rule string) error {
	// A key is a name, not a value, but a rejected one may be any bytes:
	// quote it so the message stays one line.
	if len(key) > 64 {
		key = key[:64] + "…"
	}
	return fmt.Errorf("%w: secret key %q %s", ErrValidation, key, rule)
}

// ValidateFolderName checks a folder name (one path segment): the server
// accepts only ^[A-Za-z0-9_-]+$.
func ValidateFolderName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: folder name must not be empty", ErrValidation)
	}
	for i := 0; i < len(name); i++ {
		if !isFolderByte(name[i]) {
			shown := name
			if len(shown) > 64 {
				shown = shown[:64] + "…"
			}
			return fmt.Errorf("%w: folder name %q may contain only letters, digits, '-' and '_'", ErrValidation, shown)
		}
	}
	return nil
}

func isFolderByte(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '-' || b == '_'
}

// CleanPath returns the canonical form of a folder path, the only form the
// secrets routes match: "/" or "/a/b" (leading '/', no trailing '/', no
// empty segments). "" means the root; a missing leading '/', a trailing '/'
// and repeated '/' are normalized. Every segment must be a valid folder name.
func CleanPath(p string) (string, error) {
	if p == "" || p == "/" {
		return "/", nil
	}
	var b strings.Builder
	b.Grow(len(p) + 1)
	for seg := range strings.SplitSeq(p, "/") {
		if seg == "" {
			continue
		}
		if err := ValidateFolderName(seg); err != nil {
			return "", fmt.Errorf("path %q: %w", shorten(p), err)
		}
		b.WriteByte('/')
		b.WriteString(seg)
	}
	if b.Len() == 0 {
		return "/", nil
	}
	return b.String(), nil
}

func shorten(s string) string {
	if len(s) > 128 {
		return s[:128] + "…"
	}
	return s
}
