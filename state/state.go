// Package state keeps infisical_sync_state.json, the record of what the
// mount last synced: per secret a hash, version and time, plus counters. It
// never holds a value: a secret's hash is an HMAC-SHA256 of KEY:VALUE under
// a per-mount key kept away from the file (hash.go, key.go), or the
// original design's plain SHA-256 when asked for.
//
// The file is written only when it would say something new about a secret
// (Store.UpdateRecords); counters and sync times are saved with the next
// such write, or by SaveIfDue once they are older than the flush interval,
// so an unchanged refresh writes nothing.
//
// The schema is the original sync design's (last_sync, project_ids,
// environment, secrets{id: {hash, version, last_synced}}, error_count,
// push_count, pull_count), extended with fields its readers ignore.
//
// Secret IDs: the original file keyed secrets by bare KEY, which cannot tell
// two projects, environments or folders apart. SecretID always returns the
// full form "<projectID>/<env><path>/KEY" ("<projectID>/<env>/KEY" at the
// root), so an ID never changes when a second environment is mounted. Each
// record also carries project, environment, path and key. A file in the
// original schema (schema_version absent) for one project and one
// environment is migrated on load: its bare KEY ids become full ids at "/".
// Original readers still parse the file; they see the full ids as names.
package state

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// SchemaVersion is written to every file this package saves; files of the
// original design have none (0).
const SchemaVersion = 2

// File is the state file's content.
type File struct {
	LastSync    time.Time         `json:"last_sync"`
	ProjectIDs  []string          `json:"project_ids"`
	Environment string            `json:"environment"` // the environment when only one is mounted, else ""
	Secrets     map[string]Secret `json:"secrets"`     // by SecretID
	ErrorCount  int               `json:"error_count"`
	PushCount   int               `json:"push_count"`
	PullCount   int               `json:"pull_count"`

	// Extensions; readers of the original schema ignore them.
	SchemaVersion int              `json:"schema_version"`
	Environments  []string         `json:"environments,omitempty"`
	Scopes        map[string]Scope `json:"scopes,omitempty"` // by "projectID/env"

	// HashScheme is HashHMAC or HashSHA256 (absent: the original design's
	// sha256); HashKeyID names the HMAC key without revealing it, so that a
	// new key is noticed and its hashes are not compared with the old.
	HashScheme string `json:"hash_scheme,omitempty"`
	HashKeyID  string `json:"hash_key_id,omitempty"`
}

// Secret is what is known about one secret: never its value. The file
// also names each record's project, environment, path and key; those are
// its ID's parts (ParseSecretID), written from the ID rather than kept
// beside it: one record is kept per secret, 64 bytes less each.
type Secret struct {
	Hash       string    `json:"hash"` // Hasher.Hash(key, value); "" = not known under the file's key
	Version    int       `json:"version"`
	LastSynced time.Time `json:"last_synced"`
}

// Scope is the sync record of one project environment.
type Scope struct {
	ETag       string    `json:"etag"`
	LastSync   time.Time `json:"last_sync"`
	LastError  string    `json:"last_error,omitempty"`
	ErrorCount int       `json:"error_count"`
}

// SecretID is the key of a secret in File.Secrets:
// "<project>/<env><path>/<key>", with path "/" adding nothing. With an empty
// key it is the prefix shared by every secret of that folder.
func SecretID(project, env, path, key string) string {
	if path == "/" || path == "" {
		return project + "/" + env + "/" + key
	}
	return project + "/" + env + path + "/" + key
}

// ParseSecretID splits a SecretID into its parts; ok is false for an ID of
// another shape (a bare key of the original design's files). Project and
// environment names and keys hold no "/", so the split is unambiguous.
func ParseSecretID(id string) (project, env, path, key string, ok bool) {
	project, rest, found := strings.Cut(id, "/")
	if !found || project == "" {
		return "", "", "", "", false
	}
	i := strings.IndexByte(rest, '/')
	if i <= 0 {
		return "", "", "", "", false
	}
	env, rest = rest[:i], rest[i:]
	j := strings.LastIndexByte(rest, '/')
	path, key = rest[:j], rest[j+1:]
	if key == "" || strings.HasSuffix(path, "/") || strings.Contains(path, "//") {
		return "", "", "", "", false // not a canonical folder: SecretID never makes it
	}
	if path == "" {
		path = "/"
	}
	return project, env, path, key, true
}

// Hash is the hex SHA-256 of "KEY:VALUE", the original design's plain
// hash (PlainHasher().Hash). It hashes in place, making no copy of value.
func Hash(key string, value []byte) string {
	h := sha256.New()
	h.Write([]byte(key))
	h.Write([]byte{':'})
	h.Write(value)
	return hex.EncodeToString(h.Sum(nil))
}

// Changed compares f's secrets with a fresh listing keyed the same way and
// returns, each sorted, the IDs that are new, that changed, and that are
// gone. Where both hashes are known (the same key made them) a differing
// hash is a change and a version bump alone is not; where either is
// unknown (the key changed since) a differing version is.
func (f *File) Changed(current map[string]Secret) (added, changed, removed []string) {
	for id, cur := range current {
		old, ok := f.Secrets[id]
		switch {
		case !ok:
			added = append(added, id)
		case old.Hash != "" && cur.Hash != "":
			if old.Hash != cur.Hash {
				changed = append(changed, id)
			}
		case old.Version != cur.Version:
			changed = append(changed, id)
		}
	}
	for id := range f.Secrets {
		if _, ok := current[id]; !ok {
			removed = append(removed, id)
		}
	}
	slices.Sort(added)
	slices.Sort(changed)
	slices.Sort(removed)
	return added, changed, removed
}

// idRecord is one secret record with its ID.
type idRecord struct {
	id  string
	rec Secret
}

// records returns m's records, unsorted (sortRecords orders them): what a
// save writes, and smaller than a copy of the map.
func records(m map[string]Secret) []idRecord {
	out := make([]idRecord, 0, len(m))
	for id, rec := range m {
		out = append(out, idRecord{id, rec})
	}
	return out
}

// sortRecords sorts by ID, the order a save writes.
func sortRecords(recs []idRecord) {
	slices.SortFunc(recs, func(a, b idRecord) int { return strings.Compare(a.id, b.id) })
}

// clone returns a deep copy.
func (f *File) clone() File {
	c := f.cloneHead()
	c.Secrets = maps.Clone(f.Secrets)
	return c
}

// cloneHead is clone without the secret records.
func (f *File) cloneHead() File {
	c := *f
	c.Secrets = nil
	c.ProjectIDs = slices.Clone(f.ProjectIDs)
	c.Environments = slices.Clone(f.Environments)
	c.Scopes = maps.Clone(f.Scopes)
	return c
}

// decode parses a state file and brings it to the current schema.
func decode(data []byte) (File, error) {
	var f File
	if err := json.Unmarshal(data, &f); err != nil {
		return File{}, err
	}
	if f.SchemaVersion > SchemaVersion || f.SchemaVersion < 0 {
		return File{}, fmt.Errorf("schema_version %d is not one this program knows (up to %d)", f.SchemaVersion, SchemaVersion)
	}
	if f.SchemaVersion == 0 {
		f.migrateOriginal()
	}
	f.SchemaVersion = SchemaVersion
	if f.Secrets == nil {
		f.Secrets = map[string]Secret{}
	}
	return f, nil
}

// migrateOriginal rewrites bare KEY ids of a one-project, one-environment
// file of the original design to full ids at the root folder. Files that
// name several projects or no environment cannot be placed and keep their
// ids; the next listing replaces them.
func (f *File) migrateOriginal() {
	if len(f.ProjectIDs) != 1 || f.Environment == "" || strings.Contains(f.Environment, "/") {
		return
	}
	project := f.ProjectIDs[0]
	for id, s := range f.Secrets {
		if id == "" || strings.Contains(id, "/") {
			continue
		}
		full := SecretID(project, f.Environment, "/", id)
		if _, taken := f.Secrets[full]; taken {
			continue
		}
		delete(f.Secrets, id)
		f.Secrets[full] = s
	}
	if len(f.Environments) == 0 {
		f.Environments = []string{f.Environment}
	}
}

// encode writes f as saved: indented, newline-terminated, each secret
// record on one line in ID order. recs are f's records sorted by ID
// (f.Secrets itself is not read). It streams the records, so that a large
// state needs no buffer of its whole size.
func encode(w io.Writer, f *File, recs []idRecord) error {
	head := *f
	head.Secrets = map[string]Secret{}
	b, err := json.MarshalIndent(&head, "", "  ")
	if err != nil {
		return err
	}
	// Inside a JSON string every quote is escaped, so this is the key.
	const slot = "\n  \"secrets\": {}"
	i := bytes.Index(b, []byte(slot))
	if i < 0 {
		return errors.New("no secrets field in the encoded state")
	}
	if _, err := w.Write(b[:i+len(slot)-1]); err != nil {
		return err
	}
	var line []byte // reused: one record at a time
	for n, r := range recs {
		line = line[:0]
		if n == 0 {
			line = append(line, "\n    "...)
		} else {
			line = append(line, ",\n    "...)
		}
		if line, err = appendRecord(line, r.id, r.rec); err != nil {
			return err
		}
		if _, err := w.Write(line); err != nil {
			return err
		}
	}
	if len(recs) > 0 {
		if _, err := io.WriteString(w, "\n  "); err != nil {
			return err
		}
	}
	if _, err := w.Write(b[i+len(slot)-1:]); err != nil {
		return err
	}
	_, err = io.WriteString(w, "\n")
	return err
}

// appendRecord appends `"id": {record}` as json.Marshal would write the
// record with its ID's parts (project, environment, path, key, omitted
// when the ID has no such parts), without its reflection and allocations:
// at 100k secrets that is most of a save's cost.
func appendRecord(b []byte, id string, r Secret) ([]byte, error) {
	b = appendJSONString(b, id)
	b = append(b, `: {"hash":`...)
	b = appendJSONString(b, r.Hash)
	b = append(b, `,"version":`...)
	b = strconv.AppendInt(b, int64(r.Version), 10)
	b = append(b, `,"last_synced":`...)
	if y := r.LastSynced.Year(); y < 0 || y > 9999 {
		return nil, fmt.Errorf("secret %s: last_synced year %d is outside 0-9999", id, y)
	}
	b = append(b, '"')
	b = r.LastSynced.AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	project, env, path, key, _ := ParseSecretID(id)
	for _, f := range [...]struct{ name, v string }{
		{`,"project":`, project}, {`,"environment":`, env}, {`,"path":`, path}, {`,"key":`, key},
	} {
		if f.v != "" {
			b = append(b, f.name...)
			b = appendJSONString(b, f.v)
		}
	}
	return append(b, '}'), nil
}

// appendJSONString quotes s as encoding/json does: plain printable ASCII is
// copied, anything else goes through json.Marshal.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always marshals
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// describeParseError says what is wrong with a state file without quoting
// it: encoding/json errors can carry bytes of the input.
func describeParseError(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("invalid JSON at byte offset %d", syn.Offset)
	case errors.As(err, &typ):
		return fmt.Sprintf("field %q has the wrong type (want %s) at byte offset %d", typ.Field, typ.Type, typ.Offset)
	case strings.HasPrefix(err.Error(), "schema_version"):
		return err.Error()
	default:
		return "invalid state file"
	}
}
