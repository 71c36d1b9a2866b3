package infisicaltest

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

type pathFault struct {
	method, prefix string
	status         int
	left           int // <0: until cleared
}

// SetLatency delays every request by d before it is handled.
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// FailNext makes the next n requests (any route, login included) answer
// status without being handled: 429 carries Retry-After and the rate-limit
// headers, other statuses the backend's error body.
func (s *Server) FailNext(n int, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failNext, s.failStatus = n, status
}

// SetRetryAfter sets the Retry-After seconds sent with injected 429s.
func (s *Server) SetRetryAfter(seconds int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.retryAfter = seconds
}

// FailPath makes requests whose method matches (""=any) and whose path
// starts with pathPrefix answer status, n times (n<0: until ClearFaults).
func (s *Server) FailPath(method, pathPrefix string, status int, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failPaths = append(s.failPaths, &pathFault{method: method, prefix: pathPrefix, status: status, left: n})
}

// ClearFaults removes pending FailNext and FailPath faults and the latency.
// An outage is ended with SetOutage(false).
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failNext, s.failPaths, s.latency = 0, nil, 0
}

// Requests returns a copy of the request log.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// ResetRequests empties the request log.
func (s *Server) ResetRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = nil
}

// Count is how many logged requests match method (""=any) and path prefix.
func (s *Server) Count(method, pathPrefix string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, r := range s.requests {
		if (method == "" || r.Method == method) && strings.HasPrefix(r.Path, pathPrefix) {
			n++
		}
	}
	return n
}

// injectFault answers r with an injected failure if one is due.
func (s *Server) injectFault(w http.ResponseWriter, r *http.Request) bool {
	s.mu.Lock()
	status := 0
	if s.failNext > 0 {
		s.failNext--
		status = s.failStatus
	} else {
		for i, f := range s.failPaths {
			if (f.method == "" || f.method == r.Method) && strings.HasPrefix(r.URL.Path, f.prefix) {
				status = f.status
				if f.left > 0 {
					f.left--
					if f.left == 0 {
						s.failPaths = append(s.failPaths[:i:i], s.failPaths[i+1:]...)
					}
				}
				break
			}
		}
	}
	retry := s.retryAfter
	s.mu.Unlock()
	if status == 0 {
		return false
	}
	writeError(w, faultError(w, status, retry))
	return true
}

func faultError(w http.ResponseWriter, status, retryAfter int) *apiError {
	switch {
	case status == http.StatusTooManyRequests:
		h := w.Header()
		h.Set("Retry-After", strconv.Itoa(retryAfter))
		h.Set("X-RateLimit-Limit", "60")
		h.Set("X-RateLimit-Remaining", "0")
		h.Set("X-RateLimit-Reset", strconv.Itoa(retryAfter))
		return &apiError{status: status, name: "RateLimitExceeded",
			message: fmt.Sprintf("Rate limit exceeded. Please try again in %d seconds", retryAfter)}
	case status >= 500:
		return &apiError{status: status, name: "InternalServerError", message: "Something went wrong"}
	case status == http.StatusUnauthorized:
		return errUnauthorized("You are not allowed to access this resource")
	case status == http.StatusForbidden:
		return &apiError{status: status, name: "ForbiddenError", message: "You are not allowed to access this resource"}
	case status == http.StatusNotFound:
		return errNotFound("Injected not found")
	default:
		return &apiError{status: status, name: http.StatusText(status), message: http.StatusText(status)}
	}
}
