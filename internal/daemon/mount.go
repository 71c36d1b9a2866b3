package daemon

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/infisicalfs/infisicalfs/access"
	"github.com/infisicalfs/infisicalfs/audit"
	"github.com/infisicalfs/infisicalfs/config"
	"github.com/infisicalfs/infisicalfs/fs"
	"github.com/infisicalfs/infisicalfs/syncer"
	"github.com/infisicalfs/infisicalfs/templates"
)

// View is how one mount shows a Source.
type View struct {
	ReadOnly bool
	// Flat makes the mount root one environment's root folder: Project
	// (slug or ID) and Env pick it, or, left empty, the Source's only one.
	Flat         bool
	Project, Env string

	UID, GID    uint32
	FileMode    uint32 // 0: 0400 read-only, 0600 read-write
	TrimNewline bool
	AllowOther  bool
	DebugFUSE   bool
	Version     string // shown in .status

	// Access rules and the audit log (issue 17; see fs/access.go).
	Access       []access.Spec
	AuditLog     string // "" none, "-" stderr
	AuditMaxSize int64
	AuditKeep    int
	AllOpens     bool // audit = "all-opens"
}

// ViewOf is the view a config asks for, owned by the mounting user unless
// uid and gid say otherwise.
func ViewOf(cfg config.Config) View {
	v := View{
		ReadOnly: cfg.ReadOnly, Flat: cfg.Flat,
		UID: uint32(os.Getuid()), GID: uint32(os.Getgid()),
		FileMode: cfg.FileMode, TrimNewline: cfg.TrimNewline,
		AllowOther: cfg.AllowOther, DebugFUSE: cfg.DebugFUSE,
		Access: cfg.Access, AuditLog: cfg.AuditLog, AuditMaxSize: cfg.AuditMaxSize.Bytes,
		AuditKeep: cfg.AuditKeep, AllOpens: cfg.Audit == config.AuditAllOpens,
	}
	if cfg.UID >= 0 {
		v.UID = uint32(cfg.UID)
	}
	if cfg.GID >= 0 {
		v.GID = uint32(cfg.GID)
	}
	if cfg.Flat && len(cfg.Projects) == 1 && len(cfg.Envs) == 1 {
		v.Project, v.Env = cfg.Projects[0], cfg.Envs[0]
	}
	return v
}

// StatusDoc is .status: the syncer's state plus who serves the mount.
// `infisicalfs status` reads it back.
type StatusDoc struct {
	PID        int    `json:"pid"`
	Version    string `json:"version"`
	Mountpoint string `json:"mountpoint"`
	ReadOnly   bool   `json:"read_only"`
	syncer.Status
	Templates []templates.Status `json:"templates,omitempty"`
	Access    *AccessStatus      `json:"access,omitempty"`
}

// AccessStatus is .status's account of the access rules: denials per rule
// (then those where no rule matched) and the audit log's counts.
type AccessStatus struct {
	Rules   int                  `json:"rules"`
	Denials []access.RuleDenials `json:"denials"`
	Audit   audit.Stats          `json:"audit"`
}

// Mount is one view of a Source served at a mount point.
type Mount struct {
	src  *Source
	fsys *fs.FS
	srv  *fuse.Server
	alog *audit.Log
	dir  string
	done chan struct{} // closed when the kernel let go of the mount

	unmountOnce sync.Once
	unmountErr  error
}

// Mount serves view v of s at mountpoint, which must be an existing
// directory (see CheckMountpoint).
func (s *Source) Mount(mountpoint string, v View) (*Mount, error) {
	fo := fs.Options{
		Vault: s.vault, Backend: s.sync, Logger: s.log,
		ReadOnly: v.ReadOnly, TrimNewline: v.TrimNewline,
		FileMode: v.FileMode, AllowOther: v.AllowOther, DebugFUSE: v.DebugFUSE,
		UID: v.UID, GID: v.GID,
	}
	if v.Flat {
		id, env, err := s.flatScope(v.Project, v.Env)
		if err != nil {
			return nil, err
		}
		fo.Flat, fo.FlatProject, fo.FlatEnv = true, id, env
	}
	// The audit log opens first: a bad path fails the mount at start.
	alog, err := audit.Open(audit.Options{Path: v.AuditLog, MaxSize: v.AuditMaxSize, Keep: v.AuditKeep, Logger: s.log})
	if err != nil {
		return nil, fmt.Errorf("audit_log: %w", err)
	}
	fo.Audit, fo.AuditOpens, fo.AllOpens = alog, v.AuditLog != "", v.AllOpens
	// Set before the mount serves: .status is read only through it.
	var fsys *fs.FS
	var statusMu sync.Mutex
	fo.Status = func() []byte {
		statusMu.Lock()
		defer statusMu.Unlock()
		doc := StatusDoc{PID: os.Getpid(), Version: v.Version, Mountpoint: mountpoint, ReadOnly: v.ReadOnly, Status: s.sync.Status()}
		if s.tmpl != nil {
			doc.Templates = s.tmpl.Status()
		}
		eng := fsys.Access()
		doc.Access = &AccessStatus{Rules: eng.Rules().Len(), Denials: eng.Denials(), Audit: alog.Stats()}
		b, _ := json.MarshalIndent(doc, "", "  ")
		return append(b, '\n')
	}
	if s.tmpl != nil {
		if err := s.templateCollisions(s.rootNames(fo)); err != nil {
			alog.Close()
			return nil, err
		}
		fo.Templates = s.tmpl
	}
	fsys = fs.New(fo)
	rules, err := access.Compile(v.Access, fsys.AccessDefaults())
	if err == nil {
		err = fsys.SetAccess(rules) // before Mount: it decides whether opens reach the daemon
	}
	if err != nil {
		alog.Close()
		return nil, err
	}
	// Records carry the caller's executable and cgroup where there is a
	// file to write them to.
	fsys.Access().IdentifyAlways(v.AuditLog != "")
	s.addView(fsys)
	srv, err := fsys.Mount(mountpoint)
	if err != nil {
		s.removeView(fsys)
		alog.Close()
		return nil, err
	}
	m := &Mount{src: s, fsys: fsys, srv: srv, alog: alog, dir: mountpoint, done: make(chan struct{})}
	go func() { srv.Wait(); close(m.done) }()
	return m, nil
}

// rootNames are the names the mount root shows besides templates: .status
// and the project directories, or in a flat view the environment's root
// keys and folders.
func (s *Source) rootNames(fo fs.Options) []string {
	names := []string{".status"}
	if fo.Flat {
		l := s.vault.List(fo.FlatProject, fo.FlatEnv, "/")
		names = append(names, l.Keys...)
		return append(names, l.Folders...)
	}
	for _, p := range s.sync.Projects() {
		names = append(names, p.Dir)
	}
	return names
}

// flatScope finds the one project environment a flat view shows.
func (s *Source) flatScope(project, env string) (id, envSlug string, err error) {
	ps := s.sync.Projects()
	if project == "" && env == "" {
		if len(ps) != 1 || len(ps[0].Envs) != 1 {
			return "", "", fmt.Errorf("a flat mount needs exactly one project and one environment; the filters match %d projects", len(ps))
		}
		return ps[0].ID, ps[0].Envs[0], nil
	}
	for _, p := range ps {
		if (p.ID == project || p.Dir == project) && slices.Contains(p.Envs, env) {
			return p.ID, env, nil
		}
	}
	return "", "", fmt.Errorf("a flat mount of %s/%s: no such project environment is readable by the identity", project, env)
}

// FS is the mounted filesystem (tests count its requests).
func (m *Mount) FS() *fs.FS { return m.fsys }

// Dir is the mount point.
func (m *Mount) Dir() string { return m.dir }

// Done is closed when the mount is gone, also when unmounted from outside.
func (m *Mount) Done() <-chan struct{} { return m.done }

// Unmount detaches the mount, retrying for up to 5 s while it is busy, and
// stops telling it of changes.
func (m *Mount) Unmount() error {
	m.unmountOnce.Do(func() {
		var err error
		for i := 0; i < 50; i++ {
			if err = m.srv.Unmount(); err == nil {
				break
			}
			select {
			case <-m.done: // unmounted from outside meanwhile
				err = nil
			case <-time.After(100 * time.Millisecond):
				continue
			}
			break
		}
		if err != nil {
			m.unmountErr = fmt.Errorf("unmount %s: the mount is busy: %w", m.dir, err)
			return
		}
		<-m.done
		m.src.removeView(m.fsys)
		m.fsys.Close()
		m.alog.Close()
	})
	return m.unmountErr
}
