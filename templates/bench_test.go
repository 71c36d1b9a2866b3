package templates

import (
	"fmt"
	"io"
	"testing"
	"text/template"
)

const benchText = `{{ range listSecrets "p" "dev" "/" }}{{ .Key }}="{{ .Value }}"
{{ end }}`

func benchSource(n int) *fakeSource {
	f := newFake()
	for i := range n {
		f.set("p", "dev", "/", fmt.Sprintf("KEY_%04d", i), fmt.Sprintf("value-%04d-0123456789abcdef", i))
	}
	return f
}

// BenchmarkRender1k renders one template over a folder of 1,000 secrets
// through a Set (recording, wiping, sealing, comparing with the last
// content). Compare with BenchmarkRenderBaseline1k in the same run.
func BenchmarkRender1k(b *testing.B) {
	f := benchSource(1000)
	s, err := New([]Spec{{Path: "x", Text: benchText}})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		f.handed = f.handed[:0]
		if r := s.Render(f, nil); r[0].Err != nil {
			b.Fatal(r[0].Err)
		}
	}
}

// BenchmarkRenderBaseline1k is the same template and Source read, with
// nothing of ours around it: no clone, recording, wiping or sealing.
func BenchmarkRenderBaseline1k(b *testing.B) {
	f := benchSource(1000)
	t := template.Must(template.New("x").Funcs(template.FuncMap{
		"listSecrets": func(p, e, path string, _ ...string) ([]Secret, error) {
			items, err := f.List(p, e, path, false, true)
			secrets := make([]Secret, len(items))
			for i, it := range items {
				secrets[i] = Secret{Key: it.Key, Value: string(it.Value)}
			}
			return secrets, err
		},
	}).Parse(benchText))
	for b.Loop() {
		f.handed = f.handed[:0]
		if err := t.Execute(io.Discard, nil); err != nil {
			b.Fatal(err)
		}
	}
}
