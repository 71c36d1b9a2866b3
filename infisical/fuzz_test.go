package infisical

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func FuzzValidateKey(f *testing.F) {
	for _, s := range []string{"DB_URL", "a:b", " x", "x\u00a0", "\ufeffk", "ключ", strings.Repeat("k", 501), "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		if ValidateKey(key) != nil {
			return
		}
		r0, _ := utf8.DecodeRuneInString(key)
		r1, _ := utf8.DecodeLastRuneInString(key)
		if key == "" || len(key) > MaxKeySize || strings.ContainsAny(key, ":/\x00") || !utf8.ValidString(key) ||
			unicode.IsSpace(r0) || unicode.IsSpace(r1) || strings.TrimSpace(key) != key {
			t.Fatalf("accepted %q", key)
		}
	})
}

func FuzzCleanPath(f *testing.F) {
	for _, s := range []string{"", "/", "a/b", "/a//b/", "/a.b", "//x_y-1//"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		out, err := CleanPath(p)
		if err != nil {
			return
		}
		if !strings.HasPrefix(out, "/") || strings.Contains(out, "//") || out != "/" && strings.HasSuffix(out, "/") {
			t.Fatalf("CleanPath(%q) = %q", p, out)
		}
		for _, seg := range strings.Split(out[1:], "/") {
			if out != "/" && ValidateFolderName(seg) != nil {
				t.Fatalf("CleanPath(%q) = %q with bad segment %q", p, out, seg)
			}
		}
		if again, err := CleanPath(out); err != nil || again != out {
			t.Fatalf("not idempotent: %q → %q → %q %v", p, out, again, err)
		}
	})
}

// FuzzRedactBody: whatever the body, no secretValue survives redaction,
// and neither does a sensitive string planted anywhere in it.
func FuzzRedactBody(f *testing.F) {
	f.Add([]byte(`{"secret":{"secretValue":"v"}}`), "hunter2")
	f.Add([]byte(`[{"secretValue":"a"},{"x":{"secretValue":{"y":1}}}]`), "abc")
	f.Add([]byte(`{"secret\u0056alue":"v","message":"hunter2"}`), "hunter2")
	f.Add([]byte(`not json hunter2`), "hunter2")
	f.Fuzz(func(t *testing.T, body []byte, plant string) {
		out := redactBodyScrubbed(body, [][]byte{[]byte(plant)})
		if !json.Valid(out) {
			if !bytes.HasPrefix(out, []byte("[unparsable body")) {
				t.Fatalf("invalid output %q", out)
			}
			return
		}
		var v any
		if err := json.Unmarshal(out, &v); err != nil {
			t.Fatal(err)
		}
		var walk func(any)
		walk = func(v any) {
			switch x := v.(type) {
			case map[string]any:
				for k, y := range x {
					if sensitiveFields[k] && y != redacted {
						t.Fatalf("%s survived in %s", k, out)
					}
					walk(y)
				}
			case []any:
				for _, y := range x {
					walk(y)
				}
			case string:
				// A plant made of "[redacted]" pieces can re-form around the
				// replacement; real values cannot be chosen to do that.
				if len(plant) >= 3 && utf8.ValidString(plant) && strings.Contains(x, plant) &&
					!strings.ContainsAny(plant, "[]") {
					t.Fatalf("planted %q survived in %s", plant, out)
				}
			}
		}
		walk(v)
	})
}

func FuzzParseErrorBody(f *testing.F) {
	f.Add([]byte(`{"reqId":"req-abc","statusCode":404,"message":"Secret not found","error":"NotFound"}`))
	f.Add([]byte(`{"statusCode":422,"message":[{"message":"Required","path":["a",0]}],"error":"ValidationFailure"}`))
	f.Add([]byte(`{"message":"line1\nline2\u2028x","reqId":"bad id\n"}`))
	f.Add([]byte(`<html>`))
	f.Fuzz(func(t *testing.T, body []byte) {
		p := parseErrorBody(body)
		for _, s := range []string{p.Message, p.Code, p.ReqID} {
			if strings.ContainsAny(s, "\n\r\u2028\u2029") || !utf8.ValidString(s) || len(s) > 404 {
				t.Fatalf("unsafe field %q", s)
			}
		}
		e := &APIError{Op: "op", Status: 400, Code: p.Code, Message: p.Message, ReqID: p.ReqID, Err: ErrValidation}
		if strings.ContainsAny(e.Error(), "\n\r") {
			t.Fatalf("multi-line error %q", e.Error())
		}
	})
}

// FuzzValueRoundTrip: the hand-written encoder and decoder of values agree
// with encoding/json for every valid UTF-8 value.
func FuzzValueRoundTrip(f *testing.F) {
	for _, s := range []string{"", "plain", "q\"b\\s", "\x00\x1f\t\n\r", "é€\u2028", "<>&"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, v []byte) {
		if !utf8.Valid(v) {
			return
		}
		enc := appendJSONString(nil, v)
		var s string
		if err := json.Unmarshal(enc, &s); err != nil || s != string(v) {
			t.Fatalf("encoded %q as %s: %q %v", v, enc, s, err)
		}
		std, _ := json.Marshal(string(v))
		var rv rawValue
		if err := json.Unmarshal(std, &rv); err != nil || !bytes.Equal(rv, v) {
			t.Fatalf("decoded %s as %q, want %q (%v)", std, rv, v, err)
		}
		body, err := writeBody(writeMeta{ProjectID: "p", Environment: "e", SecretPath: "/", Type: "shared"}, v)
		if err != nil || !json.Valid(body) {
			t.Fatalf("body %s %v", body, err)
		}
	})
}
