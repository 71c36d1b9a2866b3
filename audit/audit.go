// Package audit writes the local audit log: one value-free JSON line per
// open the daemon decided, with a rate-limited log line per denial.
//
// It never sees a secret value: Log takes only a Record, whose fields are a
// path, ids, the caller's executable and cgroup, a rule index and the
// decision (a test checks the field kinds), and nothing here writes any
// other text to the file.
//
// Wiring (fs, in Open, after access.Engine.Decide):
//
//	d := eng.Decide(path, caller, wantWrite)
//	alog.Record(audit.Of(path, audit.ModeOf(flags), caller, d))
//	if !d.Allowed { return nil, 0, syscall.EACCES }
//
// Record never blocks: records queue in a bounded buffer for one writer
// goroutine, and when the buffer is full they are counted (Stats) and
// dropped rather than holding up a FUSE request. A write error is logged
// once, with the count of records lost when writing works again.
// Rotation is by size: path.1 is the newest rotated file, path.Keep the
// oldest; do not also rotate the file with logrotate.
package audit

import (
	"encoding/json"
	"time"

	"github.com/infisicalfs/infisicalfs/access"
)

// Mode is how a file was opened.
type Mode uint8

// Open modes.
const (
	Read Mode = iota
	Write
	ReadWrite
)

func (m Mode) String() string {
	switch m {
	case Write:
		return "write"
	case ReadWrite:
		return "read-write"
	}
	return "read"
}

// ModeOf reads the access mode from open(2) flags.
func ModeOf(flags uint32) Mode {
	switch flags & 3 { // O_ACCMODE
	case 1:
		return Write
	case 2:
		return ReadWrite
	}
	return Read
}

// Wants reports whether the mode writes, for access.Engine.Decide.
func (m Mode) Wants() bool { return m != Read }

// Record is one decided open. Its fields are what the audit line holds;
// there is deliberately no field for content or free text from a caller.
type Record struct {
	Time    time.Time
	Path    string // mount path, e.g. "webshop/prod/DATABASE_URL"
	Mode    Mode
	UID     uint32
	GID     uint32
	PID     uint32
	Exe     string // realpath of the caller's executable; "" if not read
	Cgroup  string // the caller's cgroup v2 path; "" if not read
	Rule    int    // deciding rule's index; -1 none (file modes decided)
	Allowed bool
	Reason  string // access.Decision.Reason: rule and ids, never a value
}

// Of makes the record of one decision, stamped now.
func Of(path string, m Mode, c access.Caller, d access.Decision) Record {
	return Record{
		Time: time.Now(), Path: path, Mode: m,
		UID: c.UID, GID: c.GID, PID: c.PID,
		Exe: d.Exe, Cgroup: d.Cgroup,
		Rule: d.RuleIndex, Allowed: d.Allowed, Reason: d.Reason,
	}
}

// line is the JSON shape of a Record, one per line in the file.
type line struct {
	Time     string `json:"time"` // RFC 3339 with nanoseconds, UTC
	Path     string `json:"path"`
	Mode     string `json:"mode"` // read | write | read-write
	UID      uint32 `json:"uid"`
	GID      uint32 `json:"gid"`
	PID      uint32 `json:"pid"`
	Exe      string `json:"executable"`
	Cgroup   string `json:"cgroup"`
	Rule     *int   `json:"rule"`     // null: no rule matched
	Decision string `json:"decision"` // allow | deny
	Reason   string `json:"reason"`
}

func (r Record) marshal() ([]byte, error) {
	l := line{
		Time: r.Time.UTC().Format(time.RFC3339Nano), Path: r.Path, Mode: r.Mode.String(),
		UID: r.UID, GID: r.GID, PID: r.PID, Exe: r.Exe, Cgroup: r.Cgroup,
		Decision: "deny", Reason: r.Reason,
	}
	if r.Rule >= 0 {
		i := r.Rule
		l.Rule = &i
	}
	if r.Allowed {
		l.Decision = "allow"
	}
	b, err := json.Marshal(l)
	return append(b, '\n'), err
}
