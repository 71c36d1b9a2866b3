package infisical

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/infisicalfs/infisicalfs/infisical/infisicaltest"
)

// TestCanaryNeverLeaks plants unique values and a unique client secret,
// drives every error path with Debug logging on, and checks that neither
// appears in any log line or error.
func TestCanaryNeverLeaks(t *testing.T) {
	const canary = "CANARY-7f3a9c1e-value"
	const secretCanary = "CANARY-client-secret-b41d"
	ctx := context.Background()
	var errs []error
	collect := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}

	e := newEnv(t)
	e.srv.AddIdentity("canary-id", secretCanary)
	e.srv.Grant("canary-id", e.proj, infisicaltest.PermReadWrite)
	c := e.client(t, "canary-id", secretCanary)
	r := e.ref("/", "K")
	val := []byte(canary)

	// Successes first: values travel through logs at Debug.
	_, err := c.CreateSecret(ctx, r, val)
	collect(err)
	_, err = c.ListSecrets(ctx, ListOptions{ProjectID: e.proj, Environment: "dev", Recursive: true})
	collect(err)
	_, err = c.GetSecret(ctx, r)
	collect(err)
	errs = nil // only error paths count from here on; successes must have been nil
	if err != nil {
		t.Fatal(err)
	}

	_, err = c.CreateSecret(ctx, r, val) // exists
	collect(err)
	_, err = c.CreateSecret(ctx, e.ref("/", "R"), []byte("${MISSING} "+canary)) // bad reference
	collect(err)
	_, err = c.CreateSecret(ctx, r, append([]byte(canary), make([]byte, MaxValueSize)...)) // too large
	collect(err)
	_, err = c.CreateSecret(ctx, r, append([]byte(canary), 0xff)) // invalid UTF-8
	collect(err)
	e.srv.FailNext(1, 500)
	_, err = c.UpdateSecret(ctx, r, Update{Value: val}) // 500 on a write
	collect(err)
	e.srv.SetApprovalRequired(e.proj, "dev", true)
	_, err = c.UpsertSecret(ctx, r, val, true) // approval
	collect(err)
	e.srv.SetApprovalRequired(e.proj, "dev", false)
	e.srv.Grant("canary-id", e.proj, infisicaltest.PermRead)
	_, err = c.UpsertSecret(ctx, r, val, false) // permission denied
	collect(err)
	e.srv.ExpireAllTokens()
	_, err = c.UpdateSecret(ctx, r, Update{Value: val}) // re-login, then 403
	collect(err)
	e.srv.RevokeAllTokens()
	e.srv.AddIdentity("canary-id", "rotated")
	_, err = c.UpdateSecret(ctx, r, Update{Value: val}) // login fails: the canary secret is sent
	collect(err)
	collect(c.BeginCycle(ctx)) // backoff answer
	e.c.hc.CloseIdleConnections()
	e.srv.SetOutage(true)
	c.SetCredentials("canary-id", secretCanary)
	_, err = c.UpsertSecret(ctx, r, val, true) // unreachable
	collect(err)
	e.srv.SetOutage(false)

	// A server that echoes the value in its message and details.
	sc, _ := stubClient(t, func(w http.ResponseWriter, r *http.Request) {
		writeStub(w, 400, fmt.Sprintf(`{"statusCode":400,"error":"BadRequest","message":"bad value %s here",`+
			`"details":{"secretValue":%q}}`, canary, canary))
	})
	sc.log = e.c.log
	_, err = sc.CreateSecret(ctx, Ref{ProjectID: "p", Environment: "dev", Path: "/", Key: "K"}, []byte(" "+canary+"\n"))
	collect(err)
	sc2, _ := stubClient(t, func(w http.ResponseWriter, r *http.Request) {
		writeStub(w, 422, fmt.Sprintf(`{"statusCode":422,"error":"ValidationFailure","message":[{"message":"got %s","path":["secretValue"],"received":%q}]}`, canary, canary))
	})
	sc2.log = slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	_, err = sc2.UpdateSecret(ctx, Ref{ProjectID: "p", Environment: "dev", Path: "/", Key: "K"}, Update{Value: []byte(canary)})
	collect(err)

	if len(errs) < 12 {
		t.Fatalf("only %d error paths driven: %v", len(errs), errs)
	}
	for _, err := range errs {
		for _, s := range []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err)} {
			if strings.Contains(s, canary) || strings.Contains(s, secretCanary) {
				t.Errorf("error leaks a canary: %s", s)
			}
		}
	}
	logs := e.logs.String()
	if !strings.Contains(logs, "status=400") || !strings.Contains(logs, "status=403") {
		t.Fatalf("logs miss the error requests:\n%s", logs)
	}
	for _, s := range []string{canary, secretCanary, "Bearer"} {
		if strings.Contains(logs, s) {
			t.Errorf("logs leak %q:\n%s", s, logs)
		}
	}
}
