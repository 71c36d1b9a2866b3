package infisicaltest

import (
	"crypto/rand"
	"encoding/hex"
	"regexp"
	"sort"
	"strings"
	"time"
)

// Perm is what an identity may do in a project (optionally narrowed to
// some environments).
type Perm int

const (
	// PermNone makes the project invisible to the identity.
	PermNone Perm = iota
	// PermRead allows listing and reading secrets and folders.
	PermRead
	// PermReadWrite adds create, update and delete.
	PermReadWrite
)

const isoLayout = "2006-01-02T15:04:05.000Z"

// maxKeyLen is the secrets_v2 key column width; longer keys are a DB error.
const maxKeyLen = 500

var (
	pathSegmentRe = regexp.MustCompile(`^[a-zA-Z0-9\-_]+$`)
	referenceRe   = regexp.MustCompile(`\$\{([a-zA-Z0-9\-_.]+)\}`)
)

type project struct {
	id, slug, name, typ string
	createdAt           time.Time
	envs                []*environment
	approval            map[string]bool // env slug → writes need approval
	tags                map[string]*tag // by slug
}

type environment struct {
	id, name, slug string
	root           *folder
}

type folder struct {
	id        string
	name      string // "root" for an environment's root
	env       *environment
	parent    *folder
	children  map[string]*folder
	secrets   map[string]*secret
	imports   []importRef
	version   int
	createdAt time.Time
	updatedAt time.Time
}

type importRef struct {
	env, path string
}

type secret struct {
	id            string
	key           string
	value         string
	comment       string
	skipMultiline bool
	version       int
	createdAt     time.Time
	updatedAt     time.Time
	actorID       string
	actorType     string
	actorName     string
	tags          []*tag      // in the order set
	metadata      []metaEntry // secretMetadata, in the order set
	// hidden stands for a permission rule that lets identities describe
	// the secret but not read its value (secretValueHidden).
	hidden bool
	// history holds a copy of the secret at every version, oldest first;
	// PruneSecretVersions removes entries.
	history []secret
}

type tag struct {
	id, slug, name string
}

type metaEntry struct {
	key, value string
}

// record appends the secret's current state to its history, after every
// change that added a version.
func (sec *secret) record() {
	snap := *sec
	snap.history = nil
	snap.tags = append([]*tag(nil), sec.tags...)
	snap.metadata = append([]metaEntry(nil), sec.metadata...)
	sec.history = append(sec.history, snap)
}

// atVersion returns the stored copy of version v, or nil once pruned.
func (sec *secret) atVersion(v int) *secret {
	for i := range sec.history {
		if sec.history[i].version == v {
			return &sec.history[i]
		}
	}
	return nil
}

type grant struct {
	perm Perm
	envs map[string]bool // empty: all environments
}

type identity struct {
	id, clientID, clientSecret string
	grants                     map[string]grant // project id → grant
	failures                   []time.Time
	lockedUntil                time.Time
	k8s                        bool     // Kubernetes auth attached
	k8sJWTs                    []string // service-account JWTs the fake TokenReview accepts
}

// session is one token row: renewals mint new strings for the same row, so
// revoking any of them revokes the row, as the backend does.
type session struct {
	clientID  string
	createdAt time.Time
	ttl       time.Duration
	maxTTL    time.Duration
	revoked   bool
	latestExp time.Time // zero: no expiry
}

type token struct {
	sess *session
	exp  time.Time // zero: no expiry
}

func newID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("infisicaltest: crypto/rand: " + err.Error())
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

const alnum = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

func randomAlnum(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("infisicaltest: crypto/rand: " + err.Error())
	}
	for i := range b {
		b[i] = alnum[int(b[i])%len(alnum)]
	}
	return string(b)
}

func newReqID() string { return "req-" + randomAlnum(14) }

func iso(t time.Time) string { return t.UTC().Format(isoLayout) }

// normalizeValue is what the backend does to every written value: surrounding
// whitespace goes, one trailing newline survives if there was one.
func normalizeValue(v string) string {
	if strings.HasSuffix(v, "\n") {
		return strings.TrimSpace(v) + "\n"
	}
	return strings.TrimSpace(v)
}

// keyProblem validates a secret name as SecretNameSchema does (after trim);
// it returns the zod issue code and message, or "" when the key is valid.
func keyProblem(key string) (code, msg string) {
	k := strings.TrimSpace(key)
	if k == "" {
		return "too_small", "String must contain at least 1 character(s)"
	}
	if strings.ContainsAny(k, ":/") {
		return "custom", "Secret name cannot contain colon or forward slash."
	}
	return "", ""
}

// canonicalSecretPath applies the secrets routes' path handling: default
// "/", trim, drop one trailing "/". ok is false when a segment has illegal
// characters (400). Paths without a leading "/" or with empty segments are
// returned as they are: they never match a folder.
func canonicalSecretPath(p string) (string, bool) {
	p = strings.TrimSpace(p)
	if p == "" {
		return "/", true
	}
	if len(p) > 1 && strings.HasSuffix(p, "/") {
		p = p[:len(p)-1]
	}
	for _, seg := range strings.Split(p, "/") {
		if seg != "" && !pathSegmentRe.MatchString(seg) {
			return p, false
		}
	}
	return p, true
}

// canonicalFolderPath is the folder routes' variant: a leading "/" is added.
func canonicalFolderPath(p string) (string, bool) {
	p = strings.TrimSpace(p)
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	return canonicalSecretPath(p)
}

func validFolderName(name string) bool { return pathSegmentRe.MatchString(name) }

// splitPath returns the segments of a canonical path, ok=false if it can
// never name a folder (no leading slash, empty segment).
func splitPath(p string) ([]string, bool) {
	if p == "/" {
		return nil, true
	}
	if !strings.HasPrefix(p, "/") {
		return nil, false
	}
	segs := strings.Split(p[1:], "/")
	for _, s := range segs {
		if s == "" {
			return nil, false
		}
	}
	return segs, true
}

func (p *project) env(slug string) *environment {
	for _, e := range p.envs {
		if e.slug == slug {
			return e
		}
	}
	return nil
}

func (e *environment) lookup(path string) *folder {
	segs, ok := splitPath(path)
	if !ok {
		return nil
	}
	f := e.root
	for _, s := range segs {
		f = f.children[s]
		if f == nil {
			return nil
		}
	}
	return f
}

// ensure creates the folders of path that are missing.
func (e *environment) ensure(path string, now time.Time) *folder {
	segs, ok := splitPath(path)
	if !ok {
		return nil
	}
	f := e.root
	for _, s := range segs {
		c := f.children[s]
		if c == nil {
			c = newFolder(s, e, f, now)
			f.children[s] = c
		}
		f = c
	}
	return f
}

func newFolder(name string, e *environment, parent *folder, now time.Time) *folder {
	return &folder{
		id: newID(), name: name, env: e, parent: parent,
		children: map[string]*folder{}, secrets: map[string]*secret{},
		version: 1, createdAt: now, updatedAt: now,
	}
}

func (f *folder) path() string {
	if f.parent == nil {
		return "/"
	}
	pp := f.parent.path()
	if pp == "/" {
		return "/" + f.name
	}
	return pp + "/" + f.name
}

// walk visits f and its descendants in path order.
func (f *folder) walk(visit func(*folder)) {
	visit(f)
	for _, name := range sortedKeys(f.children) {
		f.children[name].walk(visit)
	}
}

func (f *folder) empty() bool {
	return len(f.children) == 0 && len(f.secrets) == 0 && len(f.imports) == 0
}

func (f *folder) sortedSecrets() []*secret {
	out := make([]*secret, 0, len(f.secrets))
	for _, k := range sortedKeys(f.secrets) {
		out = append(out, f.secrets[k])
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// parseReference splits the inside of ${…} as the backend's
// getAllSecretReferences does: KEY (local: same env and folder), env.KEY or
// env.a.b.KEY, the folder joined as node's path.join("/", …) joins it.
func parseReference(ref string) (env, path, key string, local bool) {
	parts := strings.Split(ref, ".")
	if len(parts) == 1 {
		return "", "", parts[0], true
	}
	return parts[0], joinRefPath(parts[1 : len(parts)-1]), parts[len(parts)-1], false
}
