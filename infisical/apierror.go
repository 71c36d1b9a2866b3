package infisical

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ErrFolderNotEmpty is the kind of a refused delete of a folder that still
// holds secrets or folders (a 400 for the server). errors.Is also matches it
// against ErrValidation, the kind the server's status alone would give.
var ErrFolderNotEmpty = errors.New("folder not empty")

// APIError is every failed call's error. Unwrap gives the sentinel kind.
// Message is the server's message with any sent value removed; nothing in
// an APIError carries a secret value or the client secret.
type APIError struct {
	Op      string // what the client was doing, e.g. "update secret"
	Method  string
	Route   string // templated route, e.g. /api/v4/secrets/{secretName}
	Status  int    // 0 when no answer arrived
	Code    string // the body's "error", e.g. "PermissionDenied"
	Message string
	ReqID   string
	Remedy  string // what a person can do about it, if anything
	Err     error  // the sentinel

	// routeMissing marks Fastify's own route-not-found 404: the server has
	// no such route at all (an older Infisical), as opposed to Infisical's
	// NotFound for a missing project, folder or secret.
	routeMissing bool
}

func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString("infisical: ")
	b.WriteString(e.Op)
	if e.Method != "" {
		fmt.Fprintf(&b, " (%s %s)", e.Method, e.Route)
	}
	b.WriteString(": ")
	if e.Err != nil {
		b.WriteString(e.Err.Error())
	}
	if e.Status != 0 {
		fmt.Fprintf(&b, ": %d", e.Status)
		if e.Code != "" {
			b.WriteString(" " + e.Code)
		}
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	if e.ReqID != "" {
		b.WriteString(" [" + e.ReqID + "]")
	}
	if e.Remedy != "" {
		b.WriteString("; " + e.Remedy)
	}
	return oneLine(b.String())
}

func (e *APIError) Unwrap() error { return e.Err }

// Is lets a folder-not-empty error also match ErrValidation.
func (e *APIError) Is(target error) bool {
	return target == ErrValidation && e.Err == ErrFolderNotEmpty
}

// errorBody is the backend's error shape (contract §1). Message is a string,
// or for 422 an array of zod issues.
type errorBody struct {
	ReqID      string          `json:"reqId"`
	StatusCode int             `json:"statusCode"`
	Message    json.RawMessage `json:"message"`
	Error      string          `json:"error"`
}

// parsedError is what the client keeps of an error body.
type parsedError struct {
	ReqID   string
	Code    string
	Message string // one line, not yet scrubbed of sent values
}

// parseErrorBody reads an error answer. A body that is not the backend's
// shape (a proxy's HTML page, say) yields an empty message rather than the
// raw text, which could be anything.
func parseErrorBody(body []byte) parsedError {
	var eb errorBody
	if err := json.Unmarshal(body, &eb); err != nil {
		return parsedError{}
	}
	p := parsedError{ReqID: cleanToken(eb.ReqID), Code: oneLine(eb.Error)}
	msg := bytes.TrimSpace(eb.Message)
	switch {
	case len(msg) == 0 || bytes.Equal(msg, []byte("null")):
	case msg[0] == '"':
		var s string
		if json.Unmarshal(msg, &s) == nil {
			p.Message = oneLine(s)
		}
	case msg[0] == '[':
		p.Message = renderZodIssues(msg)
	}
	return p
}

// renderZodIssues renders a zod issue array as "path: message; …". Only
// path and message are used: other issue fields (received, …) may echo input.
func renderZodIssues(raw []byte) string {
	var issues []struct {
		Path    []any  `json:"path"`
		Message string `json:"message"`
	}
	if json.Unmarshal(raw, &issues) != nil {
		return ""
	}
	parts := make([]string, 0, len(issues))
	for _, is := range issues {
		var path []string
		for _, p := range is.Path {
			switch v := p.(type) {
			case string:
				path = append(path, v)
			case float64:
				path = append(path, strconv.FormatFloat(v, 'f', -1, 64))
			}
		}
		s := is.Message
		if len(path) > 0 {
			s = strings.Join(path, ".") + ": " + s
		}
		parts = append(parts, s)
	}
	return oneLine(strings.Join(parts, "; "))
}

// oneLine turns control characters into spaces and caps the length, so a
// server message cannot forge log lines or flood them.
func oneLine(s string) string {
	const max = 400
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "?")
	}
	clean := strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, s)
	if len(clean) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(clean[cut]) {
			cut--
		}
		clean = clean[:cut] + "…"
	}
	return clean
}

// cleanToken keeps a reqId only when it looks like one.
func cleanToken(s string) string {
	if len(s) > 64 {
		return ""
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(isFolderByte(c) || c == '.') {
			return ""
		}
	}
	return s
}

// scrub removes every occurrence of the sensitive strings (the value or the
// client secret the request carried) from a server message. Values of one
// or two bytes are skipped: removing every "a" would mangle the message
// while hiding nothing.
func scrub(msg string, secrets [][]byte) string {
	for _, s := range secrets {
		if len(s) < 3 {
			continue
		}
		msg = strings.ReplaceAll(msg, string(s), "[redacted]")
		// The server may show the value trimmed (it normalizes whitespace).
		if t := bytes.TrimSpace(s); len(t) >= 3 && len(t) != len(s) {
			msg = strings.ReplaceAll(msg, string(t), "[redacted]")
		}
	}
	return msg
}

// kindOf maps an error answer to its sentinel (contract §1). Auth failures
// (401, 403 TokenError) are decided by the caller, which knows whether a
// re-login was already tried.
func kindOf(status int, code, msg string) error {
	lower := strings.ToLower(msg)
	switch {
	case status == http.StatusNotFound || status == http.StatusGone:
		return ErrNotFound
	case status == http.StatusConflict:
		return ErrAlreadyExists
	case status == http.StatusBadRequest && strings.Contains(lower, "already exist"):
		return ErrAlreadyExists
	case status == http.StatusBadRequest && strings.HasPrefix(lower, "cannot delete folder") &&
		strings.Contains(lower, "contains resources"):
		return ErrFolderNotEmpty
	case status == http.StatusUnauthorized:
		return ErrAuthFailed
	case status == http.StatusForbidden && code == "TokenError":
		if strings.Contains(lower, "expired") {
			return ErrTokenExpired
		}
		return ErrAuthFailed
	case status == http.StatusForbidden:
		return ErrPermissionDenied
	case status == http.StatusRequestEntityTooLarge:
		return ErrValueTooLarge
	case status == http.StatusTooManyRequests:
		return ErrRateLimited
	case status >= 500:
		return ErrServer
	default:
		return ErrValidation
	}
}

// isRouteNotFound tells Fastify's default 404 body
// ({"message":"Route GET:/api/v2/folders?… not found","error":"Not Found",
// "statusCode":404}, fastify lib/fourOhFour.js) from Infisical's own 404s,
// which say "NotFound" (no space), carry a reqId and never begin "Route ".
func isRouteNotFound(status int, p parsedError) bool {
	return status == http.StatusNotFound && p.Code == "Not Found" && p.ReqID == "" &&
		strings.HasPrefix(p.Message, "Route ") && strings.HasSuffix(p.Message, " not found")
}

// isAuthFailure reports whether an answer means "log in again" (contract
// §2, client rule).
func isAuthFailure(status int, code string) bool {
	return status == http.StatusUnauthorized || status == http.StatusForbidden && code == "TokenError"
}

const redacted = "[redacted]"

// sensitiveFields are JSON members whose values are never logged.
var sensitiveFields = map[string]bool{
	"secretValue": true, "clientSecret": true, "accessToken": true, "value": true, "jwt": true,
	"received": true, // zod issues may echo the input
}

// redactBody returns a copy of a JSON body fit for a log line: every
// secretValue (and clientSecret, accessToken, metadata value, zod received)
// member at any depth is replaced. Callers also scrub the values they sent,
// which a server message may quote. A body that is not valid JSON cannot be stripped
// reliably, so only its size is returned.
func redactBody(body []byte) []byte { return redactBodyScrubbed(body, nil) }

// redactBodyScrubbed is redactBody that also removes the sensitive byte
// strings from every string left in the body. Scrubbing the decoded strings
// (not the re-encoded text) catches values the encoder would escape.
func redactBodyScrubbed(body []byte, sensitive [][]byte) []byte {
	unparsable := func() []byte { return []byte(fmt.Sprintf("[unparsable body, %d bytes]", len(body))) }
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return unparsable()
	}
	if _, err := dec.Token(); err != io.EOF {
		return unparsable() // trailing data
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(redactValue(v, sensitive)); err != nil {
		return unparsable()
	}
	return bytes.TrimRight(out.Bytes(), "\n")
}

func redactValue(v any, sensitive [][]byte) any {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			if sensitiveFields[k] {
				t[k] = redacted
			} else {
				t[k] = redactValue(x, sensitive)
			}
		}
	case []any:
		for i, x := range t {
			t[i] = redactValue(x, sensitive)
		}
	case string:
		return scrub(t, sensitive)
	}
	return v
}
