package access

import (
	"errors"
	"fmt"
	"path"
	"strings"
)

// Glob matches slash-separated paths segment by segment: a segment that is
// exactly `**` matches any number of segments (none included); any other
// segment is a path.Match pattern (`*`, `?`, `[a-z]`, `\` escapes) over one
// segment. `*` matches names that start with a dot too, so `prod/*` covers
// `prod/.env`. Leading and trailing slashes are ignored on both sides.
type Glob struct {
	src  string
	segs []globSeg
}

type globSeg struct {
	s       string
	any     bool // `**`
	literal bool // no metacharacter: compared with ==
}

// CompileGlob checks a pattern once, so that Match never meets a bad one.
func CompileGlob(pattern string) (Glob, error) {
	p := strings.Trim(pattern, "/")
	if p == "" {
		return Glob{}, errors.New("empty pattern: use ** for every path")
	}
	g := Glob{src: pattern}
	for _, s := range strings.Split(p, "/") {
		switch {
		case s == "":
			return Glob{}, fmt.Errorf("pattern %q: empty segment (//)", pattern)
		case s == "**":
			// Consecutive ** mean the same as one.
			if n := len(g.segs); n > 0 && g.segs[n-1].any {
				continue
			}
			g.segs = append(g.segs, globSeg{s: s, any: true})
			continue
		case strings.Contains(s, "**"):
			return Glob{}, fmt.Errorf("pattern %q: ** must be a whole segment (a/**/b), not part of %q", pattern, s)
		case s == "." || s == "..":
			return Glob{}, fmt.Errorf("pattern %q: . and .. segments are not allowed", pattern)
		}
		if _, err := path.Match(s, ""); err != nil {
			return Glob{}, fmt.Errorf("pattern %q: bad segment %q: %w", pattern, s, err)
		}
		g.segs = append(g.segs, globSeg{s: s, literal: !strings.ContainsAny(s, `*?[\`)})
	}
	return g, nil
}

// String is the pattern as written.
func (g Glob) String() string { return g.src }

// Match reports whether the path matches the whole pattern.
func (g Glob) Match(p string) bool {
	return g.matchParts(splitPath(p))
}

// splitPath splits a mount path into its segments; "" and "/" are the root
// (no segments).
func splitPath(p string) []string {
	p = strings.Trim(p, "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

// matchParts is the classic wildcard algorithm lifted from bytes to
// segments: remember the last `**` and, on a mismatch, let it swallow one
// more segment. Linear in practice, never exponential.
func (g Glob) matchParts(parts []string) bool {
	i, j := 0, 0
	star, starJ := -1, 0
	for j < len(parts) {
		if i < len(g.segs) {
			s := g.segs[i]
			if s.any {
				star, starJ = i, j
				i++
				continue
			}
			if segMatch(s, parts[j]) {
				i++
				j++
				continue
			}
		}
		if star < 0 {
			return false
		}
		starJ++
		i, j = star+1, starJ
	}
	for i < len(g.segs) && g.segs[i].any {
		i++
	}
	return i == len(g.segs)
}

func segMatch(s globSeg, part string) bool {
	if s.literal {
		return s.s == part
	}
	ok, _ := path.Match(s.s, part) // checked in CompileGlob
	return ok
}
