package infisicaltest

import (
	"fmt"
	"strings"
)

// Secret reference expansion, written from Infisical's backend
// backend/src/services/secret-v2-bridge/secret-reference-fns.ts at commit
// 58d2a53eca6391d6c0eb35813b9debc21326b3b8 (expandSecretReferencesFactory,
// before cross-project "${@project.env.KEY}" references and the re-scan
// passes of later versions), with its callers in
// secret-v2-bridge-service.ts (getSecrets, getSecretByName).
//
// What that version does, and this file reproduces:
//   - A value without a match of \$\{([a-zA-Z0-9-_.]+)\} is returned as is,
//     and so is "" (skipMultilineEncoding then changes nothing either).
//   - Expansion is a stack of frames, not a recursion: the root frame is the
//     raw value; each reference found in a frame's value is looked up (one
//     entity: the frame's env and folder; more: env root or
//     path.join("/", middle entities)), its permission checked (a reference
//     the identity may not read fails the whole expansion, even when the
//     secret does not exist), its value pushed as a new frame (one deeper,
//     with its own env and folder) when it holds references and does not
//     close a cycle, and every occurrence of the reference text in the one
//     growing result string is replaced by the referenced raw value.
//   - Frames deeper than 10 are skipped, so their references stay literal.
//   - A reference to a missing secret, or to one whose value is "", stays
//     literal (the backend tests the value's truthiness, not existence).
//   - A cycle is cut per chain: a frame does not descend into a secret
//     already on its own chain, but its reference is still replaced once.
//   - With skipMultilineEncoding a multi-line result is wrapped in double
//     quotes with each newline written as the two characters \n.
//
// The one addition: a bound on frames, so a hostile corpus cannot make the
// test server spin; Infisical has none and no realistic corpus nears it.
const (
	maxExpandDepth  = 10
	maxExpandFrames = 100000
)

// expansionDenied is an expansion that met a reference the identity may
// not read; msg is the backend's ForbiddenRequestError text.
type expansionDenied struct{ msg string }

// expander expands references inside one project for one caller.
type expander struct {
	c *call
	p *project
}

// lookup is fetchSecret: the referenced secret, or nil.
func (x *expander) lookup(env, path, key string) *secret {
	e := x.p.env(env)
	if e == nil {
		return nil
	}
	f := e.lookup(path)
	if f == nil {
		return nil
	}
	return f.secrets[key]
}

// canRead is canExpandValue: read-value permission on env/path/key. The
// fake's grants are per environment; a secret marked hidden stands for a
// rule that lets the identity describe it but not read its value.
func (x *expander) canRead(env string, sec *secret) bool {
	if !x.c.allowed(x.p, env, false) {
		return false
	}
	return sec == nil || !sec.hidden
}

// joinRefPath is node's path.join("/", segs...): empty segments vanish.
func joinRefPath(segs []string) string {
	var kept []string
	for _, s := range segs {
		if s != "" {
			kept = append(kept, s)
		}
	}
	return "/" + strings.Join(kept, "/")
}

type expandFrame struct {
	value, env, path string
	depth            int
	visited          map[string]bool
}

// expandSecret is expandSecretReferences for one secret (env, path, key
// name where its raw value lives).
func (x *expander) expandSecret(value string, skipMultiline bool, env, path, key string) (string, *expansionDenied) {
	if value == "" || !referenceRe.MatchString(value) {
		return value, nil
	}
	out, denied := x.recursivelyExpand(value, env, path, key)
	if denied != nil {
		return "", denied
	}
	if skipMultiline {
		return formatMultiValueEnv(out), nil
	}
	return out, nil
}

func secretID(env, path, key string) string { return env + ":" + path + ":" + key }

func (x *expander) recursivelyExpand(value, env, path, key string) (string, *expansionDenied) {
	stack := []expandFrame{{value: value, env: env, path: path,
		visited: map[string]bool{secretID(env, path, key): true}}}
	expanded := value
	for frames := 0; len(stack) > 0 && frames < maxExpandFrames; frames++ {
		fr := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if fr.depth > maxExpandDepth {
			continue
		}
		for _, syntax := range referenceRe.FindAllString(fr.value, -1) {
			entities := strings.Split(strings.TrimSpace(syntax[2:len(syntax)-1]), ".")
			renv, rpath, rkey := fr.env, fr.path, entities[0]
			if len(entities) > 1 {
				renv = entities[0]
				rpath = joinRefPath(entities[1 : len(entities)-1])
				rkey = entities[len(entities)-1]
			}
			sec := x.lookup(renv, rpath, rkey)
			if !x.canRead(renv, sec) {
				return "", &expansionDenied{msg: fmt.Sprintf(
					"You do not have permission to read secret '%s' in environment '%s' at path '%s', "+
						"which is referenced by secret '%s' in environment '%s' at path '%s'.",
					rkey, renv, rpath, key, env, path)}
			}
			refValue := ""
			if sec != nil {
				refValue = sec.value
			}
			id := secretID(renv, rpath, rkey)
			if referenceRe.MatchString(refValue) && !fr.visited[id] {
				visited := make(map[string]bool, len(fr.visited)+1)
				for k := range fr.visited {
					visited[k] = true
				}
				visited[id] = true
				stack = append(stack, expandFrame{value: refValue, env: renv, path: rpath,
					depth: fr.depth + 1, visited: visited})
			}
			if refValue != "" {
				expanded = strings.ReplaceAll(expanded, syntax, refValue)
			}
		}
	}
	return expanded, nil
}

// formatMultiValueEnv quotes a multi-line value with \n escapes.
func formatMultiValueEnv(v string) string {
	if v == "" || !strings.Contains(v, "\n") {
		return v
	}
	return `"` + strings.ReplaceAll(v, "\n", `\n`) + `"`
}
