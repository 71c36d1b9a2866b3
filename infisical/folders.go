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
	routeFolders = "/api/v2/folders"
	routeFolder  = "/api/v2/folders/{folderIdOrName}"
)

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
	_, ws, err := c.listFolders(ctx, op, projectID, env, "/", true)
	if err != nil {
		return nil, err
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

// listFolders is one GET of the folders route.
func (c *Client) listFolders(ctx context.Context, op, projectID, env, path string, recursive bool) (string, []wireFolder, error) {
	path, err := checkScope(op, projectID, env, path)
	if err != nil {
		return "", nil, err
	}
	cl := &call{op: op, method: http.MethodGet, route: routeFolders, path: routeFolders, auth: true,
		query: url.Values{"projectId": {projectID}, "environment": {env}, "path": {path}, "recursive": {strconv.FormatBool(recursive)}},
		scope: scope{projectID, env, path}}
	resp, err := c.do(ctx, cl)
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
	body, err := json.Marshal(map[string]string{"projectId": projectID, "environment": env, "name": name, "path": parent})
	if err != nil {
		return nil, err
	}
	cl := &call{op: op, method: http.MethodPost, route: routeFolders, path: routeFolders, body: body, auth: true,
		scope: scope{projectID, env, parent}}
	resp, err := c.do(ctx, cl)
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
	body, err := json.Marshal(map[string]any{"projectId": projectID, "environment": env, "path": parent, "forceDelete": false})
	if err != nil {
		return err
	}
	resp, err := c.do(ctx, &call{op: op, method: http.MethodDelete, route: routeFolder,
		path: routeFolders + "/" + url.PathEscape(name), body: body, auth: true, scope: scope{projectID, env, parent}})
	if err != nil {
		return err
	}
	resp.wipe()
	return nil
}
