package fs_test

import (
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/infisicalfs/infisicalfs/infisical/infisicaltest"
)

// seedWorld is a corpus of references: nested, cross-folder,
// cross-environment, missing, cyclic, self-referencing, deeper than
// Infisical's depth limit, multi-line with skipMultilineEncoding, and
// imported.
func seedWorld(srv *infisicaltest.Server, pid string) {
	set := func(env, path, key, v string) { srv.SetSecret(pid, env, path, key, v) }
	set("dev", "/", "HOST", "db.dev")
	set("dev", "/", "USER", "app")
	set("dev", "/", "PASS", "s3cr3t-"+canaryKey)
	set("dev", "/", "DSN", "postgres://${USER}:${PASS}@${HOST}/shop")
	set("dev", "/", "NESTED", "[${DSN}]")
	set("dev", "/", "TWICE", "${HOST}+${HOST}+${dev.HOST}")
	set("dev", "/", "MISSING", "x${NOPE}y${dev.nope.K}z${staging.K}")
	set("dev", "/", "SELF", "s${SELF}")
	set("dev", "/", "CYC_A", "a(${CYC_B})")
	set("dev", "/", "CYC_B", "b(${CYC_A})")
	set("dev", "/", "EMPTY", "")
	set("dev", "/", "TO_EMPTY", "<${EMPTY}>")
	set("dev", "/", "NOT_REFS", "$HOME ${ } ${A B} ${ $5 {x}")
	set("dev", "/app", "PORT", "8080")
	set("dev", "/app", "URL", "http://${dev.HOST}:${PORT}/${prod.app.db.NAME}")
	set("dev", "/app/deep", "ALL", "${dev.app.URL}|${dev.DSN}|${prod.TOKEN}")
	set("prod", "/", "TOKEN", "tok-${prod.app.db.NAME}")
	set("prod", "/app/db", "NAME", "shop_prod")
	set("prod", "/", "BACK", "${dev.DSN}")
	set("dev", "/", "MULTI_SRC", "line1\nline2")
	set("dev", "/", "MULTI", "${MULTI_SRC}")
	skip := true
	srv.SetSecretMeta(pid, "dev", "/", "MULTI", infisicaltest.SecretMeta{SkipMultilineEncoding: &skip})
	// A chain of 13 hops: past the depth limit the rest stays literal.
	for i := 0; i < 13; i++ {
		set("dev", "/chain", "C"+string(rune('A'+i)), "${C"+string(rune('A'+i+1))+"}")
	}
	set("dev", "/chain", "CN", "end")
	// Imports: prod's /shared imported into dev's root, expanded in prod.
	set("prod", "/shared", "IMPORTED", "via-${prod.TOKEN}-${LOCAL}")
	set("prod", "/shared", "LOCAL", "shared-local")
	srv.AddImport(pid, "dev", "/", "prod", "/shared")
}

// TestCorpusMatchesServerExpansion compares two independent
// implementations: for every secret of the seeded world, the mounted file's
// bytes equal what infisicaltest answers with expandSecretReferences=true.
func TestCorpusMatchesServerExpansion(t *testing.T) {
	for _, ro := range []bool{false, true} {
		m := mountForTest(t, withSeed(seedWorld), func(c *mountConfig) { c.readOnly = ro })
		c := apiClient(t, m.srv)
		n := 0
		for _, env := range []string{"dev", "prod"} {
			want := serverExpanded(t, c, m.project, env)
			keys := make([]string, 0, len(want))
			for k := range want {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				got := m.readFile(filepath.Join("webshop", env, k))
				if got != want[k] {
					t.Errorf("readOnly=%v %s/%s: mount %q, server %q", ro, env, k, got, want[k])
				}
				n++
			}
		}
		if n < 30 {
			t.Fatalf("compared only %d secrets", n)
		}
		// Spot checks, so that two wrong implementations cannot agree.
		for p, w := range map[string]string{
			"webshop/dev/DSN":      "postgres://app:s3cr3t-" + canaryKey + "@db.dev/shop",
			"webshop/dev/MISSING":  "x${NOPE}y${dev.nope.K}z${staging.K}",
			"webshop/dev/SELF":     "ss${SELF}",
			"webshop/dev/MULTI":    `"line1\nline2"`,
			"webshop/dev/IMPORTED": "via-tok-shop_prod-shared-local",
			"webshop/dev/chain/CA": "${CM}",
			"webshop/prod/BACK":    "postgres://app:s3cr3t-" + canaryKey + "@db.dev/shop",
			"webshop/dev/app/URL":  "http://db.dev:8080/shop_prod",
			"webshop/dev/TO_EMPTY": "<${EMPTY}>",
			"webshop/dev/NOT_REFS": "$HOME ${ } ${A B} ${ $5 {x}",
		} {
			if got := m.readFile(p); got != w {
				t.Errorf("readOnly=%v %s = %q, want %q", ro, p, got, w)
			}
		}
		if strings.Contains(m.logs.String(), canaryKey) {
			t.Error("a value reached the log")
		}
	}
}
