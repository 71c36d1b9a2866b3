package infisicaltest

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

const (
	hiddenValue    = "<hidden-by-infisical>"
	msgInvalidPath = "Invalid secret path. Only alphanumeric characters, dashes, and underscores are allowed."
	maxRecurseDeep = 20
)

func (s *Server) secretRoutes() {
	for _, v := range []struct{ list, one, batch string }{
		{"/api/v4/secrets", "/api/v4/secrets/{secretName}", "/api/v4/secrets/batch"},
		{"/api/v3/secrets/raw", "/api/v3/secrets/raw/{secretName}", "/api/v3/secrets/batch/raw"},
	} {
		s.handle("GET "+v.list, true, s.listSecrets)
		s.handle("GET "+v.one, true, s.getSecret)
		s.handle("POST "+v.one, true, s.createSecret)
		s.handle("PATCH "+v.one, true, s.updateSecret)
		s.handle("DELETE "+v.one, true, s.deleteSecret)
		s.handle("POST "+v.batch, true, s.batchCreate)
		s.handle("PATCH "+v.batch, true, s.batchUpdate)
		s.handle("DELETE "+v.batch, true, s.batchDelete)
	}
	s.handle("GET /api/v4/secrets/id/{id}", true, s.getSecretByID)
}

// secretBody is the union of the secret write bodies (v4 and v3 raw
// spellings); unknown keys are dropped as the backend's non-strict zod does.
type secretBody struct {
	ProjectID             string      `json:"projectId"`
	WorkspaceID           string      `json:"workspaceId"`
	ProjectSlug           string      `json:"projectSlug"`
	WorkspaceSlug         string      `json:"workspaceSlug"`
	Environment           string      `json:"environment"`
	SecretPath            *string     `json:"secretPath"`
	SecretValue           *string     `json:"secretValue"`
	SecretComment         *string     `json:"secretComment"`
	NewSecretName         *string     `json:"newSecretName"`
	Type                  string      `json:"type"`
	SkipMultilineEncoding *bool       `json:"skipMultilineEncoding"`
	Mode                  string      `json:"mode"`
	Secrets               []batchItem `json:"secrets"`
}

type batchItem struct {
	SecretKey             *string `json:"secretKey"`
	SecretValue           *string `json:"secretValue"`
	SecretComment         *string `json:"secretComment"`
	SecretPath            *string `json:"secretPath"`
	NewSecretName         *string `json:"newSecretName"`
	SkipMultilineEncoding *bool   `json:"skipMultilineEncoding"`
	Type                  string  `json:"type"`
}

func (b *secretBody) projectID() string   { return firstNonEmpty(b.ProjectID, b.WorkspaceID) }
func (b *secretBody) projectSlug() string { return firstNonEmpty(b.ProjectSlug, b.WorkspaceSlug) }

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

func deref(p *string, def string) string {
	if p == nil {
		return def
	}
	return *p
}

func folderNotFound(path, env string) *apiError {
	return errNotFound(fmt.Sprintf("Folder with path '%s' in environment with slug '%s' not found", path, env))
}

// scope is a resolved project + environment + folder of a secret route.
type scope struct {
	p    *project
	env  *environment
	f    *folder
	path string
	slug string
}

// writeScope resolves the target of a write in the backend's order: schema
// (422), path syntax (400), project (404/403), permission (403), folder (404).
func (c *call) writeScope(b *secretBody, rawPath *string, action string) (*scope, *apiError) {
	var issues []zodIssue
	if b.projectID() == "" && b.projectSlug() == "" {
		issues = append(issues, requiredIssue("projectId"))
	}
	if b.Environment == "" {
		issues = append(issues, requiredIssue("environment"))
	}
	if issues != nil {
		return nil, errValidation(issues...)
	}
	if b.Type == "personal" {
		return nil, errBadRequest("Must be user to create personal secret")
	}
	path, ok := canonicalSecretPath(deref(rawPath, "/"))
	if !ok {
		return nil, errBadRequest(msgInvalidPath)
	}
	p, e := c.project(b.projectID(), b.projectSlug())
	if e != nil {
		return nil, e
	}
	if e := c.authorize(p, b.Environment, path, action, "secrets"); e != nil {
		return nil, e
	}
	sc := &scope{p: p, path: path, slug: b.Environment, env: p.env(b.Environment)}
	if sc.env != nil {
		sc.f = sc.env.lookup(path)
	}
	if sc.f == nil {
		return nil, folderNotFound(path, b.Environment)
	}
	return sc, nil
}

// keyIssue validates a secret name for a zod schema field.
func keyIssue(key string, path ...any) *zodIssue {
	code, msg := keyProblem(key)
	if code == "" {
		return nil
	}
	is := issue(code, msg, path...)
	if code == "too_small" {
		is["minimum"], is["type"], is["inclusive"], is["exact"] = 1, "string", true, false
	}
	return &is
}

type view int

const (
	viewBase    view = iota // create, delete, batch
	viewUpdate              // base + secretValueHidden
	viewFull                // list, get: + secretPath, secretValueHidden, secretMetadata, tags
	viewImport              // imported secrets: full without createdAt/updatedAt
	viewVersion             // get-one ?version=N: full, but a version row has no tags or metadata
)

// secretOut is a secret object as the API answers it. A struct, not a map:
// encoding/json sorts map keys, which made a 100k-secret listing take the
// server over a second to render (and again for every 304, whose ETag needs
// the body). Pointer fields marked omitempty are the ones a view leaves out.
type secretOut struct {
	ID                       string     `json:"id"`
	LegacyID                 string     `json:"_id"`
	Workspace                string     `json:"workspace"`
	Environment              string     `json:"environment"`
	Version                  int        `json:"version"`
	Type                     string     `json:"type"`
	SecretKey                string     `json:"secretKey"`
	SecretValue              string     `json:"secretValue"`
	SecretComment            string     `json:"secretComment"`
	SkipMultilineEncoding    bool       `json:"skipMultilineEncoding"`
	SecretReminderNote       *string    `json:"secretReminderNote"`
	SecretReminderRepeatDays *int       `json:"secretReminderRepeatDays"`
	IsRotatedSecret          bool       `json:"isRotatedSecret"`
	RotationID               *string    `json:"rotationId"`
	Actor                    actorOut   `json:"actor"`
	CreatedAt                *string    `json:"createdAt,omitempty"`
	UpdatedAt                *string    `json:"updatedAt,omitempty"`
	SecretValueHidden        *bool      `json:"secretValueHidden,omitempty"`
	SecretPath               *string    `json:"secretPath,omitempty"`
	SecretMetadata           *[]metaOut `json:"secretMetadata,omitempty"`
	Tags                     *[]tagOut  `json:"tags,omitempty"`
}

type actorOut struct {
	ActorID   string `json:"actorId"`
	ActorType string `json:"actorType"`
	Name      string `json:"name"`
}

type tagOut struct {
	ID    string  `json:"id"`
	Slug  string  `json:"slug"`
	Name  string  `json:"name"`
	Color *string `json:"color"`
}

type metaOut struct {
	Key         string `json:"key"`
	Value       string `json:"value"`
	IsEncrypted bool   `json:"isEncrypted"`
}

func secretJSON(p *project, env, path string, sec *secret, value string, hidden bool, v view) *secretOut {
	m := &secretOut{
		ID: sec.id, LegacyID: sec.id, Workspace: p.id, Environment: env, Version: sec.version,
		Type: "shared", SecretKey: sec.key, SecretValue: value, SecretComment: sec.comment,
		SkipMultilineEncoding: sec.skipMultiline,
		Actor:                 actorOut{ActorID: sec.actorID, ActorType: sec.actorType, Name: sec.actorName},
	}
	if v != viewImport {
		c, u := iso(sec.createdAt), iso(sec.updatedAt)
		m.CreatedAt, m.UpdatedAt = &c, &u
	}
	if v != viewBase {
		m.SecretValueHidden = &hidden
	}
	switch v {
	case viewFull, viewImport:
		md, tags := metadataJSON(sec), tagsJSON(sec)
		m.SecretPath, m.SecretMetadata, m.Tags = &path, &md, &tags
	case viewVersion:
		// The backend parses a version row with tags defaulting to [] and
		// no secretMetadata, which the response schema then omits.
		tags := []tagOut{}
		m.SecretPath, m.Tags = &path, &tags
	}
	return m
}

func tagsJSON(sec *secret) []tagOut {
	out := make([]tagOut, 0, len(sec.tags))
	for _, t := range sec.tags {
		out = append(out, tagOut{ID: t.id, Slug: t.slug, Name: t.name})
	}
	return out
}

func metadataJSON(sec *secret) []metaOut {
	out := make([]metaOut, 0, len(sec.metadata))
	for _, m := range sec.metadata {
		out = append(out, metaOut{Key: m.key, Value: m.value})
	}
	return out
}

// readOpts are the value-rendering switches of list and get.
type readOpts struct {
	view, expand, imports bool
}

func (c *call) readOpts() (readOpts, *apiError) {
	var o readOpts
	var e *apiError
	if o.view, e = c.queryBool("viewSecretValue", true); e != nil {
		return o, e
	}
	if o.expand, e = c.queryBool("expandSecretReferences", false); e != nil {
		return o, e
	}
	a, e := c.queryBool("include_imports", false)
	if e != nil {
		return o, e
	}
	b, e := c.queryBool("includeImports", false)
	if e != nil {
		return o, e
	}
	o.imports = a || b
	return o, nil
}

// render is a secret's value as a list answers it: masked when the caller
// asked not to see values or may not read this one (secretValueHidden),
// else raw or expanded. A masked value is not expanded (the backend masks
// before it expands).
func (c *call) render(x *expander, env, path string, sec *secret, o readOpts) (string, bool, *expansionDenied) {
	if !o.view || sec.hidden {
		return hiddenValue, true, nil
	}
	if !o.expand {
		return sec.value, false, nil
	}
	v, denied := x.expandSecret(sec.value, sec.skipMultiline, env, path, sec.key)
	return v, false, denied
}

// msgExpandFailed is the list route's answer when any expansion was denied
// (secret-v2-bridge-service.ts getSecrets collects every rejection).
const msgExpandFailed = "Failed to expand one or more secret references"

func expandFailed(details []string) *apiError {
	return &apiError{status: 403, name: "ForbiddenError", message: msgExpandFailed, details: details}
}

// checkReferences is the write-time check of $validateSecretReferences
// (secret-v2-bridge-service.ts): every referenced environment must exist,
// then every referenced folder, then every referenced secret, and the
// writer must be allowed to read each (else the CASL 403). Messages are
// those of the contract §1, from the newer backend.
func (c *call) checkReferences(p *project, env, path, value string) *apiError {
	type ref struct{ raw, env, path, key string }
	var refs []ref
	for _, m := range referenceRe.FindAllStringSubmatch(value, -1) {
		renv, rpath, key, local := parseReference(m[1])
		if local {
			renv, rpath = env, path
		}
		refs = append(refs, ref{m[1], renv, rpath, key})
	}
	var missingEnvs []string
	for _, r := range refs {
		if p.env(r.env) == nil && !slices.Contains(missingEnvs, r.env) {
			missingEnvs = append(missingEnvs, r.env)
		}
	}
	if missingEnvs != nil {
		return errBadRequest("Referenced environment not found. Missing " + strings.Join(missingEnvs, ","))
	}
	var missing []string
	for _, r := range refs {
		f := p.env(r.env).lookup(r.path)
		if f == nil {
			return errBadRequest(fmt.Sprintf("Referenced path %s doesn't exist", r.path))
		}
		if f.secrets[r.key] == nil {
			missing = append(missing, r.raw)
		}
	}
	if missing != nil {
		return errBadRequest("Referenced secret(s) not found: " + strings.Join(missing, ","))
	}
	for _, r := range refs {
		if e := c.authorize(p, r.env, r.path, "read", "secrets"); e != nil {
			return e
		}
	}
	return nil
}

func (s *Server) listSecrets(c *call) (any, *apiError) {
	o, e := c.readOpts()
	if e != nil {
		return nil, e
	}
	recursive, e := c.queryBool("recursive", false)
	if e != nil {
		return nil, e
	}
	q := c.r.URL.Query()
	pid, pslug := c.firstQuery("projectId", "workspaceId"), c.firstQuery("projectSlug", "workspaceSlug")
	envSlug := q.Get("environment")
	if (pid == "" && pslug == "") || envSlug == "" {
		return nil, errBadRequest("Missing project id or environment")
	}
	p, path, e := c.readScope(pid, pslug, envSlug, q.Get("secretPath"))
	if e != nil {
		return nil, e
	}
	out := map[string]any{"secrets": []any{}, "imports": []any{}}
	env := p.env(envSlug)
	if env == nil {
		if recursive {
			return nil, errNotFound(fmt.Sprintf("Environment with slug '%s' in project with ID %s not found", envSlug, p.id))
		}
		return out, nil
	}
	top := env.lookup(path)
	if top == nil {
		return out, nil
	}
	folders := []*folder{top}
	if recursive {
		folders = folders[:0]
		base := strings.Count(top.path(), "/")
		top.walk(func(f *folder) {
			if strings.Count(f.path(), "/")-base <= maxRecurseDeep {
				folders = append(folders, f)
			}
		})
	}
	x := &expander{c: c, p: p}
	secrets, imports := []any{}, []any{}
	var denied []string
	for _, f := range folders {
		fp := f.path()
		for _, sec := range f.sortedSecrets() {
			v, hidden, d := c.render(x, envSlug, fp, sec, o)
			if d != nil {
				denied = append(denied, d.msg)
				continue
			}
			secrets = append(secrets, secretJSON(p, envSlug, fp, sec, v, hidden, viewFull))
		}
	}
	if denied != nil {
		return nil, expandFailed(denied)
	}
	for _, f := range folders {
		if !o.imports {
			break
		}
		for _, im := range f.imports {
			imp, e := c.importJSON(x, im, o)
			if e != nil {
				return nil, e
			}
			if imp != nil {
				imports = append(imports, imp)
			}
		}
	}
	out["secrets"], out["imports"] = secrets, imports
	return out, nil
}

// importJSON renders one import of a folder, nil if its source is gone or
// unreadable.
func (c *call) importJSON(x *expander, im importRef, o readOpts) (map[string]any, *apiError) {
	p := x.p
	env := p.env(im.env)
	if env == nil || !c.allowed(p, im.env, false) {
		return nil, nil
	}
	src := env.lookup(im.path)
	if src == nil {
		return nil, nil
	}
	list := []*secretOut{}
	for _, sec := range src.sortedSecrets() {
		v, hidden, d := c.render(x, im.env, im.path, sec, o)
		if d != nil {
			return nil, &apiError{status: 403, name: "ForbiddenError", message: d.msg}
		}
		list = append(list, secretJSON(p, im.env, im.path, sec, v, hidden, viewImport))
	}
	return map[string]any{"secretPath": im.path, "environment": im.env, "folderId": src.id, "secrets": list}, nil
}

func (s *Server) getSecret(c *call) (any, *apiError) {
	key := strings.TrimSpace(c.r.PathValue("secretName"))
	o, e := c.readOpts()
	if e != nil {
		return nil, e
	}
	q := c.r.URL.Query()
	pid, pslug := c.firstQuery("projectId", "workspaceId"), c.firstQuery("projectSlug", "workspaceSlug")
	if pid == "" && pslug == "" {
		return nil, errValidation(requiredIssue("projectId"))
	}
	envSlug := q.Get("environment")
	if envSlug == "" {
		return nil, errBadRequest("Missing environment")
	}
	p, path, e := c.readScope(pid, pslug, envSlug, q.Get("secretPath"))
	if e != nil {
		return nil, e
	}
	var f *folder
	if env := p.env(envSlug); env != nil {
		f = env.lookup(path)
	}
	if f == nil {
		return nil, folderNotFound(path, envSlug)
	}
	notFound := errNotFound(fmt.Sprintf("Secret with name '%s' not found", key))
	if q.Get("type") == "personal" {
		return nil, notFound
	}
	srcEnv, srcPath, sec := envSlug, path, f.secrets[key]
	sec, ver, e := c.versionOf(sec, key)
	if e != nil {
		return nil, e
	}
	for i := len(f.imports) - 1; sec == nil && o.imports && i >= 0; i-- {
		im := f.imports[i]
		if ienv := p.env(im.env); ienv != nil && c.allowed(p, im.env, false) {
			if src := ienv.lookup(im.path); src != nil && src.secrets[key] != nil {
				srcEnv, srcPath, sec = im.env, im.path, src.secrets[key]
			}
		}
	}
	if sec == nil {
		return nil, notFound
	}
	v, e := c.readOne(&expander{c: c, p: p}, srcEnv, srcPath, sec, o, ver)
	if e != nil {
		return nil, e
	}
	return v, nil
}

// versionOf applies ?version=N to the secret a get-one found. The backend
// reads the version row by folder, key and version
// (secretVersionDAL.findOne in getSecretByName) and answers a missing row,
// a pruned one included, with 404 "Secret with name 'X' not found".
func (c *call) versionOf(sec *secret, key string) (*secret, view, *apiError) {
	raw := c.r.URL.Query().Get("version")
	if raw == "" || sec == nil {
		return sec, viewFull, nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil {
		return nil, 0, errValidation(issue("invalid_type", "Expected number, received nan", "version"))
	}
	old := sec.atVersion(n)
	if old == nil {
		return nil, 0, errNotFound(fmt.Sprintf("Secret with name '%s' not found", key))
	}
	cp := *old
	cp.hidden = sec.hidden // hiding is a permission of now, not of the version
	return &cp, viewVersion, nil
}

// readOne is get-one's rendering (getSecretByName): expanded first when
// asked and values are shown, then a value the caller may not read is a
// 403 rather than a placeholder.
func (c *call) readOne(x *expander, env, path string, sec *secret, o readOpts, v view) (any, *apiError) {
	value, hidden := sec.value, true
	if o.expand && o.view && value != "" {
		exp, d := x.expandSecret(value, sec.skipMultiline, env, path, sec.key)
		if d != nil {
			return nil, &apiError{status: 403, name: "ForbiddenError", message: d.msg}
		}
		value = exp
	}
	if o.view {
		if sec.hidden {
			return nil, &apiError{status: 403, name: "ForbiddenReadSecretError",
				message: fmt.Sprintf("You do not have permission to view secret value on secret with name '%s'", sec.key)}
		}
		hidden = false
	} else {
		value = hiddenValue
	}
	return map[string]any{"secret": secretJSON(x.p, env, path, sec, value, hidden, v)}, nil
}

func (s *Server) getSecretByID(c *call) (any, *apiError) {
	o, e := c.readOpts()
	if e != nil {
		return nil, e
	}
	want := c.r.PathValue("id")
	for _, pid := range s.projOrder {
		p := s.projects[pid]
		for _, env := range p.envs {
			var found *secret
			var in *folder
			env.root.walk(func(f *folder) {
				for _, sec := range f.secrets {
					if sec.id == want {
						found, in = sec, f
					}
				}
			})
			if found == nil {
				continue
			}
			if _, e := c.project(p.id, ""); e != nil {
				return nil, e
			}
			if e := c.authorize(p, env.slug, in.path(), "read", "secrets"); e != nil {
				return nil, e
			}
			return c.readOne(&expander{c: c, p: p}, env.slug, in.path(), found, o, viewFull)
		}
	}
	return nil, errNotFound(fmt.Sprintf("Secret with ID '%s' not found", want))
}

func (c *call) stamp(sec *secret) {
	sec.updatedAt = c.now
	sec.actorID, sec.actorType, sec.actorName = c.ident.id, "identity", c.ident.clientID
}

func (s *Server) createSecret(c *call) (any, *apiError) {
	key := strings.TrimSpace(c.r.PathValue("secretName"))
	var b secretBody
	if e := c.decodeBody(&b); e != nil {
		return nil, e
	}
	if is := keyIssue(key, "secretName"); is != nil {
		return nil, errValidation(*is)
	}
	if b.SecretValue == nil {
		return nil, errValidation(requiredIssue("secretValue"))
	}
	sc, e := c.writeScope(&b, b.SecretPath, "create")
	if e != nil {
		return nil, e
	}
	if sc.f.secrets[key] != nil {
		return nil, errBadRequest("Secret already exist")
	}
	if len(key) > maxKeyLen {
		return nil, errDatabase()
	}
	value := normalizeValue(*b.SecretValue)
	if e := c.checkReferences(sc.p, sc.slug, sc.path, value); e != nil {
		return nil, e
	}
	if sc.p.approval[sc.slug] {
		return approvalJSON(sc.f, c.now), nil
	}
	sec := &secret{id: newID(), key: key, value: value, comment: deref(b.SecretComment, ""),
		version: 1, createdAt: c.now}
	if b.SkipMultilineEncoding != nil {
		sec.skipMultiline = *b.SkipMultilineEncoding
	}
	c.stamp(sec)
	sec.record()
	sc.f.secrets[key] = sec
	return map[string]any{"secret": secretJSON(sc.p, sc.slug, sc.path, sec, sec.value, false, viewBase)}, nil
}

// newNameProblem checks newSecretName: "" is a 400, other rule breaks 422.
func newNameProblem(name *string, field ...any) *apiError {
	if name == nil {
		return nil
	}
	if strings.TrimSpace(*name) == "" {
		return errBadRequest("New secret name cannot be empty")
	}
	if is := keyIssue(*name, field...); is != nil {
		return errValidation(*is)
	}
	return nil
}

// change is one validated update, applied only once every item passed.
type change struct {
	f       *folder
	sec     *secret
	newName string
	value   *string
	comment *string
	skip    *bool
}

// planUpdate validates an update of key in f (after folder resolution).
func (c *call) planUpdate(sc *scope, f *folder, path, key string, value, comment, newName *string, skip *bool) (*change, *apiError) {
	sec := f.secrets[key]
	if sec == nil {
		return nil, errNotFound(fmt.Sprintf("Secret with name %s not found", key))
	}
	ch := &change{f: f, sec: sec, newName: key, comment: comment, skip: skip}
	if newName != nil {
		ch.newName = strings.TrimSpace(*newName)
		if ch.newName != key && f.secrets[ch.newName] != nil {
			return nil, errBadRequest("Secret with the new name already exist")
		}
		if len(ch.newName) > maxKeyLen {
			return nil, errDatabase()
		}
	}
	if value != nil {
		v := normalizeValue(*value)
		if e := c.checkReferences(sc.p, sc.slug, path, v); e != nil {
			return nil, e
		}
		ch.value = &v
	}
	return ch, nil
}

func (c *call) apply(ch *change) {
	sec := ch.sec
	if ch.value != nil {
		sec.value = *ch.value
	}
	if ch.comment != nil {
		sec.comment = *ch.comment
	}
	if ch.skip != nil {
		sec.skipMultiline = *ch.skip
	}
	if ch.newName != sec.key {
		delete(ch.f.secrets, sec.key)
		sec.key = ch.newName
		ch.f.secrets[sec.key] = sec
	}
	sec.version++
	c.stamp(sec)
	sec.record()
}

func (s *Server) updateSecret(c *call) (any, *apiError) {
	key := strings.TrimSpace(c.r.PathValue("secretName"))
	var b secretBody
	if e := c.decodeBody(&b); e != nil {
		return nil, e
	}
	if key == "" {
		return nil, errValidation(*keyIssue(key, "secretName"))
	}
	if e := newNameProblem(b.NewSecretName, "newSecretName"); e != nil {
		return nil, e
	}
	sc, e := c.writeScope(&b, b.SecretPath, "edit")
	if e != nil {
		return nil, e
	}
	ch, e := c.planUpdate(sc, sc.f, sc.path, key, b.SecretValue, b.SecretComment, b.NewSecretName, b.SkipMultilineEncoding)
	if e != nil {
		return nil, e
	}
	if sc.p.approval[sc.slug] {
		return approvalJSON(sc.f, c.now), nil
	}
	c.apply(ch)
	return map[string]any{"secret": secretJSON(sc.p, sc.slug, sc.path, ch.sec, ch.sec.value, false, viewUpdate)}, nil
}

func (s *Server) deleteSecret(c *call) (any, *apiError) {
	key := c.r.PathValue("secretName")
	var b secretBody
	if e := c.decodeBody(&b); e != nil {
		return nil, e
	}
	if key == "" {
		return nil, errValidation(*keyIssue(key, "secretName"))
	}
	sc, e := c.writeScope(&b, b.SecretPath, "delete")
	if e != nil {
		return nil, e
	}
	sec := sc.f.secrets[key]
	if sec == nil {
		return nil, errNotFound("Secret not found")
	}
	if sc.p.approval[sc.slug] {
		return approvalJSON(sc.f, c.now), nil
	}
	delete(sc.f.secrets, key)
	return map[string]any{"secret": secretJSON(sc.p, sc.slug, sc.path, sec, sec.value, false, viewBase)}, nil
}

// batchItems checks the shared shape of batch bodies: at least one item,
// every secretKey valid.
func batchItems(b *secretBody) *apiError {
	if len(b.Secrets) == 0 {
		is := issue("too_small", "Array must contain at least 1 element(s)", "secrets")
		is["minimum"], is["type"], is["inclusive"], is["exact"] = 1, "array", true, false
		return errValidation(is)
	}
	var issues []zodIssue
	for i, it := range b.Secrets {
		if it.SecretKey == nil {
			issues = append(issues, zodIssue{"code": "invalid_type", "expected": "string",
				"received": "undefined", "message": "Required", "path": []any{"secrets", i, "secretKey"}})
			continue
		}
		if is := keyIssue(*it.SecretKey, "secrets", i, "secretKey"); is != nil {
			issues = append(issues, *is)
		}
	}
	if issues != nil {
		return errValidation(issues...)
	}
	return nil
}

func (s *Server) batchCreate(c *call) (any, *apiError) {
	var b secretBody
	if e := c.decodeBody(&b); e != nil {
		return nil, e
	}
	if e := batchItems(&b); e != nil {
		return nil, e
	}
	for i, it := range b.Secrets {
		if it.SecretValue == nil {
			return nil, errValidation(zodIssue{"code": "invalid_type", "expected": "string",
				"received": "undefined", "message": "Required", "path": []any{"secrets", i, "secretValue"}})
		}
	}
	sc, e := c.writeScope(&b, b.SecretPath, "create")
	if e != nil {
		return nil, e
	}
	var exists []string
	seen := map[string]bool{}
	for _, it := range b.Secrets {
		k := strings.TrimSpace(*it.SecretKey)
		if sc.f.secrets[k] != nil || seen[k] {
			exists = append(exists, k)
		}
		seen[k] = true
	}
	if exists != nil {
		return nil, errBadRequest("Secret already exist: " + strings.Join(exists, ","))
	}
	for _, it := range b.Secrets {
		if len(strings.TrimSpace(*it.SecretKey)) > maxKeyLen {
			return nil, errDatabase()
		}
		if e := c.checkReferences(sc.p, sc.slug, sc.path, normalizeValue(*it.SecretValue)); e != nil {
			return nil, e
		}
	}
	if sc.p.approval[sc.slug] {
		return approvalJSON(sc.f, c.now), nil
	}
	out := []any{}
	for _, it := range b.Secrets {
		sec := &secret{id: newID(), key: strings.TrimSpace(*it.SecretKey), value: normalizeValue(*it.SecretValue),
			comment: deref(it.SecretComment, ""), version: 1, createdAt: c.now}
		if it.SkipMultilineEncoding != nil {
			sec.skipMultiline = *it.SkipMultilineEncoding
		}
		c.stamp(sec)
		sec.record()
		sc.f.secrets[sec.key] = sec
		out = append(out, secretJSON(sc.p, sc.slug, sc.path, sec, sec.value, false, viewBase))
	}
	return map[string]any{"secrets": out}, nil
}

func (s *Server) batchUpdate(c *call) (any, *apiError) {
	var b secretBody
	if e := c.decodeBody(&b); e != nil {
		return nil, e
	}
	if e := batchItems(&b); e != nil {
		return nil, e
	}
	mode := firstNonEmpty(b.Mode, "failOnNotFound")
	if mode != "failOnNotFound" && mode != "upsert" && mode != "ignore" {
		return nil, errValidation(zodIssue{"code": "invalid_enum_value", "received": mode,
			"options": []string{"failOnNotFound", "upsert", "ignore"}, "path": []any{"mode"},
			"message": fmt.Sprintf("Invalid enum value. Expected 'failOnNotFound' | 'upsert' | 'ignore', received '%s'", mode)})
	}
	for i, it := range b.Secrets {
		if e := newNameProblem(it.NewSecretName, "secrets", i, "newSecretName"); e != nil {
			return nil, e
		}
	}
	sc, e := c.writeScope(&b, b.SecretPath, "edit")
	if e != nil {
		return nil, e
	}
	type created struct {
		f    *folder
		path string
		sec  *secret
	}
	var changes []*change
	var creates []created
	for _, it := range b.Secrets {
		key := strings.TrimSpace(*it.SecretKey)
		f, path := sc.f, sc.path
		if it.SecretPath != nil {
			var ok bool
			if path, ok = canonicalSecretPath(*it.SecretPath); !ok {
				return nil, errBadRequest(msgInvalidPath)
			}
			if f = sc.env.lookup(path); f == nil {
				return nil, folderNotFound(path, sc.slug)
			}
		}
		if f.secrets[key] == nil {
			switch mode {
			case "ignore":
				continue
			case "failOnNotFound":
				return nil, errNotFound(fmt.Sprintf("Secret does not exist: %s in path %s", key, path))
			}
			v := normalizeValue(deref(it.SecretValue, ""))
			if e := c.checkReferences(sc.p, sc.slug, path, v); e != nil {
				return nil, e
			}
			creates = append(creates, created{f: f, path: path, sec: &secret{id: newID(), key: key,
				value: v, comment: deref(it.SecretComment, ""), version: 1, createdAt: c.now}})
			continue
		}
		ch, e := c.planUpdate(sc, f, path, key, it.SecretValue, it.SecretComment, it.NewSecretName, it.SkipMultilineEncoding)
		if e != nil {
			return nil, e
		}
		changes = append(changes, ch)
	}
	if sc.p.approval[sc.slug] {
		return approvalJSON(sc.f, c.now), nil
	}
	out := []any{}
	for _, ch := range changes {
		c.apply(ch)
		out = append(out, secretJSON(sc.p, sc.slug, ch.f.path(), ch.sec, ch.sec.value, false, viewBase))
	}
	for _, cr := range creates {
		c.stamp(cr.sec)
		cr.sec.record()
		cr.f.secrets[cr.sec.key] = cr.sec
		out = append(out, secretJSON(sc.p, sc.slug, cr.path, cr.sec, cr.sec.value, false, viewBase))
	}
	return map[string]any{"secrets": out}, nil
}

// batchDelete refuses the whole batch when a key is missing (the backend's
// behaviour there is unconfirmed; all-or-nothing is the safe reading).
func (s *Server) batchDelete(c *call) (any, *apiError) {
	var b secretBody
	if e := c.decodeBody(&b); e != nil {
		return nil, e
	}
	if e := batchItems(&b); e != nil {
		return nil, e
	}
	sc, e := c.writeScope(&b, b.SecretPath, "delete")
	if e != nil {
		return nil, e
	}
	var missing []string
	for _, it := range b.Secrets {
		if sc.f.secrets[strings.TrimSpace(*it.SecretKey)] == nil {
			missing = append(missing, strings.TrimSpace(*it.SecretKey))
		}
	}
	if missing != nil {
		return nil, errNotFound("Secret not found: " + strings.Join(missing, ","))
	}
	if sc.p.approval[sc.slug] {
		return approvalJSON(sc.f, c.now), nil
	}
	out := []any{}
	for _, it := range b.Secrets {
		sec := sc.f.secrets[strings.TrimSpace(*it.SecretKey)]
		if sec == nil { // listed twice
			continue
		}
		delete(sc.f.secrets, sec.key)
		out = append(out, secretJSON(sc.p, sc.slug, sc.path, sec, sec.value, false, viewBase))
	}
	return map[string]any{"secrets": out}, nil
}

// SetSecret creates or updates a secret out of band (as another user
// would), creating missing folders; the value is normalised as on the API.
// It returns the new version and panics on an unknown project or env.
func (s *Server) SetSecret(projectID, env, path, key, value string) int {
	return s.EditSecret(projectID, env, path, key, func(string) string { return value })
}

// EditSecret replaces a secret's value with edit(its value) atomically, as
// another user editing it in the UI would ("" for a missing secret, which
// is created), and returns the new version.
func (s *Server) EditSecret(projectID, env, path, key string, edit func(old string) string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	f := s.mustEnv(projectID, env).ensure(mustPath(path), now)
	sec := f.secrets[key]
	if sec == nil {
		sec = &secret{id: newID(), key: key, createdAt: now}
		f.secrets[key] = sec
	}
	sec.value = normalizeValue(edit(sec.value))
	sec.version++
	sec.updatedAt = now
	sec.actorID, sec.actorType, sec.actorName = "00000000-0000-4000-8000-000000000001", "user", "another-user"
	sec.record()
	return sec.version
}

// DeleteSecret deletes a secret out of band; false if it did not exist.
func (s *Server) DeleteSecret(projectID, env, path, key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.mustEnv(projectID, env).lookup(mustPath(path))
	if f == nil || f.secrets[key] == nil {
		return false
	}
	delete(f.secrets, key)
	return true
}

// Secret returns the stored (raw, unexpanded) value and version.
func (s *Server) Secret(projectID, env, path, key string) (value string, version int, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.mustEnv(projectID, env).lookup(mustPath(path))
	if f == nil || f.secrets[key] == nil {
		return "", 0, false
	}
	return f.secrets[key].value, f.secrets[key].version, true
}

// Secrets returns every secret of an environment keyed "/path/KEY" (root
// secrets as "/KEY").
func (s *Server) Secrets(projectID, env string) map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]string{}
	s.mustEnv(projectID, env).root.walk(func(f *folder) {
		prefix := f.path()
		if prefix == "/" {
			prefix = ""
		}
		for k, sec := range f.secrets {
			out[prefix+"/"+k] = sec.value
		}
	})
	return out
}

func (s *Server) mustEnv(projectID, env string) *environment {
	e := s.mustProject(projectID).env(env)
	if e == nil {
		panic(fmt.Sprintf("infisicaltest: project %s has no environment %q", projectID, env))
	}
	return e
}

// mustPath canonicalises a path given to a helper ("a/b" → "/a/b").
func mustPath(p string) string {
	cp, ok := canonicalFolderPath(p)
	if _, ok2 := splitPath(cp); !ok || !ok2 {
		panic(fmt.Sprintf("infisicaltest: invalid folder path %q", p))
	}
	return cp
}
