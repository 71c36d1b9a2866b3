package infisical

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
)

const (
	routeStatus      = "/api/status"
	routeProjects    = "/api/v1/projects"
	routeProjectsOld = "/api/v1/workspace" // older servers: {"workspaces":[…]}
)

// Status asks GET /api/status (no auth, not rate limited), once: it is a
// probe, and a retry would hide what it measures.
func (c *Client) Status(ctx context.Context) (*Status, error) { return c.status(ctx) }

func (c *Client) status(ctx context.Context) (*Status, error) {
	cl := &call{op: "status", method: http.MethodGet, route: routeStatus, path: routeStatus, noProbe: true, noRetry: true}
	resp, err := c.do(ctx, cl)
	if err != nil {
		return nil, err
	}
	var ans struct {
		Date    string `json:"date"`
		Message string `json:"message"`
	}
	if err := json.Unmarshal(resp.body, &ans); err != nil {
		return nil, c.badAnswer(cl, resp, err)
	}
	return &Status{Message: ans.Message, Date: ans.Date}, nil
}

// ListProjects lists the secret-manager projects the identity belongs to,
// with their environments.
// On an older server without /api/v1/projects it falls back once, and for
// good, to /api/v1/workspace, which knows no project types: every project
// there is a secret-manager one.
func (c *Client) ListProjects(ctx context.Context) ([]Project, error) {
	legacy := c.legacy.projects.Load()
	cl := c.projectsCall(legacy)
	resp, err := c.do(ctx, cl)
	if err != nil && !legacy && c.useLegacy(&c.legacy.projects, err, routeProjects, routeProjectsOld) {
		legacy, cl = true, c.projectsCall(true)
		resp, err = c.do(ctx, cl)
	}
	if err != nil {
		return nil, err
	}
	type wireProject struct {
		ID           string        `json:"id"`
		Name         string        `json:"name"`
		Slug         string        `json:"slug"`
		Type         string        `json:"type"`
		Environments []Environment `json:"environments"`
	}
	var ans struct {
		Projects   []wireProject `json:"projects"`
		Workspaces []wireProject `json:"workspaces"`
	}
	if err := json.Unmarshal(resp.body, &ans); err != nil {
		return nil, c.badAnswer(cl, resp, err)
	}
	list := ans.Projects
	if legacy {
		list = ans.Workspaces
	}
	out := make([]Project, 0, len(list))
	for _, p := range list {
		if legacy && p.Type != "" && p.Type != "secret-manager" {
			continue // the old route does not filter by type
		}
		out = append(out, Project{ID: p.ID, Name: p.Name, Slug: p.Slug, Type: p.Type, Environments: p.Environments})
	}
	return out, nil
}

func (c *Client) projectsCall(legacy bool) *call {
	if legacy {
		return &call{op: "list projects", method: http.MethodGet, route: routeProjectsOld, path: routeProjectsOld, auth: true}
	}
	return &call{op: "list projects", method: http.MethodGet, route: routeProjects, path: routeProjects,
		query: url.Values{"type": {"secret-manager"}, "includeRoles": {"false"}}, auth: true}
}
