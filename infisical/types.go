package infisical

import "time"

// Ref addresses one secret: project ID, environment slug, canonical folder
// path ("/" or "/a/b") and the secret's key.
type Ref struct {
	ProjectID   string
	Environment string
	Path        string
	Key         string
}

// Secret is one shared secret as the API returns it. Value is a byte slice
// so that the caller can wipe it once it has been sealed into the vault.
type Secret struct {
	ID          string
	Key         string
	Value       []byte
	Version     int
	Environment string
	Path        string // folder of the secret, canonical ("/", "/a/b")
	Type        string // always "shared" for identities
	// ValueHidden is true when the identity may see the secret but not its
	// value; Value is then nil (the server sent a placeholder).
	ValueHidden bool
	CreatedAt   time.Time
	UpdatedAt   time.Time

	Comment string
	Tags    []string // tag slugs, in the server's order
	// Metadata is secretMetadata in the server's order. Its values are
	// not secret values, but are never logged either.
	Metadata []Metadata
	// SkipMultilineEncoding is the secret's flag: with it, Infisical's
	// expansion quotes a multi-line result ("…" with \n escapes).
	SkipMultilineEncoding bool
}

// Metadata is one secretMetadata entry.
type Metadata struct {
	Key   string
	Value string
}

// Import is one imported folder of a list answer, in import order.
type Import struct {
	Environment string
	Path        string
	Secrets     []*Secret
}

// ListOptions selects one folder (and, with Recursive, its descendants).
type ListOptions struct {
	ProjectID        string
	Environment      string
	Path             string // canonical; "" means "/"
	Recursive        bool
	IncludeImports   bool
	ExpandReferences bool
	// IfNoneMatch is the ETag of the previous answer; an unchanged listing
	// then costs a 304 and ListResult.NotModified is true.
	IfNoneMatch string
}

// ListResult is a list answer. When NotModified is true, Secrets and
// Imports are empty and the caller keeps what it had.
type ListResult struct {
	NotModified bool
	ETag        string
	Secrets     []*Secret
	Imports     []Import
}

// Update holds the fields of a PATCH; nil/empty fields are left unchanged.
// Every update, a comment-only one too, adds a version on the server.
type Update struct {
	Value   []byte  // nil: value unchanged
	NewName string  // "": name unchanged (rename otherwise)
	Comment *string // nil: comment unchanged; a pointer to "" clears it
}

// Project is a project the identity can see, with its environments.
type Project struct {
	ID           string
	Name         string
	Slug         string
	Type         string
	Environments []Environment
}

// Environment of a project.
type Environment struct {
	ID   string
	Name string
	Slug string
}

// Folder is an Infisical folder.
type Folder struct {
	ID        string
	Name      string
	Path      string // parent folder, canonical
	UpdatedAt time.Time
}

// Status is what GET /api/status answered.
type Status struct {
	Message string
	Date    string
}
