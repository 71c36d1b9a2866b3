package templates

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzRender parses and renders arbitrary template text over secrets whose
// values come from the fuzzer. It must never panic, render the same bytes
// twice, never put a value (of at least minRedact bytes) into an error, and
// wipe every value it was handed.
func FuzzRender(f *testing.F) {
	f.Add(`{{ range listSecrets "p" "dev" "/" }}{{ .Key }}={{ .Value }}{{ end }}`, []byte("hunter2-value"))
	f.Add(`{{ (getSecretByName "p" "dev" "/" "A").Value | printf "%q" }}`, []byte("a\x00b\"c"))
	f.Add(`{{ listSecrets "p" "dev" "/" (getSecretByName "p" "dev" "/" "A").Value }}`, []byte(`{"recursive":`))
	f.Add(`{{ index (getSecretByName "p" "dev" "/sub" "B").Value 3 }}{{ add 1 (minus 2 3) }}`, []byte("xyzzy"))
	f.Add(`{{ range $i, $s := secret "p" "dev" "/" "{\"recursive\": true}" }}{{ $i }}{{ $s.SecretPath }}{{ end }}`, []byte(""))
	f.Add(`{{ dynamic_secret "p" "dev" "/" "x" }}{{ template "t" }}{{ define "t" }}T{{ end }}`, []byte("v"))
	f.Fuzz(func(t *testing.T, text string, data []byte) {
		value := "CANARY:" + string(data)
		src := newFake()
		src.set("p", "dev", "/", "A", value)
		src.set("p", "dev", "/", "C", "other-"+value)
		src.set("p", "dev", "/sub", "B", value+value)
		s, err := New([]Spec{{Path: "f", Text: text}})
		if err != nil {
			return // parse errors come before any value is read
		}
		r1 := s.Render(src, nil)[0]
		var first []byte
		if r1.Err == nil {
			first, _ = s.Content(0)
		}
		r2 := s.Render(src, nil)[0]
		for _, r := range []Result{r1, r2} {
			if r.Err != nil {
				msg := r.Err.Error()
				for _, v := range []string{value, "other-" + value, value + value} {
					if len(v) >= minRedact && strings.Contains(msg, v) {
						t.Fatalf("error holds a value: %q", msg)
					}
				}
			}
		}
		if (r1.Err == nil) != (r2.Err == nil) {
			t.Fatalf("two renders disagree: %v / %v", r1.Err, r2.Err)
		}
		if r1.Err == nil {
			second, err := s.Content(0)
			if err != nil || !bytes.Equal(first, second) || r2.Changed {
				t.Fatalf("second render differs: %v changed=%v", err, r2.Changed)
			}
		}
		if err := src.allWiped(); err != nil {
			t.Fatal(err)
		}
	})
}
