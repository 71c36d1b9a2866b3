package infisicaltest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// SetOldServer makes the server answer as an older self-hosted Infisical
// that predates the v2 folder routes and the /api/v1/projects router: every
// /api/v2/folders route and GET /api/v1/projects answer Fastify's own
// route-not-found 404, while /api/v1/folders (workspaceId, directory) and
// /api/v1/workspace keep working. on=false restores a current server.
func (s *Server) SetOldServer(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.oldServer = on
}

// missingOnOldServer reports whether an older server has no route for r.
func missingOnOldServer(r *http.Request) bool {
	p := r.URL.Path
	switch {
	case p == "/api/v2/folders" || strings.HasPrefix(p, "/api/v2/folders/"):
		return true
	case p == "/api/v1/projects" || strings.HasPrefix(p, "/api/v1/projects/"):
		return true
	}
	return false
}

// writeRouteNotFound answers as Fastify's default not-found handler does
// (fastify lib/fourOhFour.js): no reqId, error "Not Found" with a space, and
// the request URL as sent, query string included. Infisical's own errors
// say "NotFound" and carry a reqId, which is how a client tells them apart.
func writeRouteNotFound(w http.ResponseWriter, r *http.Request) {
	url := r.RequestURI
	if url == "" {
		url = r.URL.RequestURI()
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // Fastify writes & as is
	_ = enc.Encode(struct {
		Message    string `json:"message"`
		Error      string `json:"error"`
		StatusCode int    `json:"statusCode"`
	}{fmt.Sprintf("Route %s:%s not found", r.Method, url), "Not Found", http.StatusNotFound})
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusNotFound)
	_, _ = w.Write(bytes.TrimSuffix(b.Bytes(), []byte("\n"))) // no newline, as Fastify sends it
}
