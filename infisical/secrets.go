package infisical

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

const (
	routeSecrets = "/api/v4/secrets"
	routeSecret  = "/api/v4/secrets/{secretName}"
)

// checkRef validates r and returns it with its path canonical.
func checkRef(op string, r Ref) (Ref, error) {
	if r.ProjectID == "" || r.Environment == "" {
		return r, &APIError{Op: op, Err: ErrValidation, Message: "project id and environment are required"}
	}
	if err := ValidateKey(r.Key); err != nil {
		return r, &APIError{Op: op, Err: ErrValidation, Message: strings.TrimPrefix(err.Error(), ErrValidation.Error()+": ")}
	}
	p, err := CleanPath(r.Path)
	if err != nil {
		return r, &APIError{Op: op, Err: ErrValidation, Message: err.Error()}
	}
	r.Path = p
	return r, nil
}

func boolStr(b bool) string { return strconv.FormatBool(b) }

// ListSecrets lists a folder (with Recursive, its descendants too). Every
// flag whose default differs between server versions is sent explicitly.
// With IfNoneMatch set, an unchanged listing is a 304: NotModified, no body.
func (c *Client) ListSecrets(ctx context.Context, o ListOptions) (*ListResult, error) {
	const op = "list secrets"
	if o.ProjectID == "" || o.Environment == "" {
		return nil, &APIError{Op: op, Err: ErrValidation, Message: "project id and environment are required"}
	}
	path, err := CleanPath(o.Path)
	if err != nil {
		return nil, &APIError{Op: op, Err: ErrValidation, Message: err.Error()}
	}
	q := url.Values{
		"projectId":                {o.ProjectID},
		"environment":              {o.Environment},
		"secretPath":               {path},
		"recursive":                {boolStr(o.Recursive)},
		"expandSecretReferences":   {boolStr(o.ExpandReferences)},
		"viewSecretValue":          {"true"},
		"includeImports":           {boolStr(o.IncludeImports)},
		"include_imports":          {boolStr(o.IncludeImports)},
		"includePersonalOverrides": {"false"},
	}
	var res *ListResult
	cl := &call{op: op, method: http.MethodGet, route: routeSecrets, path: routeSecrets, query: q,
		ifNoneMatch: o.IfNoneMatch, auth: true, scope: scope{o.ProjectID, o.Environment, path},
		decode: func(r io.Reader) error {
			if res != nil {
				res.wipe() // a retry: start over
			}
			res = &ListResult{}
			return decodeListing(r, path, res)
		}}
	resp, err := c.do(ctx, cl)
	if err != nil {
		if res != nil {
			res.wipe()
		}
		return nil, err
	}
	if resp.status == http.StatusNotModified {
		return &ListResult{NotModified: true, ETag: o.IfNoneMatch}, nil
	}
	if resp.decodeErr != nil || res == nil {
		if res != nil {
			res.wipe()
		}
		return nil, c.badAnswer(cl, resp, resp.decodeErr)
	}
	res.ETag = resp.header.Get("ETag")
	return res, nil
}

// decodeListing reads a list answer as it arrives, one secret at a time,
// so that neither the body nor all of its decoded form is ever held whole
// beside the result. (The decoder's read buffer, a few KiB of the body at
// a time, is left to the collector unwiped, as the HTTP transport's own
// buffer always was.) The answer: {"secrets":[...], "imports":[{"secretPath", "environment",
// "secrets":[...]}...]}; other keys are skipped.
func decodeListing(r io.Reader, path string, res *ListResult) error {
	dec := json.NewDecoder(r)
	if err := expectDelim(dec, '{'); err != nil {
		return err
	}
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return err
		}
		switch key {
		case "secrets":
			if err := decodeSecrets(dec, path, &res.Secrets); err != nil {
				return err
			}
		case "imports":
			if err := expectDelim(dec, '['); err != nil {
				return err
			}
			for dec.More() {
				var im Import
				if err := decodeImport(dec, &im); err != nil {
					return err
				}
				res.Imports = append(res.Imports, im)
			}
			if _, err := dec.Token(); err != nil { // ]
				return err
			}
		default:
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return err
			}
		}
	}
	_, err := dec.Token() // }
	return err
}

func decodeImport(dec *json.Decoder, im *Import) error {
	if err := expectDelim(dec, '{'); err != nil {
		return err
	}
	var secrets []wireSecret
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return err
		}
		switch key {
		case "secretPath":
			err = dec.Decode(&im.Path)
		case "environment":
			err = dec.Decode(&im.Environment)
		case "secrets":
			// The path may come after the secrets: keep them wire-shaped.
			err = dec.Decode(&secrets)
		default:
			var skip json.RawMessage
			err = dec.Decode(&skip)
		}
		if err != nil {
			return err
		}
	}
	im.Secrets = make([]*Secret, len(secrets))
	for i := range secrets {
		s := secrets[i].secret(im.Path)
		im.Secrets[i] = &s
	}
	_, err := dec.Token() // }
	return err
}

// decodeSecrets decodes an array of secrets element by element onto *out,
// each secret its own allocation. (As one []Secret grown by append, a
// 100k-secret listing allocated five times its final size, and copying
// it into a slice of the exact size cost 0.2 s of CPU with the collector
// running: the structs hold pointers.) On an error what was decoded is
// still in *out, for the caller to wipe.
func decodeSecrets(dec *json.Decoder, path string, out *[]*Secret) error {
	if err := expectDelim(dec, '['); err != nil {
		return err
	}
	for dec.More() {
		var w wireSecret
		if err := dec.Decode(&w); err != nil {
			return err
		}
		s := w.secret(path)
		*out = append(*out, &s)
	}
	_, err := dec.Token() // ]
	return err
}

func expectDelim(dec *json.Decoder, want json.Delim) error {
	t, err := dec.Token()
	if err != nil {
		return err
	}
	if d, ok := t.(json.Delim); !ok || d != want {
		return &json.SyntaxError{Offset: dec.InputOffset()}
	}
	return nil
}

// wipe zeroes the values of a listing that will not be returned.
func (r *ListResult) wipe() {
	for i := range r.Secrets {
		clear(r.Secrets[i].Value)
	}
	for i := range r.Imports {
		for j := range r.Imports[i].Secrets {
			clear(r.Imports[i].Secrets[j].Value)
		}
	}
}

// badAnswer is the error of a 2xx answer the client cannot read.
func (c *Client) badAnswer(cl *call, resp *response, err error) *APIError {
	// The decode error may quote the body; say only where it broke.
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	msg := "unreadable answer"
	switch {
	case errors.As(err, &se):
		msg = fmt.Sprintf("unreadable answer: invalid JSON at offset %d", se.Offset)
	case errors.As(err, &te):
		msg = fmt.Sprintf("unreadable answer: field %s has the wrong type", te.Field)
	}
	return &APIError{Op: cl.op, Method: cl.method, Route: cl.route, Status: resp.status,
		Message: msg, Err: ErrServer}
}

// secretPathOf is the escaped path of one secret's route.
func secretPathOf(key string) string { return routeSecrets + "/" + url.PathEscape(key) }

// GetSecret reads one shared secret of the folder, references unexpanded,
// imports not consulted.
func (c *Client) GetSecret(ctx context.Context, r Ref) (*Secret, error) {
	return c.getSecret(ctx, "get secret", r, 0)
}

// GetSecretVersion reads version n (1 = as created) of a secret, its value
// raw. A version Infisical no longer keeps (pruned by the project's
// retention), or one never written, is ErrNotFound, as a missing secret is.
func (c *Client) GetSecretVersion(ctx context.Context, r Ref, version int) (*Secret, error) {
	const op = "get secret version"
	if version < 1 {
		return nil, &APIError{Op: op, Err: ErrValidation, Message: fmt.Sprintf("version %d: versions start at 1", version)}
	}
	return c.getSecret(ctx, op, r, version)
}

func (c *Client) getSecret(ctx context.Context, op string, r Ref, version int) (*Secret, error) {
	r, err := checkRef(op, r)
	if err != nil {
		return nil, err
	}
	q := url.Values{
		"projectId":              {r.ProjectID},
		"environment":            {r.Environment},
		"secretPath":             {r.Path},
		"type":                   {"shared"},
		"viewSecretValue":        {"true"},
		"expandSecretReferences": {"false"},
		"includeImports":         {"false"},
		"include_imports":        {"false"},
	}
	if version > 0 {
		q.Set("version", strconv.Itoa(version))
	}
	cl := &call{op: op, method: http.MethodGet, route: routeSecret, path: secretPathOf(r.Key), query: q,
		auth: true, scope: scope{r.ProjectID, r.Environment, r.Path}}
	return c.secretCall(ctx, cl, r.Path)
}

// secretCall runs a call answered by {"secret":…} or {"approval":…}.
func (c *Client) secretCall(ctx context.Context, cl *call, path string) (*Secret, error) {
	resp, err := c.do(ctx, cl)
	if err != nil {
		return nil, err
	}
	defer resp.wipe()
	var ans struct {
		Secret   *wireSecret     `json:"secret"`
		Approval json.RawMessage `json:"approval"`
	}
	if err := json.Unmarshal(resp.body, &ans); err != nil {
		return nil, c.badAnswer(cl, resp, err)
	}
	if ans.Secret == nil {
		if len(ans.Approval) > 0 && string(ans.Approval) != "null" {
			return nil, &APIError{Op: cl.op, Method: cl.method, Route: cl.route, Status: resp.status,
				Message: "a change-approval policy holds this change; nothing was written yet",
				Remedy:  "approve the change request in Infisical (or exempt the identity from the policy)",
				Err:     ErrApprovalPending}
		}
		return nil, c.badAnswer(cl, resp, errors.New("no secret in answer"))
	}
	s := ans.Secret.secret(path)
	return &s, nil
}

// writeMeta is the non-value part of a write body. Identities may only
// write shared secrets, and type is sent so no server default decides.
type writeMeta struct {
	ProjectID     string  `json:"projectId"`
	Environment   string  `json:"environment"`
	SecretPath    string  `json:"secretPath"`
	Type          string  `json:"type"`
	NewSecretName string  `json:"newSecretName,omitempty"`
	SecretComment *string `json:"secretComment,omitempty"` // nil: not sent, unchanged
}

// CreateSecret creates a shared secret; an existing key is ErrAlreadyExists.
func (c *Client) CreateSecret(ctx context.Context, r Ref, value []byte) (*Secret, error) {
	const op = "create secret"
	r, err := checkRef(op, r)
	if err != nil {
		return nil, err
	}
	if value == nil {
		value = []byte{}
	}
	if err := checkValue(op, value); err != nil {
		return nil, err
	}
	body, err := writeBody(writeMeta{ProjectID: r.ProjectID, Environment: r.Environment, SecretPath: r.Path, Type: "shared"}, value)
	if err != nil {
		return nil, fmt.Errorf("infisical: %s: encode: %w", op, err)
	}
	defer clear(body)
	return c.secretCall(ctx, &call{op: op, method: http.MethodPost, route: routeSecret,
		path: secretPathOf(r.Key), body: body, auth: true,
		scope: scope{r.ProjectID, r.Environment, r.Path}, sensitive: [][]byte{value}}, r.Path)
}

// UpdateSecret changes a secret's value and/or name; a missing key is
// ErrNotFound.
func (c *Client) UpdateSecret(ctx context.Context, r Ref, u Update) (*Secret, error) {
	const op = "update secret"
	r, err := checkRef(op, r)
	if err != nil {
		return nil, err
	}
	if u.Value == nil && u.NewName == "" && u.Comment == nil {
		return nil, &APIError{Op: op, Err: ErrValidation, Message: "nothing to update"}
	}
	if u.NewName != "" {
		if err := ValidateKey(u.NewName); err != nil {
			return nil, &APIError{Op: op, Err: ErrValidation, Message: "new name: " + strings.TrimPrefix(err.Error(), ErrValidation.Error()+": ")}
		}
	}
	if u.Value != nil {
		if err := checkValue(op, u.Value); err != nil {
			return nil, err
		}
	}
	body, err := writeBody(writeMeta{ProjectID: r.ProjectID, Environment: r.Environment, SecretPath: r.Path, Type: "shared",
		NewSecretName: u.NewName, SecretComment: u.Comment}, u.Value)
	if err != nil {
		return nil, fmt.Errorf("infisical: %s: encode: %w", op, err)
	}
	defer clear(body)
	return c.secretCall(ctx, &call{op: op, method: http.MethodPatch, route: routeSecret,
		path: secretPathOf(r.Key), body: body, auth: true,
		scope: scope{r.ProjectID, r.Environment, r.Path}, sensitive: [][]byte{u.Value}}, r.Path)
}

// DeleteSecret deletes a shared secret; a missing key is ErrNotFound.
func (c *Client) DeleteSecret(ctx context.Context, r Ref) error {
	const op = "delete secret"
	r, err := checkRef(op, r)
	if err != nil {
		return err
	}
	body, err := writeBody(writeMeta{ProjectID: r.ProjectID, Environment: r.Environment, SecretPath: r.Path, Type: "shared"}, nil)
	if err != nil {
		return fmt.Errorf("infisical: %s: encode: %w", op, err)
	}
	s, err := c.secretCall(ctx, &call{op: op, method: http.MethodDelete, route: routeSecret,
		path: secretPathOf(r.Key), body: body, auth: true,
		scope: scope{r.ProjectID, r.Environment, r.Path}}, r.Path)
	if s != nil {
		clear(s.Value) // the answer echoes the deleted value
	}
	return err
}

// UpsertSecret writes value whether or not the key exists, in one request
// when known says right: known → PATCH, and POST if the key is gone (404);
// unknown → POST, and PATCH if the key exists (400 "already exist", or a 409).
// A 404 about a missing folder or environment is returned as is.
func (c *Client) UpsertSecret(ctx context.Context, r Ref, value []byte, known bool) (*Secret, error) {
	if value == nil {
		value = []byte{}
	}
	if known {
		s, err := c.UpdateSecret(ctx, r, Update{Value: value})
		if err == nil || !secretMissing(err) {
			return s, err
		}
		return c.CreateSecret(ctx, r, value)
	}
	s, err := c.CreateSecret(ctx, r, value)
	if err == nil || !errors.Is(err, ErrAlreadyExists) {
		return s, err
	}
	return c.UpdateSecret(ctx, r, Update{Value: value})
}

// secretMissing tells "no such secret" from "no such folder/environment"
// among 404s; only the first is worth a create.
func secretMissing(err error) bool {
	var ae *APIError
	if !errors.As(err, &ae) || ae.Err != ErrNotFound {
		return false
	}
	m := strings.ToLower(ae.Message)
	return !strings.Contains(m, "folder") && !strings.Contains(m, "environment")
}
