package vault

// Changes names what one refresh or push changed in the vault, by address
// only: the syncer produces it and the filesystem invalidates exactly those
// kernel cache entries, without either knowing the other.
type Changes struct {
	Updated []Addr // value or metadata changed
	Added   []Addr
	Removed []Addr
	// Folders lists folders that appeared or disappeared, as addresses
	// whose Key is the folder's name and Path its parent.
	Folders []Addr
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
