package csi

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Volume attributes (volumeAttributes in the pod spec). Keys are
// case-sensitive, as Kubernetes' are.
const (
	AttrProject    = "project"    // project slug or id (required)
	AttrEnv        = "env"        // environment slug (required)
	AttrPath       = "path"       // folder to show as the volume root (default "/")
	AttrReadOnly   = "readOnly"   // "true" (default) or "false"
	AttrFileMode   = "fileMode"   // octal permission bits of every file, e.g. "0440"
	AttrUID        = "uid"        // owner of every file (default 0)
	AttrGID        = "gid"        // group of every file (default: the pod's fsGroup, else 0)
	AttrIdentityID = "identityId" // Kubernetes auth: the Infisical machine identity's id
	AttrAudience   = "audience"   // Kubernetes auth: which tokenRequests audience to use
	AttrTemplates  = "templates"  // JSON list of {"path", "content", "mode"}: rendered files in the volume
)

// Keys kubelet adds with podInfoOnMount and tokenRequests.
const (
	kubeletPrefix  = "csi.storage.k8s.io/"
	ctxPodName     = kubeletPrefix + "pod.name"
	ctxPodNS       = kubeletPrefix + "pod.namespace"
	ctxPodUID      = kubeletPrefix + "pod.uid"
	ctxSAName      = kubeletPrefix + "serviceAccount.name"
	ctxSATokens    = kubeletPrefix + "serviceAccount.tokens"
	ctxEphemeral   = kubeletPrefix + "ephemeral"
	secretClientID = "clientId"     // nodePublishSecretRef data keys,
	secretClientSe = "clientSecret" // the names Infisical's own operator uses
)

// DefaultAudience is the tokenRequests audience the shipped CSIDriver asks
// for; the Infisical identity's Kubernetes auth must allow it.
const DefaultAudience = "infisical"

var userAttrs = []string{AttrProject, AttrEnv, AttrPath, AttrReadOnly, AttrFileMode, AttrUID, AttrGID, AttrIdentityID, AttrAudience, AttrTemplates}

// Scope is what a source syncs. Together with the identity fingerprint and
// the URL it is the registry key.
type Scope struct {
	Project string
	Env     string
	Path    string // "/" or "/a/b", cleaned
	// Templates is the volume's templates as canonical JSON ([]Template),
	// "" for none: they render inside the source, so volumes share a
	// source only if their templates are the same.
	Templates string
}

// Template is one rendered file of a volume (the config's [[template]]
// without source files or on_change commands: a pod may not name files
// or run programs on the node).
type Template struct {
	Path    string `json:"path"`
	Content string `json:"content"`
	Mode    string `json:"mode,omitempty"`
}

const maxTemplates = 32

// View is what differs between mounts of one source.
type View struct {
	ReadOnly bool
	FileMode uint32 // permission bits
	UID, GID uint32
}

// AuthMethod says how a source logs in.
type AuthMethod string

// Auth methods, as config's auth_method spells them.
const (
	AuthUniversal  AuthMethod = "universal"
	AuthKubernetes AuthMethod = "kubernetes"
)

// Credentials are one volume's Infisical identity. They are never logged:
// String and LogValue redact the secret parts.
type Credentials struct {
	Method       AuthMethod
	ClientID     string // universal
	ClientSecret string // universal
	IdentityID   string // kubernetes
	JWT          string // kubernetes: the pod's service-account token
	// who is the token's subject (namespace/serviceaccount), so that pods
	// of one service account share a source although each has its own
	// token; "" when kubelet did not say (then the token itself decides).
	who string
}

// String never shows the client secret or the token.
func (c Credentials) String() string {
	switch c.Method {
	case AuthKubernetes:
		return fmt.Sprintf("kubernetes auth (identity %s, %s)", c.IdentityID, orUnknown(c.who))
	default:
		return fmt.Sprintf("universal auth (client id %s)", c.ClientID)
	}
}

// LogValue keeps slog from printing the fields.
func (c Credentials) LogValue() slog.Value { return slog.StringValue(c.String()) }

func orUnknown(s string) string {
	if s == "" {
		return "service account unknown"
	}
	return "service account " + s
}

// fingerprintKey makes fingerprints unguessable offline: they live in memory
// only, but a plain hash of a short client secret would be a dictionary
// lookup away if one ever leaked into a log.
var fingerprintKey = sync.OnceValue(func() []byte {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		panic("csi: no randomness: " + err.Error())
	}
	return k
})

// Fingerprint names the identity without revealing it: HMAC-SHA256 under a
// per-process key. Two volumes with the same fingerprint may share a source.
// For Kubernetes auth it covers the identity and the token's service
// account, not the token: every pod gets its own token, and pods of one
// service account hold the same rights.
func (c Credentials) Fingerprint() string {
	m := hmac.New(sha256.New, fingerprintKey())
	switch c.Method {
	case AuthKubernetes:
		who := c.who
		if who == "" {
			who = "token:" + c.JWT
		}
		fmt.Fprintf(m, "kubernetes\x00%s\x00%s", c.IdentityID, who)
	default:
		fmt.Fprintf(m, "universal\x00%s\x00%s", c.ClientID, c.ClientSecret)
	}
	return hex.EncodeToString(m.Sum(nil)[:16])
}

// Volume is one parsed NodePublishVolume request.
type Volume struct {
	ID     string
	Target string
	Scope  Scope
	View   View
	Creds  Credentials
	Pod    string // namespace/name, for logs
}

// Key is the registry key of the volume's source.
func (v *Volume) Key(url string) Key {
	return Key{Identity: v.Creds.Fingerprint(), URL: url, Scope: v.Scope}
}

// same reports whether a repeated publish asks for the same mount, which
// makes it a no-op; otherwise the target is taken by something else.
// A Kubernetes-auth republish brings a new token for the same identity:
// the same mount, whatever the token.
func (v *Volume) same(o *Volume) bool {
	if v.ID != o.ID || v.Scope != o.Scope || v.View != o.View || v.Creds.Method != o.Creds.Method {
		return false
	}
	if v.Creds.Method == AuthKubernetes {
		return v.Creds.IdentityID == o.Creds.IdentityID && v.Creds.who == o.Creds.who
	}
	return v.Creds.Fingerprint() == o.Creds.Fingerprint()
}

// AttrError is a refused attribute; the node service answers InvalidArgument.
type AttrError struct {
	Key string
	Msg string
}

func (e *AttrError) Error() string {
	if e.Key == "" {
		return "volume attributes: " + e.Msg
	}
	return fmt.Sprintf("volume attribute %q: %s", e.Key, e.Msg)
}

func attrErr(key, format string, a ...any) error {
	return &AttrError{Key: key, Msg: fmt.Sprintf(format, a...)}
}

// PublishInput is what ParseVolume reads from a NodePublishVolumeRequest;
// a plain struct so the parser can be fuzzed without gRPC types.
type PublishInput struct {
	VolumeID    string
	Target      string
	Attrs       map[string]string // volume_context
	Secrets     map[string]string // from nodePublishSecretRef
	ReadOnly    bool              // the request's readonly flag (the pod's volume readOnly)
	MountGroup  string            // VolumeCapability.Mount.VolumeMountGroup: the pod's fsGroup
	MountFlags  []string
	FsType      string
	IsBlock     bool
	Unspecified bool // no access type at all
}

// maxAttr bounds every attribute and secret so a hostile spec cannot make
// the privileged driver hold megabytes per volume.
const maxAttr = 64 << 10

// ParseVolume validates the request and returns the volume, or an error
// that names what is wrong (an *AttrError for anything the user wrote).
// Errors never include a secret or token value.
func ParseVolume(in PublishInput) (*Volume, error) {
	if in.IsBlock {
		return nil, attrErr("", "block volumes are not supported: use a mount volume")
	}
	if in.FsType != "" {
		return nil, attrErr("", "fsType %q is not supported: infisicalfs is its own filesystem", in.FsType)
	}
	if len(in.MountFlags) > 0 {
		return nil, attrErr("", "mount flags %q are not supported", in.MountFlags)
	}
	v := &Volume{ID: in.VolumeID, Target: in.Target}
	for k, val := range in.Attrs {
		if strings.HasPrefix(k, kubeletPrefix) {
			continue // kubelet's own keys: read below, new ones ignored
		}
		if !slices.Contains(userAttrs, k) {
			return nil, attrErr(k, "unknown attribute; known: %s", strings.Join(userAttrs, ", "))
		}
		if len(val) > maxAttr {
			return nil, attrErr(k, "longer than %d bytes", maxAttr)
		}
	}
	a := in.Attrs
	var err error
	if v.Scope, err = parseScope(a); err != nil {
		return nil, err
	}
	if v.View, err = parseView(a, in.ReadOnly, in.MountGroup); err != nil {
		return nil, err
	}
	if v.Creds, err = parseCreds(a, in.Secrets); err != nil {
		return nil, err
	}
	if ns, name := a[ctxPodNS], a[ctxPodName]; ns != "" || name != "" {
		v.Pod = ns + "/" + name
	}
	return v, nil
}

// slugOK accepts Infisical's slugs and ids: letters, digits, '-', '_'.
func slugOK(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

func parseScope(a map[string]string) (Scope, error) {
	s := Scope{Project: a[AttrProject], Env: a[AttrEnv], Path: "/"}
	if s.Project == "" {
		return s, attrErr(AttrProject, "required: the project's slug or id")
	}
	if !slugOK(s.Project) {
		return s, attrErr(AttrProject, "%q is not a project slug or id (letters, digits, '-', '_')", s.Project)
	}
	if s.Env == "" {
		return s, attrErr(AttrEnv, "required: the environment's slug, e.g. dev or prod")
	}
	if !slugOK(s.Env) {
		return s, attrErr(AttrEnv, "%q is not an environment slug (letters, digits, '-', '_')", s.Env)
	}
	if p, ok := a[AttrPath]; ok && p != "" && p != "/" {
		// Infisical's folder rule: alphanumerics, '-' and '_' per segment.
		if !strings.HasPrefix(p, "/") {
			return s, attrErr(AttrPath, "%q must start with /", p)
		}
		segs := strings.Split(strings.Trim(p, "/"), "/")
		for _, seg := range segs {
			if !slugOK(seg) {
				return s, attrErr(AttrPath, "%q: folder names are letters, digits, '-' and '_'", p)
			}
		}
		if len(segs) > 20 {
			return s, attrErr(AttrPath, "deeper than Infisical's 20 levels")
		}
		s.Path = path.Clean(p)
	}
	if raw, ok := a[AttrTemplates]; ok && raw != "" {
		ts, err := parseTemplates(raw)
		if err != nil {
			return s, err
		}
		b, _ := json.Marshal(ts)
		s.Templates = string(b)
	}
	return s, nil
}

// parseTemplates reads the templates attribute strictly: unknown fields,
// unclean paths, duplicates and bad modes are refused here, with the
// attribute named; the template syntax is checked when the source opens.
func parseTemplates(raw string) ([]Template, error) {
	dec := json.NewDecoder(strings.NewReader(raw))
	dec.DisallowUnknownFields()
	var ts []Template
	if err := dec.Decode(&ts); err != nil {
		return nil, attrErr(AttrTemplates, "want a JSON list of {\"path\", \"content\", \"mode\"}: %v", err)
	}
	if dec.More() {
		return nil, attrErr(AttrTemplates, "trailing data after the JSON list")
	}
	if len(ts) == 0 || len(ts) > maxTemplates {
		return nil, attrErr(AttrTemplates, "want 1 to %d templates, have %d", maxTemplates, len(ts))
	}
	seen := map[string]bool{}
	for i, t := range ts {
		for _, c := range strings.Split(t.Path, "/") {
			if c == "" || c == "." || c == ".." || len(c) > 255 || strings.ContainsRune(c, 0) {
				return nil, attrErr(AttrTemplates, "template %d: path %q: want a clean relative path like app.env or rendered/app.env", i, t.Path)
			}
		}
		if seen[t.Path] {
			return nil, attrErr(AttrTemplates, "two templates have path %q", t.Path)
		}
		seen[t.Path] = true
		if t.Content == "" {
			return nil, attrErr(AttrTemplates, "template %d (%s): content is empty", i, t.Path)
		}
		if t.Mode != "" {
			if n, err := strconv.ParseUint(t.Mode, 8, 32); err != nil || n > 0o777 || len(t.Mode) > 4 {
				return nil, attrErr(AttrTemplates, "template %d (%s): mode %q: want octal permission bits like 0440", i, t.Path, t.Mode)
			}
		}
	}
	return ts, nil
}

func parseBool(key, s string, def bool) (bool, error) {
	switch s {
	case "":
		return def, nil
	case "true", "True", "TRUE":
		return true, nil
	case "false", "False", "FALSE":
		return false, nil
	}
	return false, attrErr(key, "%q is not true or false", s)
}

// parseID reads a uid or gid: a decimal number below 2^32-1 (that one is
// the kernel's "no id").
func parseID(key, s string) (uint32, error) {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n == 1<<32-1 {
		return 0, attrErr(key, "%q is not a numeric id", s)
	}
	return uint32(n), nil
}

func parseView(a map[string]string, reqRO bool, mountGroup string) (View, error) {
	var v View
	ro, err := parseBool(AttrReadOnly, a[AttrReadOnly], true)
	if err != nil {
		return v, err
	}
	v.ReadOnly = ro || reqRO // the pod spec's readOnly wins over the attribute
	if s, ok := a[AttrUID]; ok {
		if v.UID, err = parseID(AttrUID, s); err != nil {
			return v, err
		}
	}
	gidSet := false
	if s, ok := a[AttrGID]; ok {
		if v.GID, err = parseID(AttrGID, s); err != nil {
			return v, err
		}
		gidSet = true
	} else if mountGroup != "" {
		if v.GID, err = parseID("fsGroup", mountGroup); err != nil {
			return v, err
		}
		gidSet = true
	}
	// Defaults: what the pod can read without being root. A group known
	// (fsGroup) gets 0440 (0660 writable), else everyone may read, as a
	// Secret volume's 0644 default allows.
	switch {
	case gidSet && v.ReadOnly:
		v.FileMode = 0o440
	case gidSet:
		v.FileMode = 0o660
	case v.ReadOnly:
		v.FileMode = 0o444
	default:
		v.FileMode = 0o666
	}
	if s, ok := a[AttrFileMode]; ok {
		n, err := strconv.ParseUint(s, 8, 32)
		if err != nil || n > 0o777 || len(s) > 4 {
			return v, attrErr(AttrFileMode, "%q: want octal permission bits like 0440", s)
		}
		if n&0o444 == 0 {
			return v, attrErr(AttrFileMode, "%q lets nobody read the files", s)
		}
		v.FileMode = uint32(n)
	}
	return v, nil
}

// saToken is one entry of csi.storage.k8s.io/serviceAccount.tokens.
type saToken struct {
	Token               string    `json:"token"`
	ExpirationTimestamp time.Time `json:"expirationTimestamp"`
}

func parseCreds(a, secrets map[string]string) (Credentials, error) {
	id, idOK := a[AttrIdentityID]
	_, audOK := a[AttrAudience]
	hasSecret := len(secrets) > 0
	switch {
	case audOK && !idOK:
		return Credentials{}, attrErr(AttrAudience, "only means something with identityId (Kubernetes auth)")
	case hasSecret && idOK:
		return Credentials{}, attrErr(AttrIdentityID, "set with nodePublishSecretRef: choose universal auth (the secret) or Kubernetes auth (identityId), not both")
	case hasSecret:
		for k, v := range secrets {
			if k != secretClientID && k != secretClientSe {
				return Credentials{}, attrErr("", "nodePublishSecretRef has key %q; it needs exactly %s and %s", k, secretClientID, secretClientSe)
			}
			if len(v) > maxAttr {
				return Credentials{}, attrErr("", "nodePublishSecretRef key %q is longer than %d bytes", k, maxAttr)
			}
		}
		c := Credentials{Method: AuthUniversal, ClientID: strings.TrimSpace(secrets[secretClientID]), ClientSecret: strings.TrimSpace(secrets[secretClientSe])}
		if c.ClientID == "" || c.ClientSecret == "" {
			return Credentials{}, attrErr("", "nodePublishSecretRef needs both %s and %s", secretClientID, secretClientSe)
		}
		return c, nil
	case idOK:
		id = strings.TrimSpace(id)
		if id == "" || len(id) > 100 {
			return Credentials{}, attrErr(AttrIdentityID, "must be the machine identity's id")
		}
		aud := DefaultAudience
		if audOK {
			aud = a[AttrAudience]
		}
		raw, ok := a[ctxSATokens]
		if !ok || raw == "" {
			return Credentials{}, attrErr(AttrIdentityID, "Kubernetes auth needs the pod's token, but kubelet sent none: the CSIDriver object needs tokenRequests with audience %q", aud)
		}
		var toks map[string]saToken
		if err := json.Unmarshal([]byte(raw), &toks); err != nil {
			// The JSON holds tokens: say where it failed, never echo it.
			var se *json.SyntaxError
			if errors.As(err, &se) {
				return Credentials{}, attrErr(ctxSATokens, "not JSON (at byte %d)", se.Offset)
			}
			return Credentials{}, attrErr(ctxSATokens, "not a map of audience to token")
		}
		t, ok := toks[aud]
		if !ok || strings.TrimSpace(t.Token) == "" {
			return Credentials{}, attrErr(AttrAudience, "kubelet sent no token for audience %q (it sent %d other audiences): match the CSIDriver's tokenRequests", aud, len(toks))
		}
		c := Credentials{Method: AuthKubernetes, IdentityID: id, JWT: strings.TrimSpace(t.Token)}
		if ns, sa := a[ctxPodNS], a[ctxSAName]; ns != "" && sa != "" {
			c.who = ns + "/" + sa
		}
		return c, nil
	}
	return Credentials{}, attrErr("", "no credentials: reference a Secret with clientId and clientSecret in nodePublishSecretRef, or set identityId for Kubernetes auth with the pod's service account")
}
