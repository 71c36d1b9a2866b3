// Package refs expands Infisical secret references (${KEY}, ${env.KEY},
// ${env.a.b.KEY}) locally, byte for byte as the Infisical backend does with
// expandSecretReferences=true, from raw values the caller already holds, and
// keeps the reverse index that says which expansions a change invalidates.
//
// # API
//
//   - HasRefs(raw) / Parse(raw): does a raw value hold references, and which
//     (Ref.Target gives the address). A secret whose raw value holds one is
//     read-only in the expanded view.
//   - Expander{Lookup: l}.Expand(addr): the expanded value of the secret at
//     addr (a fresh buffer the caller wipes), whether it has references, and
//     Deps: every address the result depended on, transitively. Lookup
//     answers Found (raw value + skipMultilineEncoding), Missing, Denied or
//     Unknown for any (env, folder, key) of the project; a Lookup that also
//     implements Releaser gets every entry back after the call to wipe it.
//   - ExpandValue(addr, raw, skipMultiline): the same for a value that is not
//     the one stored at addr (an imported secret, expanded by the server in
//     its import's environment and path).
//   - Deps: Set(secret, result.Deps) after each expansion; after a change to
//     X, Dependents(X) are the secrets (any folder, any environment) whose
//     expanded values and files must be recomputed.
//
// Errors never hold a value: a *RefError names the secret and the reference
// (errors.Is ErrDenied or ErrUnknown), plus ErrNotFound and ErrLimit.
//
// # Semantics reproduced
//
// Source: Infisical/infisical backend/src/services/secret-v2-bridge/
// secret-reference-fns.ts, expandSecretReferencesFactory. Classic (the
// default) follows commit 58d2a53eca6391d6c0eb35813b9debc21326b3b8, whose
// regex is the one of infisical-api.md §9; Multipass follows commit
// 032da0361c55872822d43a8b900d6f76d5e4379f. Call sites: getSecrets in
// secret-v2-bridge-service.ts (the version importing the factory from
// secret-reference-fns.ts) and fnSecretsV2FromImports in
// secret-import/secret-import-fns.ts at 0384872adc06370c7f800daa6eee172234b6245d.
//
//   - A reference is a match of \$\{([a-zA-Z0-9-_.]+)\} (Multipass adds '@'),
//     leftmost and non-overlapping: "$5", "${", "${}", "${A B}", "${A" are
//     text; in "${${A}}" the reference is "${A}".
//   - Split on ".": one part is a key in the same environment and folder as
//     the value being scanned; otherwise env, folder parts, key, the folder
//     joined like path.join("/", ...) so empty parts vanish ("${dev..K}" is
//     "${dev.K}"). "${.K}" names env "" and "${dev.}" key "": the Lookup
//     answers for those too.
//   - The algorithm is a stack of frames, not a recursive substitution: the
//     secret's raw value is scanned; for each reference occurrence (repeats
//     included) the target is looked up, its raw value is pushed as a new
//     frame (in the target's env and folder) if it holds a reference and the
//     target is not on the path that led here, and every occurrence of the
//     reference text in the whole result is replaced by that raw value.
//     Frames pop last-in first-out. A nested local reference therefore lands
//     in the one result string and can be replaced by an outer frame's
//     same-named reference first: "${prod.P} ${A}" with prod P = "${A}"
//     gives dev's A twice. The package reproduces this, quirks included.
//   - Depth: frames deeper than 10 are not scanned. A chain of 11 hops
//     resolves; in a chain of 12 the 12th reference stays literal.
//   - Cycles: a target already on the path is substituted once more but not
//     scanned again, so SELF = "s${SELF}" expands to "ss${SELF}", and A =
//     "a(${B})", B = "b(${A})" expand A to "a(b(a(${B})))".
//   - Unresolved: a Missing target stays literal. Classic also leaves a
//     reference to an existing but empty secret literal (it tests the value,
//     not existence); Multipass substitutes "".
//   - Denied or Unknown target: the expansion fails with a *RefError, as the
//     server's canExpandValue throws. The server then answers the whole list
//     403 "Failed to expand one or more secret references"; for an imported
//     secret it swallows the error and serves the raw value. The permission
//     check runs for missing targets too, so a Lookup should answer Denied
//     for any address the identity may not read, existing or not.
//   - skipMultilineEncoding (the expanded secret's own flag only): when the
//     raw value holds a reference and the result holds "\n", the result is
//     wrapped in double quotes with each newline written as backslash-n;
//     nothing else is escaped. A value without references is never wrapped.
//   - Multipass only: after the stack empties, if the result holds a
//     reference the pass did not start with, the result is scanned again as
//     a new root (in the secret's own env and folder), up to 10 more times,
//     so "${dev.c.${dev.c.VENDOR}.KEY}" resolves the reference it forms.
//     Cross-project "${@slug.env.KEY}" stays literal (as on a server without
//     cross-project sharing). ExpandValue first checks that the address it
//     expands as may be read (the server's check on the secret itself).
//   - Imports do not take part in resolving references: ${KEY} looks in the
//     folder itself only. An imported secret is expanded in the context of
//     its import's environment and path: the caller passes that address.
//
// Not reproduced (other, diverging backend versions): spaces in key names,
// backslash-escaped dots, a dotted local key tried before env.key
// (issue #5962), "slug::env.KEY" cross-project syntax, resolution of local
// references through imports (also in Infisical's Go rewrite,
// secretsexpansion), and personal overrides (identities have none). Infisical puts no
// bound on an expansion; Limits does (ErrLimit), which only matters for
// values the server itself could not expand in reasonable time or memory.
package refs
