package agentconfig

import (
	"cmp"
	"context"
	"slices"

	"github.com/infisicalfs/infisicalfs/infisical"
	"github.com/infisicalfs/infisicalfs/templates"
)

// serverSource is a templates.Source that pulls from an Infisical server
// (infisicaltest, over real HTTP) on every call: the data the agent itself
// would fetch, so a render against it checks our semantics against the
// server's expansion and imports.
type serverSource struct {
	c     *infisical.Client
	slugs map[string]string
}

func (s *serverSource) ProjectID(slug string) (string, error) {
	if id, ok := s.slugs[slug]; ok {
		return id, nil
	}
	return "", templates.ErrNotSynced
}

func (s *serverSource) List(project, env, path string, recursive, expand bool) ([]templates.Item, error) {
	res, err := s.c.ListSecrets(context.Background(), infisical.ListOptions{
		ProjectID: project, Environment: env, Path: path, Recursive: recursive, IncludeImports: true, ExpandReferences: expand,
	})
	if err != nil {
		return nil, err
	}
	own := slices.Clone(res.Secrets)
	slices.SortFunc(own, func(a, b *infisical.Secret) int {
		return cmp.Or(cmp.Compare(a.Path, b.Path), cmp.Compare(a.Key, b.Key))
	})
	var out []templates.Item
	for _, sec := range own {
		out = append(out, templates.Item{Key: sec.Key, Path: sec.Path, Value: sec.Value, ID: sec.ID, Type: sec.Type})
	}
	// The agent walks imports from the last to the first (later imports win).
	for i := len(res.Imports) - 1; i >= 0; i-- {
		for _, sec := range res.Imports[i].Secrets {
			out = append(out, templates.Item{Key: sec.Key, Path: sec.Path, Value: sec.Value, ID: sec.ID, Type: sec.Type, Imported: true})
		}
	}
	return out, nil
}

func (s *serverSource) Get(project, env, path, key string) (templates.Item, error) {
	items, err := s.List(project, env, path, false, true)
	if err != nil {
		return templates.Item{}, err
	}
	var found *templates.Item
	for i := range items {
		if items[i].Key == key && found == nil {
			found = &items[i]
			continue
		}
		clear(items[i].Value)
	}
	if found == nil {
		return templates.Item{}, templates.ErrNotFound
	}
	return *found, nil
}
