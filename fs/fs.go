package fs

import (
	"fmt"
	"log"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/infisicalfs/infisicalfs/access"
	"github.com/infisicalfs/infisicalfs/audit"
	"github.com/infisicalfs/infisicalfs/internal/tree"
	"github.com/infisicalfs/infisicalfs/vault"
)

// Backend is what the filesystem needs from the sync engine. Writes block
// until Infisical answered; their errors carry an errno (see toErrno).
type Backend interface {
	Projects() []tree.Project
	WriteCheck(project, env string) error
	// Push, Delete and Rename take base, the version of the secret the
	// change derives from: above 0 the backend applies it only if
	// Infisical still holds that version (ESTALE otherwise); 0 applies it
	// whatever Infisical holds. Push also takes -version: checked at open
	// already (an append), so only the version Infisical returns is
	// checked, which catches a writer between the open and the push.
	Push(a vault.Addr, value []byte, base int) error
	// CheckBase asks Infisical (one GET of the secret) whether it still
	// holds version base of a; ESTALE if not. Opens for appending use it,
	// so that a shell's `>>` sees the refusal at open.
	CheckBase(a vault.Addr, base int) error
	Delete(a vault.Addr, base int) error
	Rename(from, to vault.Addr, base int) error
	Mkdir(project, env, path string) error
	Rmdir(project, env, path string) error
	// CheckKey and CheckFolder apply Infisical's name rules before
	// anything is created; their errors carry EINVAL.
	CheckKey(name string) error
	CheckFolder(name string) error
}

// Options configure the filesystem.
type Options struct {
	Vault   *vault.Vault
	Backend Backend
	Logger  *slog.Logger

	ReadOnly bool
	// Flat makes the mount root one environment's root folder.
	Flat        bool
	FlatProject string // project ID
	FlatEnv     string

	UID, GID    uint32
	FileMode    uint32 // 0: 0400 read-only, 0600 read-write
	TrimNewline bool
	AllowOther  bool
	DebugFUSE   bool

	// Templates are the [[template]] files shown from the mount root;
	// nil shows none.
	Templates Templates

	// Status renders .status; nil shows "{}".
	Status func() []byte

	// Audit receives a record of every open decided (access.go); nil
	// records none. AuditOpens decides and records every open that
	// reaches the daemon, also with no rules (an audit log is set), and
	// AllOpens sends every open of a read-only mount to the daemon
	// (audit = "all-opens"). Rules come through SetAccess.
	Audit      *audit.Log
	AuditOpens bool
	AllOpens   bool

	// CacheTimeout is the kernel's entry, attribute and negative-entry
	// timeout (default one hour): invalidation is explicit.
	CacheTimeout time.Duration
}

// FS is a mountable secrets filesystem.
type FS struct {
	opt     Options
	log     *slog.Logger
	root    *dirNode
	mounted atomic.Bool // Invalidate does nothing before the kernel knows us
	queue   *queue
	reqs    atomic.Uint64 // kernel requests seen (see counting)
	start   time.Time     // the time shown where Infisical gives none
	eng     *access.Engine
	// opensReach: OPEN reaches the daemon (not ENOSYS); fixed at Mount.
	opensReach bool
	logged     sync.Map // what was logged once (see once)
}

// New returns a filesystem; Mount serves it.
func New(opt Options) *FS {
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.FileMode == 0 {
		opt.FileMode = 0o600
		if opt.ReadOnly {
			opt.FileMode = 0o400
		}
	}
	if opt.CacheTimeout == 0 {
		opt.CacheTimeout = time.Hour
	}
	f := &FS{opt: opt, log: opt.Logger, queue: newQueue(), start: time.Now()}
	if opt.Flat {
		f.root = f.newDir(kindFolder, opt.FlatProject, opt.FlatEnv, "/")
	} else {
		f.root = f.newDir(kindRoot, "", "", "")
	}
	none, err := access.Compile(nil, f.AccessDefaults())
	if err != nil {
		panic(err) // no rules cannot fail to compile
	}
	f.eng = access.NewEngine(none)
	return f
}

// dirMode is the directory mode matching the file mode: the owner may list
// a directory where it may read a file.
func (f *FS) dirMode() uint32 {
	m := f.opt.FileMode & 0o666
	m |= (m & 0o444) >> 2 // x where r
	if f.opt.ReadOnly {
		m &^= 0o222
	}
	return m
}

func (f *FS) fileMode(readOnly bool) uint32 {
	if f.opt.ReadOnly || readOnly {
		return f.opt.FileMode &^ 0o222
	}
	return f.opt.FileMode
}

// Mount mounts the filesystem at mountpoint and serves it until Unmount.
func (f *FS) Mount(mountpoint string) (*fuse.Server, error) {
	t := f.opt.CacheTimeout
	mo := fuse.MountOptions{
		FsName:     "infisicalfs",
		Name:       "infisicalfs",
		AllowOther: f.opt.AllowOther,
		// xattrs stay on for the read-only mount too: a cached read
		// sends no xattr request (measured: 0 daemon requests per repeat
		// read either way, see make bench's Getxattr row).
		// The kernel checks modes and owners itself, so a file mode means
		// what it says, also for other users under allow_other.
		Options: []string{"default_permissions"},
		// Root can mount without fusermount; everyone else needs it.
		DirectMount: os.Geteuid() == 0,
		// go-fuse's trace prints the bytes of reads and writes: values.
		Debug: f.opt.DebugFUSE,
		// Writes arrive whole up to Infisical's 1 MiB limit.
		MaxWrite: 1 << 20,
		// No atomic O_TRUNC: with it the kernel sets the file's size to 0
		// for every reader as soon as a writer opens, before anything is
		// pushed. Without it, O_TRUNC arrives as a SETATTR whose answer
		// gives the size; see fileNode.Setattr.
		DisabledCapabilities: fuse.CAP_ATOMIC_O_TRUNC,
	}
	if f.opt.ReadOnly {
		mo.Options = append(mo.Options, "ro")
	}
	if f.opt.DebugFUSE {
		mo.Logger = log.New(os.Stderr, "fuse: ", 0)
	}
	// Answering one OPEN with ENOSYS stops them all, for good: decide now
	// whether this mount ever needs to see them (access.go).
	f.opensReach = !f.opt.ReadOnly || f.opt.AllOpens || f.eng.Rules().AnyDaemon()
	if f.opt.ReadOnly && f.opensReach {
		f.log.Info("opens reach the daemon on this read-only mount (executable, hash or cgroup rules, or audit = all-opens): one round trip per open")
	}
	raw := gofs.NewNodeFS(f.root, &gofs.Options{
		MountOptions:    mo,
		EntryTimeout:    &t,
		AttrTimeout:     &t,
		NegativeTimeout: &t,
		UID:             f.opt.UID,
		GID:             f.opt.GID,
		// Mode 0000 means it (a value Infisical hides, or a rule leaving a
		// file to root): go-fuse would otherwise fill in 0644.
		NullPermissions: true,
	})
	srv, err := fuse.NewServer(counting{openGuard{raw, f}, &f.reqs}, mountpoint, &mo)
	if err != nil {
		return nil, fmt.Errorf("mount %s: %w", mountpoint, err)
	}
	go srv.Serve()
	if err := srv.WaitMount(); err != nil {
		return nil, fmt.Errorf("mount %s: %w", mountpoint, err)
	}
	go f.queue.run(f.deliverQueued)
	f.mounted.Store(true)
	return srv, nil
}

// Close ends the invalidation goroutine after delivering what is queued;
// call it once the mount is gone.
func (f *FS) Close() {
	if f.mounted.Swap(false) {
		f.queue.close()
	}
}

// pageCache reports whether the kernel keeps secrets' pages: on read-only
// mounts, where no open reaches the daemon. Read-write mounts serve every
// open from a snapshot with direct I/O instead (see fileNode.Open).
func (f *FS) pageCache() bool { return f.opt.ReadOnly }

// push sends a file's bytes as a secret's value, less the one trailing
// newline that echo adds, unless trim_newline is off.
func (f *FS) push(a vault.Addr, b []byte, base int) error {
	if f.opt.TrimNewline && len(b) > 0 && b[len(b)-1] == '\n' {
		b = b[:len(b)-1]
	}
	return f.opt.Backend.Push(a, b, base)
}

func (f *FS) setAttrCommon(out *fuse.Attr) {
	out.Uid, out.Gid = f.opt.UID, f.opt.GID
}
