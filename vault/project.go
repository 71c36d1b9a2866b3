package vault

// Project is one mounted project and the environments shown for it: the
// shape of the tree above the folders, shared by the syncer that learns it
// and the filesystem that shows it.
type Project struct {
	ID   string
	Dir  string // directory name: the slug, or the ID where the slug is missing or clashes
	Envs []string
}
