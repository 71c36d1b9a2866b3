package fs

import (
	"context"
	"strings"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/infisicalfs/infisicalfs/vault"
)

// Expanded and raw values. A secret's file, and the folder views, show its
// value with references expanded (the vault keeps that form beside the raw
// one; the syncer computes it). MOUNT/<project>/<env>/.raw/ mirrors the
// environment's folders with the raw values, read-write: editing
// references happens there. A secret whose raw value holds a reference is
// read-only in the expanded view, so no editor can write its expansion
// back over the reference.

// rawName is the raw mirror's directory in an environment's root.
const rawName = ".raw"

// rawRoot is the .raw directory of environment root d.
func rawRoot(d *dirNode) gofs.InodeEmbedder {
	n := d.fsys.newDir(kindFolder, d.project, d.env, "/")
	n.raw = true
	return n
}

// folder is d's kind of directory for folder p of the same environment.
func (d *dirNode) folder(p string) *dirNode {
	n := d.fsys.newDir(kindFolder, d.project, d.env, p)
	n.raw = d.raw
	return n
}

// form is which value d's files show.
func (d *dirNode) form() vault.Form {
	if d.raw {
		return vault.Raw
	}
	return vault.Served
}

// secretMode is the mode of a secret's file in d: none at all for a value
// Infisical hides, no write bits for imports and, in the expanded view,
// for secrets whose raw value holds references.
func (d *dirNode) secretMode(m vault.Meta) uint32 {
	if m.Hidden {
		return 0
	}
	return d.fsys.fileMode(m.ReadOnly || (!d.raw && m.Refs))
}

// shadowed reports whether a secret called name is hidden in d behind a
// view's name; it is logged once, and .raw/ still shows it.
func (d *dirNode) shadowed(name string) bool {
	if d.raw || d.kind != kindFolder || !reserved(name) {
		return false
	}
	if d.inVault(name) {
		d.fsys.once("shadowed:"+d.addr(name).String(), func() {
			d.fsys.log.Warn("a secret has a reserved name and is shown only under .raw/", "path", d.display(name), "raw", d.rawPath(name))
		})
	}
	return true
}

// rawPath is where the secret name of d is edited: .raw/<folders>/<name>,
// relative to the environment's root.
func (d *dirNode) rawPath(name string) string {
	return rawName + strings.TrimSuffix(d.path, "/") + "/" + name
}

// flattens refuses a write in the expanded view of a secret whose raw value
// holds references: it would replace them with their current expansion.
func (d *dirNode) flattens(name string) syscall.Errno {
	if d.raw {
		return 0
	}
	m, ok := d.fsys.opt.Vault.Stat(d.addr(name))
	if !ok || !m.Refs || m.ReadOnly {
		return 0
	}
	d.fsys.log.Warn(name+" references other secrets; edit "+d.rawPath(name), "path", d.display(name), "errno", syscall.EACCES.Error())
	return syscall.EACCES
}

// readRefused fails a read of a value the mount must not serve: one
// Infisical hides from the identity (its placeholder is never shown), or,
// in the expanded view, one whose references cannot be expanded (never
// shown unexpanded or half expanded). One log line per version says why;
// .status lists them too.
func (d *dirNode) readRefused(name string) syscall.Errno {
	a := d.addr(name)
	m, ok := d.fsys.opt.Vault.Stat(a)
	if !ok {
		return 0
	}
	switch {
	case m.Hidden:
		d.fsys.onceVersion("hidden", a, m, func() {
			d.fsys.log.Warn("Infisical hides this secret's value from the identity (secretValueHidden); grant it read-value permission", "path", d.display(name), "errno", syscall.EACCES.Error())
		})
		return syscall.EACCES
	case m.ExpandErr != "" && !d.raw:
		d.fsys.onceVersion("refs", a, m, func() {
			d.fsys.log.Warn("a reference of this secret cannot be expanded; its raw value is under .raw/", "path", d.display(name), "raw", d.rawPath(name), "errno", syscall.EACCES.Error(), "err", m.ExpandErr)
		})
		return syscall.EACCES
	}
	return 0
}

// once runs fn the first time key is seen by this filesystem.
func (f *FS) once(key string, fn func()) {
	if _, seen := f.logged.LoadOrStore(key, true); !seen {
		fn()
	}
}

// onceVersion runs fn once per kind, secret and vault generation of it.
func (f *FS) onceVersion(kind string, a vault.Addr, m vault.Meta, fn func()) {
	k := onceKey{kind: kind, a: a, gen: m.Gen}
	if _, seen := f.logged.LoadOrStore(k, true); !seen {
		fn()
	}
}

type onceKey struct {
	kind string
	a    vault.Addr
	gen  uint64
}

// dirViewChild looks up a directory view (.raw, .history) of d.
func (d *dirNode) dirViewChild(ctx context.Context, v *view, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	d.fsys.dirAttr(&out.Attr)
	d.fsys.applyAccess(&out.Attr, nil) // access.go
	if ch := d.GetChild(v.name); ch != nil {
		return ch, 0
	}
	return d.NewInode(ctx, v.dir(d), gofs.StableAttr{Mode: syscall.S_IFDIR}), 0
}
