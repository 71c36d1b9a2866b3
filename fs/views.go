package fs

import (
	"bytes"
	"context"
	"encoding/json"
	"sort"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/infisicalfs/infisicalfs/vault"
)

type viewKind int

const (
	viewStatus viewKind = iota // .status: sync state, never values
	viewEnv                    // .env: the folder's secrets as dotenv
	viewJSON                   // .json: the folder's secrets as a JSON object
)

// viewNode is a read-only file rendered from the vault or the syncer.
type viewNode struct {
	gofs.Inode
	fsys *FS
	kind viewKind
	dir  *dirNode
}

// render returns the view's bytes now; the caller wipes them.
func (v *viewNode) render() []byte {
	switch v.kind {
	case viewStatus:
		if v.fsys.opt.Status == nil {
			return []byte("{}\n")
		}
		return v.fsys.opt.Status()
	case viewEnv:
		return RenderEnv(v.entries())
	default:
		return RenderJSON(v.entries())
	}
}

func (v *viewNode) entries() []vault.Entry {
	es, _, err := v.fsys.opt.Vault.Snapshot(v.dir.project, v.dir.env, v.dir.path)
	if err != nil {
		v.fsys.log.Warn("rendering a view failed", "path", v.dir.display(v.name()), "err", err)
		return nil
	}
	return es
}

func (v *viewNode) name() string {
	switch v.kind {
	case viewStatus:
		return statusName
	case viewEnv:
		return envName
	}
	return jsonName
}

func (v *viewNode) getattr(a *fuse.Attr) {
	b := v.render()
	a.Size = uint64(len(b))
	clear(b)
	a.Mode = syscall.S_IFREG | (v.fsys.opt.FileMode &^ 0o222)
	a.Nlink = 1
	now := time.Now()
	a.SetTimes(&now, &now, &now)
	v.fsys.setAttrCommon(a)
}

func (v *viewNode) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	v.getattr(&out.Attr)
	return 0
}

// Open snapshots the rendering (read-write mounts; read-only mounts have no
// opens). Direct I/O: a rendering's size can change between stat and read.
func (v *viewNode) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	if v.fsys.opt.ReadOnly {
		return nil, 0, syscall.ENOSYS
	}
	if flags&syscall.O_ACCMODE != syscall.O_RDONLY {
		return nil, 0, syscall.EACCES
	}
	return &handle{n: nil, buf: v.render()}, fuse.FOPEN_DIRECT_IO, 0
}

func (v *viewNode) Read(ctx context.Context, fh gofs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if h, ok := fh.(*handle); ok {
		return h.read(dest, off)
	}
	b := v.render()
	defer clear(b)
	k := 0
	if off < int64(len(b)) {
		k = copy(dest, b[off:])
	}
	return fuse.ReadResultData(dest[:k]), 0
}

func (v *viewNode) Flush(ctx context.Context, fh gofs.FileHandle) syscall.Errno {
	if v.fsys.opt.ReadOnly {
		return syscall.ENOSYS
	}
	return 0
}

func (v *viewNode) Release(ctx context.Context, fh gofs.FileHandle) syscall.Errno {
	if h, ok := fh.(*handle); ok {
		h.mu.Lock()
		clear(h.buf)
		h.buf = nil
		h.mu.Unlock()
	}
	return 0
}

func (v *viewNode) Setattr(ctx context.Context, fh gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if v.fsys.opt.ReadOnly {
		return syscall.EROFS
	}
	if _, ok := in.GetSize(); ok {
		return syscall.EACCES
	}
	if errno := v.fsys.checkModeOwner(in, v.fsys.opt.FileMode&^0o222); errno != 0 {
		return errno
	}
	v.getattr(&out.Attr)
	return 0
}

// RenderEnv renders secrets as dotenv lines KEY='value'. Single quotes make
// `set -a; . ./.env` take every byte literally (no expansion, no command
// substitution, newlines kept); a quote inside is written '\”. Keys that
// are not shell names are left out, since sourcing them would fail.
func RenderEnv(es []vault.Entry) []byte {
	sort.Slice(es, func(i, j int) bool { return es[i].Key < es[j].Key })
	var b bytes.Buffer
	for _, e := range es {
		if shellName(e.Key) {
			b.WriteString(e.Key)
			b.WriteString("='")
			for _, c := range e.Value.Bytes() {
				if c == '\'' {
					b.WriteString(`'\''`)
				} else {
					b.WriteByte(c)
				}
			}
			b.WriteString("'\n")
		}
		e.Value.Wipe()
	}
	return b.Bytes()
}

// RenderJSON renders secrets as one JSON object, keys sorted. Values that are
// not valid UTF-8 have the bad bytes replaced (JSON strings are Unicode).
func RenderJSON(es []vault.Entry) []byte {
	sort.Slice(es, func(i, j int) bool { return es[i].Key < es[j].Key })
	var b bytes.Buffer
	b.WriteByte('{')
	for i, e := range es {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(e.Key)
		b.Write(k)
		b.WriteByte(':')
		v, _ := json.Marshal(string(e.Value.Bytes()))
		b.Write(v)
		clear(v)
		e.Value.Wipe()
	}
	b.WriteString("}\n")
	return b.Bytes()
}
