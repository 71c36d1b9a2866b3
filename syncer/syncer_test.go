package syncer

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/infisicalfs/infisicalfs/infisical"
	"github.com/infisicalfs/infisicalfs/infisical/infisicaltest"
	"github.com/infisicalfs/infisicalfs/state"
	"github.com/infisicalfs/infisicalfs/vault"
)

type fixture struct {
	srv     *infisicaltest.Server
	project string
	vault   *vault.Vault
	state   *state.Store
	hasher  *state.Hasher // nil: HMAC under a key derived from "secret"
	opt     func(*Options)
	retry   infisical.RetryPolicy // zero: the client's defaults
	sync    *Syncer
	logs    *bytes.Buffer
	changes [][]string
	mu      sync.Mutex
}

func newFixture(t *testing.T, statePath string, seed func(*infisicaltest.Server, string)) *fixture {
	t.Helper()
	return serverFixture(t, seed).start(t, statePath)
}

// serverFixture is a fixture with its server, project and identity, not
// started yet: a test may set opt or hasher first.
func serverFixture(t *testing.T, seed func(*infisicaltest.Server, string)) *fixture {
	t.Helper()
	f := &fixture{srv: infisicaltest.New(), logs: &bytes.Buffer{}}
	t.Cleanup(f.srv.Close)
	f.project = f.srv.AddProject("webshop", "Webshop", "dev")
	f.srv.AddIdentity("id", "secret")
	f.srv.Grant("id", f.project, infisicaltest.PermReadWrite)
	if seed != nil {
		seed(f.srv, f.project)
	}
	return f
}

func (f *fixture) start(t *testing.T, statePath string) *fixture {
	t.Helper()
	log := slog.New(slog.NewTextHandler(f.logs, nil))
	client, err := infisical.New(infisical.Config{SiteURL: f.srv.URL(), ClientID: "id", ClientSecret: "secret", Retry: f.retry})
	if err != nil {
		t.Fatal(err)
	}
	if f.vault, err = vault.New(log); err != nil {
		t.Fatal(err)
	}
	if f.hasher == nil {
		key, _ := state.MountKey([]byte("secret"), statePath)
		f.hasher, _ = state.NewHasher(state.HashHMAC, key)
	}
	if f.state, err = state.OpenWith(statePath, state.Options{Logger: log, Hasher: f.hasher}); err != nil {
		t.Fatal(err)
	}
	opt := Options{API: client, Vault: f.vault, State: f.state, Logger: log, IncludeImports: true,
		OnChange: func(p []string) { f.mu.Lock(); f.changes = append(f.changes, p); f.mu.Unlock() }}
	if f.opt != nil {
		f.opt(&opt)
	}
	f.sync = New(opt)
	return f
}

func (f *fixture) syncNow(t *testing.T) {
	t.Helper()
	if err := f.sync.Sync(context.Background(), false); err != nil {
		t.Fatal(err)
	}
}

func TestUnchangedRefreshIsOneListRequest(t *testing.T) {
	f := newFixture(t, filepath.Join(t.TempDir(), "s.json"), func(s *infisicaltest.Server, p string) {
		s.SetSecret(p, "dev", "/", "A", "1")
		s.SetSecret(p, "dev", "/x", "B", "2")
	})
	f.syncNow(t) // first: projects, list, folders
	f.syncNow(t) // the cycle that re-lists projects (every tenth) is past
	f.srv.ResetRequests()
	f.syncNow(t)
	if n := f.srv.Count("GET", "/api/v4/secrets"); n != 1 {
		t.Errorf("%d list requests, want 1", n)
	}
	for _, r := range f.srv.Requests() {
		if r.Path == "/api/v4/secrets" && r.Status != 304 {
			t.Errorf("unchanged list answered %d, want 304", r.Status)
		}
		if strings.HasPrefix(r.Path, "/api/v2/folders") || strings.HasPrefix(r.Path, "/api/v1/projects") {
			t.Errorf("unchanged refresh also sent %s %s", r.Method, r.Path)
		}
	}
	if len(f.changes) != 1 {
		t.Errorf("OnChange ran %d times over one change and two unchanged refreshes, want 1", len(f.changes))
	}
	f.srv.SetSecret(f.project, "dev", "/x", "B", "3")
	f.syncNow(t)
	if len(f.changes) != 2 || strings.Join(f.changes[1], ",") != "webshop/dev/x/B" {
		t.Errorf("OnChange after one change: %v", f.changes)
	}
	if v, _, err := f.vault.Get(vault.Addr{Project: f.project, Env: "dev", Path: "/x", Key: "B"}); err != nil || string(v.Bytes()) != "3" {
		t.Errorf("vault after change: %v", err)
	}
}

func TestChangesWhileNotMountedAreLoggedByName(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.json")
	f := newFixture(t, path, func(s *infisicaltest.Server, p string) {
		s.SetSecret(p, "dev", "/", "KEEP", "1")
		s.SetSecret(p, "dev", "/", "EDIT", "1")
		s.SetSecret(p, "dev", "/", "GONE", "1")
	})
	f.syncNow(t)
	f.srv.SetSecret(f.project, "dev", "/", "EDIT", "2")
	f.srv.DeleteSecret(f.project, "dev", "/", "GONE")
	f.srv.SetSecret(f.project, "dev", "/", "NEW", "1")
	g := (&fixture{srv: f.srv, project: f.project, logs: &bytes.Buffer{}}).start(t, path)
	g.syncNow(t)
	log := g.logs.String()
	for _, want := range []string{"changed in Infisical while not mounted", "EDIT", "GONE", "NEW"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	if strings.Contains(log, "KEEP") {
		t.Errorf("an unchanged secret was reported:\n%s", log)
	}
}

func TestPushRecordsWhatTheServerStored(t *testing.T) {
	f := newFixture(t, filepath.Join(t.TempDir(), "s.json"), nil)
	f.syncNow(t)
	a := vault.Addr{Project: f.project, Env: "dev", Path: "/", Key: "K"}
	if err := f.sync.Push(a, []byte("  padded  "), 0); err != nil {
		t.Fatal(err)
	}
	v, m, err := f.vault.Get(a)
	if err != nil || string(v.Bytes()) != "padded" || m.Version != 1 {
		t.Errorf("vault holds %q v%d (%v), want the server's trimmed value", v.Bytes(), m.Version, err)
	}
	f.srv.ResetRequests()
	if err := f.sync.Push(a, []byte("two"), 0); err != nil {
		t.Fatal(err)
	}
	if f.srv.Count("PATCH", "/api/v4/secrets/") != 1 || len(f.srv.Requests()) != 1 {
		t.Errorf("update of a known secret sent %d requests", len(f.srv.Requests()))
	}
	if err := f.sync.Delete(a, 0); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := f.srv.Secret(f.project, "dev", "/", "K"); ok {
		t.Error("delete did not reach the server")
	}
	if err := f.sync.Delete(a, 0); err != nil {
		t.Errorf("deleting a secret already gone: %v", err)
	}
	snap := f.state.Snapshot()
	if snap.PushCount != 3 {
		t.Errorf("push count %d, want 3", snap.PushCount)
	}
}

// TestChangedRefreshReadsFoldersOnce: a change costs one folder request
// however deep the tree, and empty folders appear.
func TestChangedRefreshReadsFoldersOnce(t *testing.T) {
	f := newFixture(t, filepath.Join(t.TempDir(), "s.json"), func(s *infisicaltest.Server, p string) {
		for i := 0; i < 20; i++ {
			s.SetSecret(p, "dev", fmt.Sprintf("/f%d/g%d", i, i), "K", "v")
		}
	})
	f.syncNow(t)
	f.syncNow(t)
	f.srv.AddFolder(f.project, "dev", "/empty/deeper")
	f.srv.SetSecret(f.project, "dev", "/f3/g3", "K", "changed")
	f.srv.ResetRequests()
	f.syncNow(t)
	if n := f.srv.Count("GET", "/api/v2/folders"); n != 1 {
		t.Errorf("%d folder requests for one change in a 41-folder tree, want 1", n)
	}
	if !f.vault.HasFolder(f.project, "dev", "/empty/deeper") {
		t.Error("an empty folder did not appear")
	}
}
