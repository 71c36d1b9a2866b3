package templates

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"text/template"
	"text/template/parse"
	"time"

	"github.com/infisicalfs/infisicalfs/config"
)

// Spec is one template to render: where it appears and its text.
type Spec struct {
	Path     string        // mount-relative file path, "rendered/app.env"
	Name     string        // what parse and execute errors call it: the source file, or "template <Path>"
	Text     string        // the template text
	Mode     uint32        // file mode; 0 = the mount's file mode
	OnChange []string      // argv run after a re-render changed the bytes; nil = none
	Timeout  time.Duration // for OnChange
}

// FromConfig reads each [[template]]'s source file (or takes its content)
// into a Spec. A missing or unreadable source is an error naming the
// template.
func FromConfig(ts []config.Template) ([]Spec, error) {
	var specs []Spec
	var errs []error
	for i, t := range ts {
		s := Spec{Path: strings.Trim(t.Path, "/"), OnChange: t.OnChange, Timeout: t.Timeout.Duration}
		if t.Mode != "" {
			m, err := config.ParseFileMode(t.Mode)
			if err != nil {
				errs = append(errs, fmt.Errorf("template[%d] %s: %w", i, t.Path, err))
				continue
			}
			s.Mode = m
		}
		switch {
		case t.Source != "":
			b, err := os.ReadFile(t.Source)
			if err != nil {
				errs = append(errs, fmt.Errorf("template[%d] %s: read source: %w", i, t.Path, err))
				continue
			}
			s.Name, s.Text = t.Source, string(b)
		default:
			s.Name, s.Text = "template "+s.Path, t.Content
		}
		specs = append(specs, s)
	}
	return specs, errors.Join(errs...)
}

// SourceFiles lists the template files of ts, for the config watcher: a
// changed template file reloads like a changed config file.
func SourceFiles(ts []config.Template) []string {
	var out []string
	for _, t := range ts {
		if t.Source != "" {
			out = append(out, t.Source)
		}
	}
	return out
}

// Function names, as the agent spells them.
const (
	fnListSecrets       = "listSecrets"
	fnSecret            = "secret" // deprecated alias of listSecrets
	fnListSecretsBySlug = "listSecretsByProjectSlug"
	fnGetSecretByName   = "getSecretByName"
	fnDynamicSecret     = "dynamic_secret"
	fnDynamicSecretNew  = "dynamicSecret"
)

// parseFuncs are stand-ins with the real signatures, so that parsing checks
// names and a template can be parsed without a Source.
var parseFuncs = template.FuncMap{
	fnListSecrets:       func(string, string, string, ...string) ([]Secret, error) { return nil, nil },
	fnSecret:            func(string, string, string, ...string) ([]Secret, error) { return nil, nil },
	fnListSecretsBySlug: func(string, string, string, ...string) ([]Secret, error) { return nil, nil },
	fnGetSecretByName:   func(string, string, string, string) (Secret, error) { return Secret{}, nil },
	fnDynamicSecret:     dynamicSecret,
	fnDynamicSecretNew:  dynamicSecret,
	"add":               func(a, b int) int { return a + b },
	"minus":             func(a, b int) int { return a - b },
}

// ErrDynamicSecret is what dynamic_secret answers.
var ErrDynamicSecret = errors.New("dynamic_secret: dynamic secrets (leases) are an Infisical licensed feature that infisicalfs does not support; render static secrets with listSecrets or getSecretByName")

func dynamicSecret(...string) (map[string]any, error) { return nil, ErrDynamicSecret }

// parseSpec parses the template text. text/template's errors already say
// "template: NAME:LINE: ...", which names the file and line.
func parseSpec(s Spec) (*template.Template, error) {
	t, err := template.New(s.Name).Funcs(parseFuncs).Parse(s.Text)
	if err != nil {
		return nil, fmt.Errorf("template %s: parse: %w", s.Path, err)
	}
	return t, nil
}

// staticScopes finds calls whose project, env and path are literal strings
// (the usual case), so the scopes a template needs are known before its
// first render. Calls with computed arguments are learned when they run.
func staticScopes(t *template.Template) (scopes []Scope, usesDynamic bool) {
	for _, tt := range t.Templates() {
		if tt.Tree == nil || tt.Root == nil {
			continue
		}
		walk(tt.Root, func(cmd *parse.CommandNode) {
			if len(cmd.Args) == 0 {
				return
			}
			id, ok := cmd.Args[0].(*parse.IdentifierNode)
			if !ok {
				return
			}
			lit := func(i int) (string, bool) {
				if i >= len(cmd.Args) {
					return "", false
				}
				s, ok := cmd.Args[i].(*parse.StringNode)
				if !ok {
					return "", false
				}
				return s.Text, true
			}
			switch id.Ident {
			case fnDynamicSecret, fnDynamicSecretNew:
				usesDynamic = true
				return
			case fnListSecrets, fnSecret, fnListSecretsBySlug, fnGetSecretByName:
			default:
				return
			}
			p, ok1 := lit(1)
			e, ok2 := lit(2)
			f, ok3 := lit(3)
			if !ok1 || !ok2 || !ok3 {
				return
			}
			path, err := cleanPath(f)
			if err != nil {
				return
			}
			sc := Scope{Project: p, Env: e, Path: path, BySlug: id.Ident == fnListSecretsBySlug}
			if id.Ident != fnGetSecretByName {
				if o, ok := lit(4); ok {
					if opt, err := parseOptions([]string{o}); err == nil {
						sc.Recursive = opt.Recursive
					}
				}
			}
			scopes = append(scopes, sc)
		})
	}
	return scopes, usesDynamic
}

// walk calls fn for every command in the tree.
func walk(n parse.Node, fn func(*parse.CommandNode)) {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return
		}
		for _, c := range n.Nodes {
			walk(c, fn)
		}
	case *parse.ActionNode:
		walk(n.Pipe, fn)
	case *parse.PipeNode:
		if n == nil {
			return
		}
		for _, c := range n.Cmds {
			walk(c, fn)
		}
	case *parse.CommandNode:
		fn(n)
		for _, a := range n.Args {
			walk(a, fn)
		}
	case *parse.IfNode:
		walkBranch(&n.BranchNode, fn)
	case *parse.RangeNode:
		walkBranch(&n.BranchNode, fn)
	case *parse.WithNode:
		walkBranch(&n.BranchNode, fn)
	case *parse.TemplateNode:
		walk(n.Pipe, fn)
	case *parse.ChainNode: // (getSecretByName ...).Value
		walk(n.Node, fn)
	}
}

func walkBranch(b *parse.BranchNode, fn func(*parse.CommandNode)) {
	walk(b.Pipe, fn)
	walk(b.List, fn)
	walk(b.ElseList, fn)
}

// cleanPath gives a secret path the canonical form the vault uses ("/",
// "/a/b"), as Infisical trims and normalizes it.
func cleanPath(p string) (string, error) {
	p = strings.TrimSpace(p)
	parts := strings.Split(p, "/")
	var keep []string
	for _, c := range parts {
		switch c {
		case "":
		case ".", "..":
			return "", fmt.Errorf("secret path %s: '.' and '..' are not folder names", p)
		default:
			keep = append(keep, c)
		}
	}
	return "/" + strings.Join(keep, "/"), nil
}
