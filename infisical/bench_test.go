package infisical

import (
	"context"
	"fmt"
	"testing"
)

// BenchmarkRefreshUnchanged is one refresh of an unchanged environment of
// 200 secrets: a recursive list with If-None-Match, answered 304.
func BenchmarkRefreshUnchanged(b *testing.B) {
	e := newEnv(b)
	for i := range 200 {
		e.srv.SetSecret(e.proj, "dev", fmt.Sprintf("/f%d", i%10), fmt.Sprintf("KEY_%d", i), "value")
	}
	ctx := context.Background()
	o := ListOptions{ProjectID: e.proj, Environment: "dev", Recursive: true}
	first, err := e.c.ListSecrets(ctx, o)
	if err != nil {
		b.Fatal(err)
	}
	o.IfNoneMatch = first.ETag
	e.srv.ResetRequests()
	b.ReportAllocs()
	for b.Loop() {
		r, err := e.c.ListSecrets(ctx, o)
		if err != nil || !r.NotModified {
			b.Fatalf("%+v %v", r, err)
		}
	}
	b.ReportMetric(float64(len(e.srv.Requests()))/float64(b.N), "requests/op")
}

// BenchmarkUpdateKnown is one push of a known secret: a single PATCH.
func BenchmarkUpdateKnown(b *testing.B) {
	e := newEnv(b)
	e.srv.SetSecret(e.proj, "dev", "/", "K", "v")
	ctx := context.Background()
	e.login(b)
	val := []byte("a value of moderate length for a push benchmark")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.c.UpsertSecret(ctx, e.ref("/", "K"), val, true); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(e.srv.Requests()))/float64(b.N), "requests/op")
}
