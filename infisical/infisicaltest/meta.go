package infisicaltest

import "fmt"

// SecretMeta is what SetSecretMeta changes; nil fields stay as they are.
type SecretMeta struct {
	Comment               *string
	Tags                  []string    // tag slugs, in order; non-nil replaces the set ([]string{} clears it)
	Metadata              [][2]string // key/value pairs, in order; non-nil replaces them
	SkipMultilineEncoding *bool
}

// SetSecretMeta changes a secret's comment, tags, metadata or
// skipMultilineEncoding out of band (as another user would). Like every
// update on the backend it adds a version, which it returns. Tags are
// created in the project on first use (name = slug). It panics on a
// missing secret.
func (s *Server) SetSecretMeta(projectID, env, path, key string, m SecretMeta) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.mustProject(projectID)
	sec := s.mustSecret(projectID, env, path, key)
	if m.Comment != nil {
		sec.comment = *m.Comment
	}
	if m.Tags != nil {
		sec.tags = sec.tags[:0:0]
		for _, slug := range m.Tags {
			t := p.tags[slug]
			if t == nil {
				t = &tag{id: newID(), slug: slug, name: slug}
				p.tags[slug] = t
			}
			sec.tags = append(sec.tags, t)
		}
	}
	if m.Metadata != nil {
		sec.metadata = sec.metadata[:0:0]
		for _, kv := range m.Metadata {
			sec.metadata = append(sec.metadata, metaEntry{key: kv[0], value: kv[1]})
		}
	}
	if m.SkipMultilineEncoding != nil {
		sec.skipMultiline = *m.SkipMultilineEncoding
	}
	sec.version++
	sec.updatedAt = s.now()
	sec.record()
	return sec.version
}

// SetValueHidden marks a secret as one every identity may see but not read
// (a permission rule allowing describe, denying read-value): lists show it
// with secretValueHidden and the placeholder value, get-one with values is
// a 403, and expanding a reference to it is refused. Not a version change.
func (s *Server) SetValueHidden(projectID, env, path, key string, hidden bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mustSecret(projectID, env, path, key).hidden = hidden
}

// SecretVersions lists the versions still stored for a secret, oldest
// first.
func (s *Server) SecretVersions(projectID, env, path, key string) []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []int
	for _, h := range s.mustSecret(projectID, env, path, key).history {
		out = append(out, h.version)
	}
	return out
}

// PruneSecretVersions keeps only the newest keep versions of a secret (as
// a project's version retention limit does) and returns how many it
// removed. A pruned version then answers 404 on get-one ?version=N.
func (s *Server) PruneSecretVersions(projectID, env, path, key string, keep int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	sec := s.mustSecret(projectID, env, path, key)
	n := max(len(sec.history)-max(keep, 0), 0)
	sec.history = append(sec.history[:0:0], sec.history[n:]...)
	return n
}

func (s *Server) mustSecret(projectID, env, path, key string) *secret {
	f := s.mustEnv(projectID, env).lookup(mustPath(path))
	if f == nil || f.secrets[key] == nil {
		panic(fmt.Sprintf("infisicaltest: no secret %s in %s %s", key, env, path))
	}
	return f.secrets[key]
}

// SecretHistoryValues returns the value of every version of a secret the
// server still keeps, oldest first (since its last creation: a deleted and
// recreated secret starts again at version 1).
func (s *Server) SecretHistoryValues(projectID, env, path, key string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, h := range s.mustSecret(projectID, env, path, key).history {
		out = append(out, h.value)
	}
	return out
}
