package infisical

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
)

const (
	routeStatus   = "/api/status"
	routeProjects = "/api/v1/projects"
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
func (c *Client) ListProjects(ctx context.Context) ([]Project, error) {
	cl := &call{op: "list projects", method: http.MethodGet, route: routeProjects, path: routeProjects,
		query: url.Values{"type": {"secret-manager"}, "includeRoles": {"false"}}, auth: true}
	resp, err := c.do(ctx, cl)
	if err != nil {
		return nil, err
	}
	var ans struct {
		Projects []struct {
			ID           string        `json:"id"`
			Name         string        `json:"name"`
			Slug         string        `json:"slug"`
			Type         string        `json:"type"`
			Environments []Environment `json:"environments"`
		} `json:"projects"`
	}
	if err := json.Unmarshal(resp.body, &ans); err != nil {
		return nil, c.badAnswer(cl, resp, err)
	}
	out := make([]Project, 0, len(ans.Projects))
	for _, p := range ans.Projects {
		out = append(out, Project{ID: p.ID, Name: p.Name, Slug: p.Slug, Type: p.Type, Environments: p.Environments})
	}
	return out, nil
}
