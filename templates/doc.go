// Package templates renders [[template]] files from the vault with the
// official Infisical agent's template functions, and remembers what each
// template read so that a vault change re-renders exactly the templates it
// touches.
//
// What a template sees is what the agent's template sees
// (Infisical/cli packages/cmd/agent.go): Go text/template, `.` is nil, and
//
//	listSecrets  projectId env path [options]  -> []Secret
//	secret       (the deprecated name of listSecrets)
//	listSecretsByProjectSlug slug env path [options] -> []Secret
//	getSecretByName projectId env path name     -> Secret
//	add a b, minus a b                          -> int
//
// options is a JSON string: {"recursive": bool (false),
// "expandSecretReferences": bool (true)}. A Secret has the agent's fields
// (.Key .Value .Type .WorkspaceId .SecretPath .ID .Comment .Tags .Etag
// .SkipMultilineEncoding) filled the way the agent fills them: a listed
// secret of the folder has Key, Value, Type, WorkspaceId and SecretPath; a
// listed imported secret has Key, Value, Type, WorkspaceId and ID (no
// SecretPath); getSecretByName also fills ID and Comment. Listed secrets
// come in the Source's order: the folder's own, then imported ones whose key
// the folder does not already hold.
//
// Differences from the agent, on purpose: every function is available in
// every template (the agent offers listSecrets, add and minus only to
// source-path templates); `dynamic_secret`/`dynamicSecret` fail with an error
// that names dynamic secrets as an unsupported (licensed) feature; the
// agent's newer builds add the Sprig library, which is not offered here (a
// template using it fails at parse, naming the function).
//
// Rendering never calls the API: it reads a Source (the vault), records the
// folders and keys each template read (with recursive, the whole subtree),
// and Affected maps a tree.Changes onto the templates that must re-render.
// A failed render keeps the last good content; the error is kept for
// .status and the log. Rendered bytes are secrets: they are kept sealed
// (AES-GCM under a per-Set random key), values read during a render are
// wiped after it, and errors are scrubbed of every value read.
package templates
