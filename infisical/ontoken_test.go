package infisical

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"
)

// OnToken sees every new access token, from a login, a per-cycle login
// and a renewal (the token sinks follow it), never an unchanged one; and
// each token it is handed works against the server.
func TestOnTokenFollowsEveryNewToken(t *testing.T) {
	for _, policy := range []TokenPolicy{TokenPerCycle, TokenRenew} {
		t.Run(policy.String(), func(t *testing.T) {
			e := newEnv(t)
			e.srv.SetTokenTTL(time.Hour, 24*time.Hour)
			var mu sync.Mutex
			var seen []string
			c := e.client(t, testID, testSecret, func(cfg *Config) {
				cfg.TokenPolicy = policy
				cfg.OnToken = func(tok []byte) {
					mu.Lock()
					seen = append(seen, string(tok)) // a copy: the client wipes tok after the call
					mu.Unlock()
				}
			})
			ctx := context.Background()
			if err := c.BeginCycle(ctx); err != nil {
				t.Fatal(err)
			}
			if err := c.BeginCycle(ctx); err != nil { // renew: too early, the same token
				t.Fatal(err)
			}
			e.clock.Add(50 * time.Minute) // renew: past two thirds of the TTL
			if err := c.BeginCycle(ctx); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			got := slices.Clone(seen)
			mu.Unlock()
			want := map[TokenPolicy]int{TokenPerCycle: 3, TokenRenew: 2}[policy]
			if len(got) != want || slices.Contains(got, "") {
				t.Fatalf("OnToken saw %d tokens, want %d", len(got), want)
			}
			if got[len(got)-1] != c.currentToken() {
				t.Error("the last token OnToken saw is not the client's")
			}
			if _, err := c.ListProjects(ctx); err != nil {
				t.Errorf("the token handed to OnToken does not work: %v", err)
			}
		})
	}
}
