package refs

import (
	"encoding/json"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
)

// world is a test Lookup over one project's raw secrets. Like a vault it
// hands out a copy per call and, as a Releaser, wipes it when given back;
// outstanding counts copies not yet released.
type world struct {
	secrets map[Addr]Entry
	denied  func(Addr) bool
	unknown func(Addr) bool

	mu          sync.Mutex
	outstanding int
	lookups     int
}

func newWorld() *world {
	return &world{
		secrets: map[Addr]Entry{},
		denied: func(a Addr) bool {
			return a.Env == "restricted" || a.Env == "dev" && (a.Path == "/private" || strings.HasPrefix(a.Path, "/private/"))
		},
		unknown: func(a Addr) bool { return a.Env == "staging" },
	}
}

func (w *world) set(a Addr, value string, skip bool) {
	w.secrets[a] = Entry{Status: Found, Value: []byte(value), SkipMultiline: skip}
}

func (w *world) Secret(a Addr) Entry {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.lookups++
	switch {
	case w.denied(a):
		return Entry{Status: Denied}
	case w.unknown(a):
		return Entry{Status: Unknown}
	}
	e, ok := w.secrets[a]
	if !ok {
		return Entry{Status: Missing}
	}
	w.outstanding++
	e.Value = slices.Clone(e.Value)
	return e
}

func (w *world) Release(_ Addr, e Entry) {
	if e.Status != Found {
		return
	}
	clear(e.Value) // a result aliasing a lookup's copy would show up as zeros
	w.mu.Lock()
	w.outstanding--
	w.mu.Unlock()
}

// plainLookup is a read-only Lookup without Releaser, safe for concurrent use.
type plainLookup map[Addr]Entry

func (p plainLookup) Secret(a Addr) Entry {
	if e, ok := p[a]; ok {
		return e
	}
	return Entry{Status: Missing}
}

type corpusExpect struct {
	Value   *string  `json:"value"`
	Error   string   `json:"error"`
	Ref     string   `json:"ref"`
	Formed  bool     `json:"formed"`
	HasRefs *bool    `json:"hasRefs"`
	Deps    []string `json:"deps"`
}

type corpusCase struct {
	Env       string        `json:"env"`
	Path      string        `json:"path"`
	Key       string        `json:"key"`
	Classic   corpusExpect  `json:"classic"`
	Multipass *corpusExpect `json:"multipass"`
	Why       string        `json:"why"`
}

func (c corpusCase) addr() Addr {
	a := Addr{Env: c.Env, Path: c.Path, Key: c.Key}
	if a.Env == "" {
		a.Env = "dev"
	}
	if a.Path == "" {
		a.Path = "/"
	}
	return a
}

func (c corpusCase) want(d Dialect) corpusExpect {
	if d == Multipass && c.Multipass != nil {
		return *c.Multipass
	}
	return c.Classic
}

type corpus struct {
	Secrets []struct {
		Env, Path, Key, Value string
		SkipMultiline         bool `json:"skipMultiline"`
	} `json:"secrets"`
	Cases []corpusCase `json:"cases"`
}

func loadCorpus(t testing.TB) (*corpus, *world) {
	t.Helper()
	b, err := os.ReadFile("testdata/corpus.json")
	if err != nil {
		t.Fatal(err)
	}
	var c corpus
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatalf("corpus.json: %v", err)
	}
	w := newWorld()
	for _, s := range c.Secrets {
		w.set(Addr{Env: s.Env, Path: s.Path, Key: s.Key}, s.Value, s.SkipMultiline)
	}
	return &c, w
}

// canaries are the corpus values that hold no reference syntax: no error
// string may contain one.
func (w *world) canaries() []string {
	var out []string
	for _, e := range w.secrets {
		if v := string(e.Value); len(v) >= 6 && !strings.Contains(v, "$") {
			out = append(out, v)
		}
	}
	return out
}

func parseAddr(t testing.TB, s string) Addr {
	t.Helper()
	parts := strings.SplitN(s, ":", 3)
	if len(parts) != 3 {
		t.Fatalf("bad address %q in corpus", s)
	}
	return Addr{Env: parts[0], Path: parts[1], Key: parts[2]}
}

func sortedAddrs(as []Addr) []Addr {
	as = slices.Clone(as)
	slices.SortFunc(as, Addr.less)
	return as
}
