package infisical

import (
	"fmt"
	"strings"
	"testing"
)

// TestDecodeListing: a long listing comes back whole and in order, and a
// listing cut off midway still hands what was decoded to the caller (who
// wipes it).
func TestDecodeListing(t *testing.T) {
	for _, n := range []int{0, 1, 4095, 4096, 4097, 9000} {
		var b strings.Builder
		b.WriteString(`{"secrets":[`)
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"id":"id-%d","secretKey":"K_%d","secretValue":"v-%d","version":%d,"type":"shared"}`, i, i, i, i+1)
		}
		b.WriteString(`],"imports":[]}`)
		var res ListResult
		if err := decodeListing(strings.NewReader(b.String()), "/", &res); err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
		if len(res.Secrets) != n {
			t.Fatalf("n=%d: got %d secrets", n, len(res.Secrets))
		}
		for i, s := range res.Secrets {
			if s.Key != fmt.Sprintf("K_%d", i) || string(s.Value) != fmt.Sprintf("v-%d", i) || s.Version != i+1 || s.Path != "/" {
				t.Fatalf("n=%d: secret %d = %s %q v%d %s", n, i, s.Key, s.Value, s.Version, s.Path)
			}
		}
	}
	// Cut off after 5000 secrets: an error, and the 5000 still in res.
	var b strings.Builder
	b.WriteString(`{"secrets":[`)
	for i := range 5000 {
		fmt.Fprintf(&b, `{"id":"id-%d","secretKey":"K_%d","secretValue":"v","version":1},`, i, i)
	}
	var res ListResult
	if err := decodeListing(strings.NewReader(b.String()), "/", &res); err == nil {
		t.Fatal("a truncated listing decoded without error")
	}
	if len(res.Secrets) != 5000 {
		t.Fatalf("after the error res holds %d secrets, want the 5000 decoded", len(res.Secrets))
	}
}
