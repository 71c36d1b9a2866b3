package infisicaltest

import (
	"fmt"
	"time"
)

// orgID is the one organisation every project of the fake belongs to.
const orgID = "6f1c1a52-0a6e-4c55-9b0e-0f0c0ffee000"

var envNames = map[string]string{"dev": "Development", "staging": "Staging", "prod": "Production"}

// AddProject creates a secret-manager project with the given environments
// (dev, staging and prod when none are given) and returns its id.
func (s *Server) AddProject(slug, name string, envSlugs ...string) (projectID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(envSlugs) == 0 {
		envSlugs = []string{"dev", "staging", "prod"}
	}
	now := s.now()
	p := &project{id: newID(), slug: slug, name: name, typ: "secret-manager", createdAt: now,
		approval: map[string]bool{}, tags: map[string]*tag{}}
	for _, es := range envSlugs {
		e := &environment{id: newID(), slug: es, name: envNames[es]}
		if e.name == "" {
			e.name = es
		}
		e.root = newFolder("root", e, nil, now)
		p.envs = append(p.envs, e)
	}
	s.projects[p.id] = p
	s.projOrder = append(s.projOrder, p.id)
	return p.id
}

// SetApprovalRequired flags project+env so that secret writes answer 200
// {"approval":{…}} and change nothing.
func (s *Server) SetApprovalRequired(projectID, env string, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.mustProject(projectID)
	p.approval[env] = on
}

func (s *Server) mustProject(id string) *project {
	p := s.projects[id]
	if p == nil {
		panic(fmt.Sprintf("infisicaltest: unknown project %q", id))
	}
	return p
}

func (s *Server) projectRoutes() {
	s.handle("GET /api/v1/projects", true, func(c *call) (any, *apiError) {
		return map[string]any{"projects": c.visibleProjects(c.r.URL.Query().Get("type"))}, nil
	})
	s.handle("GET /api/v1/workspace", true, func(c *call) (any, *apiError) {
		return map[string]any{"workspaces": c.visibleProjects("")}, nil
	})
	byID := func(wrap string) handler {
		return func(c *call) (any, *apiError) {
			p, e := c.project(c.r.PathValue("id"), "")
			if e != nil {
				return nil, e
			}
			return map[string]any{wrap: projectJSON(p)}, nil
		}
	}
	s.handle("GET /api/v1/projects/{id}", true, byID("project"))
	s.handle("GET /api/v1/workspace/{id}", true, byID("workspace"))
	s.handle("GET /api/v1/projects/slug/{slug}", true, func(c *call) (any, *apiError) {
		p, e := c.project("", c.r.PathValue("slug"))
		if e != nil {
			return nil, e
		}
		return projectJSON(p), nil
	})
}

func (c *call) visibleProjects(typ string) []map[string]any {
	out := []map[string]any{}
	for _, id := range c.s.projOrder {
		p := c.s.projects[id]
		if _, ok := c.ident.grants[id]; !ok || (typ != "" && p.typ != typ) {
			continue
		}
		out = append(out, projectJSON(p))
	}
	return out
}

func projectJSON(p *project) map[string]any {
	envs := []map[string]any{}
	for _, e := range p.envs {
		envs = append(envs, map[string]any{"id": e.id, "name": e.name, "slug": e.slug})
	}
	return map[string]any{
		"id": p.id, "_id": p.id, "name": p.name, "slug": p.slug, "description": nil,
		"type": p.typ, "orgId": orgID, "environments": envs, "version": 3,
		"autoCapitalization": false, "createdAt": iso(p.createdAt), "updatedAt": iso(p.createdAt),
	}
}

// project resolves a project by id (or, when id is empty, by slug) and
// checks that the caller is a member.
func (c *call) project(id, slug string) (*project, *apiError) {
	var p *project
	if id == "" && slug != "" {
		for _, pid := range c.s.projOrder {
			if c.s.projects[pid].slug == slug {
				p = c.s.projects[pid]
			}
		}
		if p == nil {
			return nil, errNotFound(fmt.Sprintf("Project with slug '%s' not found", slug))
		}
	} else {
		p = c.s.projects[id]
		if p == nil {
			return nil, errNotFound(fmt.Sprintf("Project with %s not found", id))
		}
	}
	if _, ok := c.ident.grants[p.id]; !ok {
		const msg = "You are not member of this project"
		return nil, &apiError{status: 403, name: msg, message: msg}
	}
	return p, nil
}

// allowed reports whether the caller may act (read or write) on env.
func (c *call) allowed(p *project, env string, write bool) bool {
	g, ok := c.ident.grants[p.id]
	if !ok || (len(g.envs) > 0 && !g.envs[env]) {
		return false
	}
	return !write || g.perm == PermReadWrite
}

// authorize checks action ("read", "create", "edit", "delete") on subject
// in env/path and answers the CASL-style 403 when it is not allowed.
func (c *call) authorize(p *project, env, path, action, subject string) *apiError {
	if c.allowed(p, env, action != "read") {
		return nil
	}
	return errPermission(action, subject, env, path)
}

func approvalJSON(f *folder, now time.Time) map[string]any {
	return map[string]any{"approval": map[string]any{
		"id": newID(), "policyId": newID(), "hasMerged": false, "status": "open",
		"conflicts": []any{}, "slug": "change-" + randomAlnum(8), "folderId": f.id,
		"isReplicated": false, "committerUserId": nil, "statusChangedByUserId": nil,
		"bypassReason": nil, "createdAt": iso(now), "updatedAt": iso(now),
	}}
}

// readScope resolves the project, canonical path and read permission of a
// secret read (list or get one); the routes' own checks of missing
// parameters come first, since their messages differ.
func (c *call) readScope(pid, pslug, envSlug, rawPath string) (*project, string, *apiError) {
	path, ok := canonicalSecretPath(rawPath)
	if !ok {
		return nil, "", errBadRequest(msgInvalidPath)
	}
	p, e := c.project(pid, pslug)
	if e != nil {
		return nil, "", e
	}
	if e := c.authorize(p, envSlug, path, "read", "secrets"); e != nil {
		return nil, "", e
	}
	return p, path, nil
}
