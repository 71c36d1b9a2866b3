// Package access decides which caller may open which secret: it compiles
// the [[access]] rules, turns the rules the kernel can enforce into
// per-file owner, group and mode, and decides the other opens from the
// kernel-supplied caller (uid, gid, pid → executable, hash, cgroup).
//
// # Rules
//
// Each rule has a path glob (`*` one segment, dot names included; `**` any
// number of segments), conditions and allow = read | write (read and
// write) | none. The first rule whose path and conditions all match
// decides. Where none matches, the mount's owner, group and file mode
// decide exactly as without rules ("as today"). Conditions of different
// kinds must all hold; values of one kind are alternatives; uids, gids,
// users and groups are one kind (the caller's uid, or any of its groups,
// primary or supplementary). Names are resolved once, at Compile.
//
// # What fs calls (the integration API)
//
// At mount:
//
//	def := access.Defaults{UID: uid, GID: gid, FileMode: fileMode, DirMode: dirMode, ReadOnly: ro}
//	rules, err := access.Compile(cfg.Access, def)        // errors name access[N] and the field
//	eng := access.NewEngine(rules)
//	alog, err := audit.Open(audit.Options{Path: cfg.AuditLog, MaxSize: cfg.AuditMaxSize.Bytes, Keep: cfg.AuditKeep, Logger: log})
//	eng.IdentifyAlways(cfg.AuditLog != "")              // records then carry exe and cgroup
//	noOpen := ro && !eng.Rules().AnyDaemon() && cfg.Audit != config.AuditAllOpens
//	// only when noOpen may a read-only mount answer OPEN with ENOSYS
//
// Lookup, Getattr, Setattr answers (file and directory nodes), with the
// node's mount path ("project/env/folder/KEY", flat mounts relative to the
// root):
//
//	a := eng.Attr(path, isDir)      // cached per rule set, ~100 ns
//	out.Uid, out.Gid = a.UID, a.GID
//	out.Mode = S_IFREG | a.Mode     // fs still drops write bits for read-only files (imports, views)
//
// Open (every open that reaches the daemon; with no rules and no audit log
// fs may skip this):
//
//	c, _ := fuse.FromContext(ctx)
//	caller := access.Caller{PID: c.Pid, UID: c.Uid, GID: c.Gid}
//	m := audit.ModeOf(flags)
//	d := eng.Decide(path, caller, m.Wants())
//	alog.Record(audit.Of(path, m, caller, d)) // never blocks
//	if !d.Allowed { return nil, 0, syscall.EACCES }
//
// On a read-only mount that must see opens (noOpen false), answer an
// allowed read open with FOPEN_KEEP_CACHE so the page cache stays.
//
// Not only Open: where Attr.Daemon is set the modes let through more than
// the rules do, so every other operation that reads or changes a value
// without an open must ask Decide too, with the same caller: Getxattr of a
// value-bearing attribute (user.infisical.raw) as a read, Setxattr
// (user.infisical.comment) and Setattr with a size (truncate(2)) as a
// write, answering EACCES on denial. Where Daemon is false the kernel has
// already checked those against the exact modes.
//
// .status: eng.Denials() (per rule, then "no rule"), alog.Stats().
//
// On reload (config.Diff reports "access"):
//
//	next, err := access.Compile(newCfg.Access, def) // on error keep the old rules, log it
//	ch := eng.Swap(next)
//	for each node the kernel knows: if ch.AttrChanged(path, isDir) { inode.NotifyContent(-1, 0) }
//	// off -1 invalidates attributes only; the kernel refetches them at the
//	// next permission check. Needed: a refusal on stale attributes makes
//	// the kernel refetch and retry, an admission does not (TestMountEnforcement).
//	if ch.AnyDaemonChanged() && the mount answered OPEN with ENOSYS { log "access rules need a remount" }
//
// # Which rules the kernel enforces
//
// Rules that name only uids, gids, users and groups become modes (see
// Rules.attr for the search): with default_permissions the kernel checks
// them at every open, so a repeat read costs the daemon nothing. A file has
// one owner and one group, so two uids with the same permission need a
// group that holds both; rules naming executables, hashes or cgroups never
// fit; a rule naming uid 0 with less than write does not either (root
// passes every mode). Such a path gets the tightest modes that still admit
// everyone the rules might allow, Attr.Daemon is true and Attr.Why says
// why, and its opens must reach Decide. Directories are opened up (r-x for
// group and other) when any rule allows anything, so that callers can walk
// to what they may read: names are visible, values are not.
//
// # Caller identity
//
// Decide reads /proc/PID only when a rule on the path needs it (or the
// audit log does): exe (readlink, and open for the hash), cgroup (the v2
// "0::" line), status (fsuid, fsgid, supplementary groups). Never argv,
// environ or comm, which the process sets itself. Reads go through a
// descriptor of the /proc/PID directory opened first (lookups under it fail
// once that process is gone, whoever has the pid next), and a pidfd
// (PIDFD_THREAD for threads: FUSE stamps thread ids) must still be alive
// after them; the fsuid and fsgid read must be the request's. A caller that cannot be identified is denied by the first
// rule that needed it (fail closed), never matched as someone else.
// SHA-256 hashes are cached by device, inode, size, mtime and ctime (ctime
// because an owner can set mtime back).
//
// # Threat model and limits
//
//   - Root passes every file mode and can read the daemon's memory; rules
//     do not restrain root. Decide applies rules to root where its opens
//     reach the daemon, which is a speed bump, not a boundary.
//   - A process that can ptrace an allowed process can read through it.
//     Executable rules name a program, not intent: an interpreter
//     (/usr/bin/python3) allows every script. Use yama ptrace_scope >= 1,
//     and compiled binaries with sha256.
//   - Decisions are made at open. A process keeps what it opened across
//     exec (unless O_CLOEXEC) and can pass the descriptor on (SCM_RIGHTS).
//     A rule change does not revoke open descriptors.
//   - Opens the kernel answers without the daemon (a read-only mount whose
//     OPEN is ENOSYS) are checked by modes only and not audited; audit =
//     "all-opens" sends every open to the daemon.
//   - Rules match the literal path. A folder's views (.env, .json, .yaml)
//     hold every value of the folder, and .raw/KEY and .history/KEY/N hold
//     KEY's value: cover them with `**` rules over the folder, or have fs
//     decide an alias by its key's path as well.
//   - Executables are paths as the daemon sees them (its mount namespace);
//     for containers prefer sha256 or cgroups. Reading another user's
//     /proc/PID/exe needs root or CAP_SYS_PTRACE. A binary replaced on disk
//     shows " (deleted)" and matches no path; its hash is the running file's.
//   - Cgroup paths are relative to the daemon's cgroup namespace, and
//     whoever may write a cgroup.procs file can move processes into it.
//   - The caller's pid must be visible in the pid namespace of the mount
//     (else FUSE sends 0): rules that need identity then deny.
package access
