package infisical

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"path"
	"sort"
	"strconv"
	"strings"
)

const (
	routeFolders   = "/api/v2/folders"
	routeFolder    = "/api/v2/folders/{folderIdOrName}"
	routeFoldersV1 = "/api/v1/folders"
	routeFolderV1  = "/api/v1/folders/{folderIdOrName}"
)

// folderRoutes picks the v2 routes, or the v1 ones on an older server. The
// v1 routes name the project workspaceId and the parent path directory.
func (c *Client) folderRoutes(legacy bool) (base, one, projectKey, pathKey string) {
	if legacy {
		return routeFoldersV1, routeFolderV1, "workspaceId", "directory"
	}
	return routeFolders, routeFolder, "projectId", "path"
}

// folderCall runs build's call on the v2 route and, if the server has no
// such route, once more on the v1 route, remembering that for later calls.
func (c *Client) folderCall(ctx context.Context, build func(legacy bool) (*call, error)) (*response, error) {
	legacy := c.legacy.folders.Load()
	cl, err := build(legacy)
	if err != nil {
		return nil, err
	}
	resp, err := c.do(ctx, cl)
	if err != nil && !legacy && c.useLegacy(&c.legacy.folders, err, routeFolders, routeFoldersV1) {
		if cl, err = build(true); err != nil {
			return nil, err
		}
		resp, err = c.do(ctx, cl)
	}
	return resp, err
}

type wireFolder struct {
	ID           string `json:"id"`
	Name         string `json:"name"`
	UpdatedAt    string `json:"updatedAt"`
	RelativePath string `json:"relativePath"` // recursive lists only
}

func (w wireFolder) folder(parent string) Folder {
	return Folder{ID: w.ID, Name: w.Name, Path: parent, UpdatedAt: parseTime(w.UpdatedAt)}
}

func checkScope(op, projectID, env, path string) (string, error) {
	if projectID == "" || env == "" {
		return "", &APIError{Op: op, Err: ErrValidation, Message: "project id and environment are required"}
	}
	p, err := CleanPath(path)
	if err != nil {
		return "", &APIError{Op: op, Err: ErrValidation, Message: err.Error()}
	}
	return p, nil
}

// ListFolders lists the direct sub-folders of path. An unknown path is an
// empty list (the server's answer); an unknown environment is ErrNotFound.
func (c *Client) ListFolders(ctx context.Context, projectID, env, path string) ([]Folder, error) {
	path, ws, err := c.listFolders(ctx, "list folders", projectID, env, path, false)
	if err != nil {
		return nil, err
	}
	out := make([]Folder, 0, len(ws))
	for _, f := range ws {
		out = append(out, f.folder(path))
	}
	return out, nil
}

// ListFolderTree returns the canonical path of every folder of an
// environment, in one request (recursive=true), sorted. Empty folders do
// not show in a secret listing, so this is how they are found.
func (c *Client) ListFolderTree(ctx context.Context, projectID, env string) ([]string, error) {
	const op = "list folder tree"
	// The v1 list of older servers may ignore recursive: there the tree is
	// walked one level at a time rather than trusted.
	if c.legacy.folders.Load() {
		return c.walkFolderTree(ctx, op, projectID, env)
	}
	_, ws, err := c.listFolders(ctx, op, projectID, env, "/", true)
	if err != nil {
		return nil, err
	}
	if c.legacy.folders.Load() { // this very call found an older server
		return c.walkFolderTree(ctx, op, projectID, env)
	}
	out := make([]string, 0, len(ws))
	for _, f := range ws {
		p := "/" + strings.Trim(f.RelativePath, "/")
		// The contract does not confirm whether relativePath names the
		// folder itself or its parent; accept both.
		if path.Base(p) != f.Name {
			p = strings.TrimSuffix(p, "/") + "/" + f.Name
		}
		clean, err := CleanPath(p)
		if err != nil {
			return nil, &APIError{Op: op, Err: ErrServer, Message: "answer holds an invalid folder path: " + err.Error()}
		}
		out = append(out, clean)
	}
	sort.Strings(out)
	return out, nil
}

// walkFolderTree lists every folder of an environment level by level, for
// servers whose folder list cannot be trusted to recurse.
func (c *Client) walkFolderTree(ctx context.Context, op, projectID, env string) ([]string, error) {
	var out []string
	queue := []string{"/"}
	for len(queue) > 0 {
		parent := queue[0]
		queue = queue[1:]
		_, ws, err := c.listFolders(ctx, op, projectID, env, parent, false)
		if err != nil {
			return nil, err
		}
		for _, f := range ws {
			p, err := CleanPath(strings.TrimSuffix(parent, "/") + "/" + f.Name)
			if err != nil {
				return nil, &APIError{Op: op, Err: ErrServer, Message: "answer holds an invalid folder name: " + err.Error()}
			}
			out = append(out, p)
			queue = append(queue, p)
		}
	}
	sort.Strings(out)
	return out, nil
}

// listFolders is one GET of the folders route.
func (c *Client) listFolders(ctx context.Context, op, projectID, env, path string, recursive bool) (string, []wireFolder, error) {
	path, err := checkScope(op, projectID, env, path)
	if err != nil {
		return "", nil, err
	}
	var cl *call
	resp, err := c.folderCall(ctx, func(legacy bool) (*call, error) {
		base, _, pk, dk := c.folderRoutes(legacy)
		cl = &call{op: op, method: http.MethodGet, route: base, path: base, auth: true,
			query: url.Values{pk: {projectID}, "environment": {env}, dk: {path}, "recursive": {strconv.FormatBool(recursive)}},
			scope: scope{projectID, env, path}}
		return cl, nil
	})
	if err != nil {
		return "", nil, err
	}
	var ans struct {
		Folders []wireFolder `json:"folders"`
	}
	if err := json.Unmarshal(resp.body, &ans); err != nil {
		return "", nil, c.badAnswer(cl, resp, err)
	}
	return path, ans.Folders, nil
}

// CreateFolder creates parentPath/name (the server creates missing parents);
// an existing name is ErrAlreadyExists.
func (c *Client) CreateFolder(ctx context.Context, projectID, env, parentPath, name string) (*Folder, error) {
	const op = "create folder"
	parent, err := checkScope(op, projectID, env, parentPath)
	if err != nil {
		return nil, err
	}
	if err := ValidateFolderName(name); err != nil {
		return nil, &APIError{Op: op, Err: ErrValidation, Message: err.Error()}
	}
	var cl *call
	resp, err := c.folderCall(ctx, func(legacy bool) (*call, error) {
		base, _, pk, dk := c.folderRoutes(legacy)
		body, err := json.Marshal(map[string]string{pk: projectID, "environment": env, "name": name, dk: parent})
		if err != nil {
			return nil, err
		}
		cl = &call{op: op, method: http.MethodPost, route: base, path: base, body: body, auth: true,
			scope: scope{projectID, env, parent}}
		return cl, nil
	})
	if err != nil {
		return nil, err
	}
	var ans struct {
		Folder *wireFolder `json:"folder"`
	}
	if err := json.Unmarshal(resp.body, &ans); err != nil || ans.Folder == nil {
		return nil, c.badAnswer(cl, resp, err)
	}
	f := ans.Folder.folder(parent)
	return &f, nil
}

// DeleteFolder deletes an empty folder. It never forces: a folder that
// still holds secrets or folders is ErrFolderNotEmpty (which errors.Is also
// matches to ErrValidation).
func (c *Client) DeleteFolder(ctx context.Context, projectID, env, parentPath, name string) error {
	const op = "delete folder"
	parent, err := checkScope(op, projectID, env, parentPath)
	if err != nil {
		return err
	}
	if err := ValidateFolderName(name); err != nil {
		return &APIError{Op: op, Err: ErrValidation, Message: err.Error()}
	}
	resp, err := c.folderCall(ctx, func(legacy bool) (*call, error) {
		base, one, pk, dk := c.folderRoutes(legacy)
		body, err := json.Marshal(map[string]any{pk: projectID, "environment": env, dk: parent, "forceDelete": false})
		if err != nil {
			return nil, err
		}
		return &call{op: op, method: http.MethodDelete, route: one,
			path: base + "/" + url.PathEscape(name), body: body, auth: true, scope: scope{projectID, env, parent}}, nil
	})
	if err != nil {
		return err
	}
	resp.wipe()
	return nil
}
