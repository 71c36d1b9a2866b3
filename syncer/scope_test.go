package syncer

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/infisicalfs/infisicalfs/vault"
)

// sortAddrs orders by the String form, as the plain comparison did.
func TestSortAddrsByStringForm(t *testing.T) {
	var as []vault.Addr
	for i := range 500 {
		path := "/"
		if i%3 != 0 {
			path = fmt.Sprintf("/f%d", rand.IntN(7))
		}
		as = append(as, vault.Addr{Project: fmt.Sprintf("p%d", rand.IntN(3)), Env: []string{"dev", "prod"}[rand.IntN(2)], Path: path, Key: fmt.Sprintf("K%d", rand.IntN(50))})
	}
	got := slices.Clone(as)
	sortAddrs(got)
	for i := 1; i < len(got); i++ {
		if got[i-1].String() > got[i].String() {
			t.Fatalf("out of order at %d: %s > %s", i, got[i-1], got[i])
		}
	}
	count := func(s []vault.Addr) map[vault.Addr]int {
		m := map[vault.Addr]int{}
		for _, a := range s {
			m[a]++
		}
		return m
	}
	if fmt.Sprint(count(got)) != fmt.Sprint(count(as)) {
		t.Fatal("sorting lost or duplicated addresses")
	}
}
