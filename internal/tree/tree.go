// Package tree names what a mount shows above its folders, the projects
// and their environments, and what one refresh or push changed below them,
// by address: the syncer produces both and the filesystem shows them,
// without either knowing the other.
package tree

import "github.com/infisicalfs/infisicalfs/vault"

// Project is one mounted project and the environments shown for it: the
// shape of the tree above the folders, shared by the syncer that learns it
// and the filesystem that shows it.
type Project struct {
	ID   string
	Dir  string // directory name: the slug, or the ID where the slug is missing or clashes
	Envs []string
}

// Changes names what one refresh or push changed in the vault, by address
// only: the syncer produces it and the filesystem invalidates exactly those
// kernel cache entries, without either knowing the other.
type Changes struct {
	Updated []vault.Addr // value or metadata changed
	Added   []vault.Addr
	Removed []vault.Addr
	// Folders lists folders that appeared or disappeared, as addresses
	// whose Key is the folder's name and Path its parent.
	Folders []vault.Addr
	Tree    bool // the set of projects or environments changed
	Status  bool // what .status shows changed
}

// Empty reports whether nothing changed.
func (c Changes) Empty() bool {
	return len(c.Updated)+len(c.Added)+len(c.Removed)+len(c.Folders) == 0 && !c.Tree && !c.Status
}

// Secrets reports whether any secret (not only status) changed.
func (c Changes) Secrets() bool {
	return len(c.Updated)+len(c.Added)+len(c.Removed)+len(c.Folders) > 0 || c.Tree
}
