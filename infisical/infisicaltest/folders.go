package infisicaltest

import (
	"fmt"
	"strings"
)

const msgInvalidFolderName = "Invalid folder name. Only alphanumeric characters, dashes, and underscores are allowed."

func (s *Server) folderRoutes() {
	for _, base := range []string{"/api/v2/folders", "/api/v1/folders"} {
		s.handle("GET "+base, true, s.listFolders)
		s.handle("POST "+base, true, s.createFolder)
		s.handle("PATCH "+base+"/{folderId}", true, s.renameFolder)
		s.handle("DELETE "+base+"/{folderIdOrName}", true, s.deleteFolder)
	}
}

// folderBody is the union of the v2 and v1 folder bodies.
type folderBody struct {
	ProjectID   string  `json:"projectId"`
	WorkspaceID string  `json:"workspaceId"`
	Environment string  `json:"environment"`
	Name        *string `json:"name"`
	Path        *string `json:"path"`
	Directory   *string `json:"directory"`
	Description *string `json:"description"`
	ForceDelete bool    `json:"forceDelete"`
}

func folderJSON(f *folder) map[string]any {
	var parentID any
	if f.parent != nil {
		parentID = f.parent.id
	}
	return map[string]any{
		"id": f.id, "name": f.name, "envId": f.env.id, "parentId": parentID, "version": f.version,
		"isReserved": false, "description": nil, "createdAt": iso(f.createdAt), "updatedAt": iso(f.updatedAt),
	}
}

// folderScope resolves project, permission, environment and the path of a
// folder route. It does not look the folder up.
func (c *call) folderScope(pid, envSlug string, rawPath *string, action string) (*project, *environment, string, *apiError) {
	var issues []zodIssue
	if pid == "" {
		issues = append(issues, requiredIssue("projectId"))
	}
	if envSlug == "" {
		issues = append(issues, requiredIssue("environment"))
	}
	if issues != nil {
		return nil, nil, "", errValidation(issues...)
	}
	path, ok := canonicalFolderPath(deref(rawPath, "/"))
	if !ok {
		return nil, nil, "", errBadRequest(msgInvalidPath)
	}
	p, e := c.project(pid, "")
	if e != nil {
		return nil, nil, "", e
	}
	if e := c.authorize(p, envSlug, path, action, "secret-folders"); e != nil {
		return nil, nil, "", e
	}
	env := p.env(envSlug)
	if env == nil {
		return nil, nil, "", errNotFound(fmt.Sprintf("Environment with slug '%s' in project with ID %s not found", envSlug, p.id))
	}
	return p, env, path, nil
}

func (s *Server) listFolders(c *call) (any, *apiError) {
	recursive, e := c.queryBool("recursive", false)
	if e != nil {
		return nil, e
	}
	q := c.r.URL.Query()
	var rawPath *string
	if v := c.firstQuery("path", "directory"); v != "" {
		rawPath = &v
	}
	_, env, path, e := c.folderScope(c.firstQuery("projectId", "workspaceId"), q.Get("environment"), rawPath, "read")
	if e != nil {
		return nil, e
	}
	out := []any{}
	top := env.lookup(path)
	if top == nil {
		return map[string]any{"folders": out}, nil
	}
	if !recursive {
		for _, name := range sortedKeys(top.children) {
			out = append(out, folderJSON(top.children[name]))
		}
		return map[string]any{"folders": out}, nil
	}
	base := top.path()
	top.walk(func(f *folder) {
		if f == top {
			return
		}
		m := folderJSON(f)
		// relativePath: the folder's path relative to the listed one.
		m["relativePath"] = "/" + strings.TrimPrefix(strings.TrimPrefix(f.path(), base), "/")
		out = append(out, m)
	})
	return map[string]any{"folders": out}, nil
}

// decodeNamedFolder reads the body of a create or rename: the trimmed,
// validated name and the parent path (v1 calls it "directory").
func decodeNamedFolder(c *call) (b folderBody, name string, rawPath *string, e *apiError) {
	if e = c.decodeBody(&b); e != nil {
		return b, "", nil, e
	}
	if b.Name == nil {
		return b, "", nil, errValidation(requiredIssue("name"))
	}
	name = strings.TrimSpace(*b.Name)
	if !validFolderName(name) {
		return b, "", nil, errValidation(issue("custom", msgInvalidFolderName, "name"))
	}
	rawPath = b.Path
	if rawPath == nil {
		rawPath = b.Directory
	}
	return b, name, rawPath, nil
}

func (s *Server) createFolder(c *call) (any, *apiError) {
	b, name, rawPath, e := decodeNamedFolder(c)
	if e != nil {
		return nil, e
	}
	_, env, path, e := c.folderScope(firstNonEmpty(b.ProjectID, b.WorkspaceID), b.Environment, rawPath, "create")
	if e != nil {
		return nil, e
	}
	if _, ok := splitPath(path); !ok {
		return nil, errBadRequest(msgInvalidPath)
	}
	parent := env.ensure(path, c.now)
	if parent.children[name] != nil {
		return nil, errBadRequest(fmt.Sprintf("Folder with name '%s' already exists in path '%s'", name, path))
	}
	f := newFolder(name, env, parent, c.now)
	parent.children[name] = f
	m := folderJSON(f)
	m["path"] = f.path()
	return map[string]any{"folder": m}, nil
}

// findFolderByID looks for a non-root folder with the given id in env.
func findFolderByID(env *environment, id string) *folder {
	var found *folder
	env.root.walk(func(f *folder) {
		if f.id == id && f.parent != nil {
			found = f
		}
	})
	return found
}

func (s *Server) renameFolder(c *call) (any, *apiError) {
	id := c.r.PathValue("folderId")
	b, name, rawPath, e := decodeNamedFolder(c)
	if e != nil {
		return nil, e
	}
	_, env, _, e := c.folderScope(firstNonEmpty(b.ProjectID, b.WorkspaceID), b.Environment, rawPath, "edit")
	if e != nil {
		return nil, e
	}
	f := findFolderByID(env, id)
	if f == nil {
		return nil, errNotFound(fmt.Sprintf("Folder with ID '%s' not found", id))
	}
	if name != f.name {
		if f.parent.children[name] != nil {
			return nil, errBadRequest("Folder with specified name already exists")
		}
		delete(f.parent.children, f.name)
		f.name = name
		f.parent.children[name] = f
	}
	f.version++
	f.updatedAt = c.now
	return map[string]any{"folder": folderJSON(f)}, nil
}

func (s *Server) deleteFolder(c *call) (any, *apiError) {
	idOrName := c.r.PathValue("folderIdOrName")
	var b folderBody
	if e := c.decodeBody(&b); e != nil {
		return nil, e
	}
	rawPath := b.Path
	if rawPath == nil {
		rawPath = b.Directory
	}
	_, env, path, e := c.folderScope(firstNonEmpty(b.ProjectID, b.WorkspaceID), b.Environment, rawPath, "delete")
	if e != nil {
		return nil, e
	}
	parent := env.lookup(path)
	if parent == nil {
		return nil, folderNotFound(path, env.slug)
	}
	f := parent.children[idOrName]
	if f == nil {
		if f = findFolderByID(env, idOrName); f == nil {
			return nil, errNotFound(fmt.Sprintf("Folder with ID or name '%s' not found", idOrName))
		}
	}
	if !f.empty() && !b.ForceDelete {
		return nil, errBadRequest(fmt.Sprintf("Cannot delete folder %q because it contains resources. "+
			"Use forceDelete=true to delete it with its contents.", f.name))
	}
	delete(f.parent.children, f.name)
	return map[string]any{"folder": folderJSON(f)}, nil
}

// AddFolder creates the folder at path (and missing parents) out of band.
func (s *Server) AddFolder(projectID, env, path string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mustEnv(projectID, env).ensure(mustPath(path), s.now())
}

// DeleteFolder removes the folder at path with everything in it.
func (s *Server) DeleteFolder(projectID, env, path string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f := s.mustEnv(projectID, env).lookup(mustPath(path)); f != nil && f.parent != nil {
		delete(f.parent.children, f.name)
	}
}

// AddImport makes the folder at path import fromEnv/fromPath (appended last,
// so it wins over earlier imports). Missing folders at path are created.
func (s *Server) AddImport(projectID, env, path, fromEnv, fromPath string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.mustEnv(projectID, env).ensure(mustPath(path), s.now())
	f.imports = append(f.imports, importRef{env: fromEnv, path: mustPath(fromPath)})
}
