package templates

import (
	"encoding/json"
	"errors"
)

// Secret is one secret as a template sees it: the agent's
// models.SingleEnvironmentVariable, field for field, so that `.Key`,
// `.Value`, `.SecretPath` and the rest mean what they mean to the agent.
type Secret struct {
	Key                   string
	WorkspaceId           string //nolint:revive // the agent's spelling; templates name it
	Value                 string
	Type                  string
	ID                    string
	SecretPath            string
	Tags                  []Tag
	Comment               string
	Etag                  string
	SkipMultilineEncoding bool
}

// Tag is a secret's tag, as the agent's models.Tag.
type Tag struct {
	ID    string
	Name  string
	Slug  string
	Color string
}

// Item is one secret as a Source returns it. Value is handed over: the
// renderer wipes it once the render is done.
type Item struct {
	Key      string
	Path     string // the folder holding it, canonical ("/", "/a/b")
	Value    []byte
	ID       string
	Type     string // "shared" where empty
	Comment  string
	Tags     []Tag
	Imported bool // from a secret import, not the folder's own
}

// ErrNotFound is what a Source answers for a secret or folder it does not
// hold.
var ErrNotFound = errors.New("not found")

// ErrNotSynced is what a Source answers for a project or environment the
// mount does not sync (yet): Scopes names it, so the daemon can add it.
var ErrNotSynced = errors.New("not synced by this mount")

// Source is what rendering reads: the vault, never the API. Implementations
// must be safe for concurrent use.
type Source interface {
	// ProjectID resolves a project slug, for listSecretsByProjectSlug.
	ProjectID(slug string) (string, error)
	// List returns the secrets of one folder (with recursive, of it and
	// every folder below), the folder's own first, sorted by folder path
	// and key, then the imported ones in the order the agent appends them
	// (the last import first; the renderer drops keys already listed).
	// expand selects expanded values (Infisical's expandSecretReferences)
	// over raw ones. An imported secret's change must reach Set.Affected
	// as an address in the importing folder, as the vault keeps imports
	// beside the folder's own.
	List(project, env, path string, recursive, expand bool) ([]Item, error)
	// Get returns one secret, expanded, looking in the folder's imports
	// when the folder has no such key; ErrNotFound when absent.
	Get(project, env, path, key string) (Item, error)
}

// listOptions is the agent's optional JSON argument (its secretArguments).
type listOptions struct {
	Recursive bool  `json:"recursive"`
	Expand    *bool `json:"expandSecretReferences,omitempty"`
}

// parseOptions reads the first optional argument as the agent does:
// JSON, unknown keys ignored, later arguments ignored, expansion on by
// default.
func parseOptions(args []string) (listOptions, error) {
	var o listOptions
	if len(args) > 0 {
		// The argument may be computed from a secret, and JSON errors quote
		// it: say only that it is not JSON.
		if err := json.Unmarshal([]byte(args[0]), &o); err != nil {
			return listOptions{}, errors.New(`options: want JSON like {"recursive": true, "expandSecretReferences": false}`)
		}
	}
	if o.Expand == nil {
		t := true
		o.Expand = &t
	}
	return o, nil
}
