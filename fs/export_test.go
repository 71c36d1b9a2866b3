package fs

import (
	"github.com/infisicalfs/infisicalfs/vault"
)

// vaultValue makes a vault.Value holding b, through a throwaway vault:
// values cannot be built outside the vault package.
func vaultValue(b []byte) *vault.Value {
	v, err := vault.New(nil)
	if err != nil {
		panic(err)
	}
	defer v.Destroy()
	a := vault.Addr{Project: "p", Env: "e", Path: "/", Key: "k"}
	if err := v.Set(a, b, vault.Meta{}); err != nil {
		panic(err)
	}
	val, _, err := v.Get(a)
	if err != nil {
		panic(err)
	}
	return val
}
