package fs

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/infisicalfs/infisicalfs/vault"
)

// Extended attributes show what Infisical knows about a secret besides its
// value: user.infisical.id, .version, .comment, .updated_at (RFC 3339),
// .tags (comma-separated slugs), .metadata.<key> per secretMetadata entry,
// and .raw, the raw value, where it differs from the file. Setting
// user.infisical.comment updates the comment in Infisical; every other
// user.infisical name is read-only (EPERM); an unknown one is ENODATA.
// Other namespaces answer ENOTSUP on writes: sed -i tries an ACL on its
// temporary file and warns about anything else.

const xattrPrefix = "user.infisical."

// Commenter is a Backend that can set a secret's comment (one PATCH).
type Commenter interface {
	SetComment(a vault.Addr, comment string) error
}

// xattrNames are the fixed attributes every secret lists, in order.
var xattrNames = []string{"id", "version", "comment", "updated_at", "tags"}

// secretAt is the secret behind n: its directory, address and metadata.
// ok is false for scratch and created-but-unpushed files, which are not
// secrets (yet), and for unlinked ones.
func (n *fileNode) secretAt() (d *dirNode, a vault.Addr, m vault.Meta, ok bool) {
	n.mu.Lock()
	local := n.scratch || n.pending
	n.mu.Unlock()
	if local {
		return nil, a, m, false
	}
	d, name, ok := n.where()
	if !ok {
		return nil, a, m, false
	}
	a = d.addr(name)
	m, ok = n.fsys.opt.Vault.Stat(a)
	return d, a, m, ok
}

// xattr returns the value of one user.infisical attribute, or ok false.
// The caller wipes it (a raw value is a value).
func (n *fileNode) xattr(d *dirNode, a vault.Addr, m vault.Meta, name string) ([]byte, bool) {
	switch name {
	case "id":
		return []byte(m.ID), true
	case "version":
		return strconv.AppendInt(nil, int64(m.Version), 10), true
	case "updated_at":
		if m.UpdatedAt.IsZero() {
			return nil, false
		}
		return []byte(m.UpdatedAt.UTC().Format(time.RFC3339)), true
	case "tags":
		return []byte(strings.Join(m.Tags, ",")), true
	case "comment":
		notes, err := n.fsys.opt.Vault.Notes(a)
		if err != nil {
			return nil, false
		}
		return []byte(notes.Comment), true
	case "raw":
		return n.rawIfDifferent(d, a, m)
	}
	if k, ok := strings.CutPrefix(name, "metadata."); ok {
		notes, err := n.fsys.opt.Vault.Notes(a)
		if err != nil {
			return nil, false
		}
		for _, md := range notes.Metadata {
			if md.Key == k {
				return []byte(md.Value), true
			}
		}
	}
	return nil, false
}

// rawIfDifferent is the raw value where the file shows something else: in
// the expanded view, for a secret whose references expanded to other bytes
// or could not be expanded. Never for a hidden value.
func (n *fileNode) rawIfDifferent(d *dirNode, a vault.Addr, m vault.Meta) ([]byte, bool) {
	if d.raw || !m.Refs || m.Hidden {
		return nil, false
	}
	raw, _, err := n.fsys.opt.Vault.GetForm(a, vault.Raw)
	if err != nil {
		return nil, false
	}
	defer raw.Wipe()
	if m.ExpandErr == "" {
		served, _, err := n.fsys.opt.Vault.Get(a)
		if err != nil {
			return nil, false
		}
		same := bytes.Equal(served.Bytes(), raw.Bytes())
		served.Wipe()
		if same {
			return nil, false
		}
	}
	return append([]byte(nil), raw.Bytes()...), true
}

// Getxattr serves user.infisical.* (getfattr asks for the size first with
// an empty dest).
func (n *fileNode) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	name, ok := strings.CutPrefix(attr, xattrPrefix)
	if !ok {
		return 0, syscall.ENODATA
	}
	if name == "raw" { // a value: the rules decide it like a read
		if errno := n.checkValue(ctx, false); errno != 0 { // access.go
			return 0, errno
		}
	}
	d, a, m, ok := n.secretAt()
	if !ok {
		return 0, syscall.ENODATA
	}
	v, ok := n.xattr(d, a, m, name)
	if !ok {
		return 0, syscall.ENODATA
	}
	defer clear(v)
	return xattrReply(dest, v)
}

// xattrReply answers getxattr/listxattr: the size for an empty buffer,
// ERANGE for one too small, else the bytes.
func xattrReply(dest, b []byte) (uint32, syscall.Errno) {
	if len(dest) == 0 {
		return uint32(len(b)), 0
	}
	if len(dest) < len(b) {
		return uint32(len(b)), syscall.ERANGE
	}
	return uint32(copy(dest, b)), 0
}

// Listxattr lists the attributes a secret has: the fixed ones, one per
// metadata key, and raw where it differs from the file.
func (n *fileNode) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	d, a, m, ok := n.secretAt()
	if !ok {
		return 0, 0
	}
	var b []byte
	add := func(name string) {
		b = append(b, xattrPrefix...)
		b = append(b, name...)
		b = append(b, 0)
	}
	for _, x := range xattrNames {
		if x == "updated_at" && m.UpdatedAt.IsZero() {
			continue
		}
		add(x)
	}
	if notes, err := n.fsys.opt.Vault.Notes(a); err == nil {
		for _, md := range notes.Metadata {
			add("metadata." + md.Key)
		}
	}
	if raw, ok := n.rawIfDifferent(d, a, m); ok {
		clear(raw)
		add("raw")
	}
	return xattrReply(dest, b)
}

// Setxattr sets user.infisical.comment in Infisical; other user.infisical
// names are read-only (EPERM), and other namespaces are not supported
// (ENOTSUP: go-fuse's default ENODATA makes sed -i warn).
func (n *fileNode) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	return n.writeComment(ctx, attr, string(data))
}

// Removexattr of user.infisical.comment clears the comment.
func (n *fileNode) Removexattr(ctx context.Context, attr string) syscall.Errno {
	return n.writeComment(ctx, attr, "")
}

// writeComment sets the comment through attribute attr, the only writable
// one.
func (n *fileNode) writeComment(ctx context.Context, attr, comment string) syscall.Errno {
	name, ok := strings.CutPrefix(attr, xattrPrefix)
	if !ok {
		return syscall.ENOTSUP
	}
	if name != "comment" {
		return syscall.EPERM
	}
	if errno := n.checkValue(ctx, true); errno != 0 { // access.go
		return errno
	}
	return n.setComment(comment)
}

func (n *fileNode) setComment(comment string) syscall.Errno {
	if n.fsys.opt.ReadOnly {
		return syscall.EROFS
	}
	d, a, m, ok := n.secretAt()
	if !ok {
		return syscall.EPERM
	}
	if m.ReadOnly {
		n.fsys.log.Warn("imported secrets are read-only; edit them in the environment they are imported from", "path", d.display(a.Key))
		return syscall.EACCES
	}
	c, ok := n.fsys.opt.Backend.(Commenter)
	if !ok {
		return syscall.ENOTSUP
	}
	if err := c.SetComment(a, comment); err != nil {
		return toErrno(err)
	}
	return 0
}
