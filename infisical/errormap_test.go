package infisical

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
)

// TestErrorMapping covers answers the test server does not give.
func TestErrorMapping(t *testing.T) {
	ref := Ref{ProjectID: "p", Environment: "dev", Path: "/a", Key: "K"}
	tests := []struct {
		name   string
		status int
		body   string
		want   error
		msg    string
	}{
		{"409", 409, `{"statusCode":409,"error":"Conflict","message":"exists"}`, ErrAlreadyExists, "exists"},
		{"422 zod array", 422, `{"reqId":"req-abcdefghijklmn","statusCode":422,"error":"ValidationFailure",` +
			`"message":[{"code":"custom","message":"Secret name cannot contain colon or forward slash.","path":["secretName"]},` +
			`{"code":"invalid_type","message":"Required","path":["body",0,"secretValue"],"received":"undefined"}]}`,
			ErrValidation, "secretName: Secret name cannot contain colon or forward slash.; body.0.secretValue: Required"},
		{"403 TokenError expired", 403, `{"statusCode":403,"error":"TokenError","message":"Your token has expired. Please re-authenticate."}`,
			ErrTokenExpired, "expired"},
		{"403 TokenError other", 403, `{"statusCode":403,"error":"TokenError","message":"invalid signature"}`,
			ErrAuthFailed, "invalid signature"},
		{"403 ForbiddenError", 403, `{"statusCode":403,"error":"You are not member of this project","message":"You are not allowed to access this resource"}`,
			ErrPermissionDenied, "not allowed"},
		{"410", 410, `{"statusCode":410,"error":"Gone","message":"gone"}`, ErrNotFound, "gone"},
		{"413", 413, `{"statusCode":413,"error":"PayloadTooLarge","message":"Request body is too large"}`, ErrValueTooLarge, "too large"},
		{"HTML 502", 502, `<html><body>Bad Gateway from proxy</body></html>`, ErrServer, "Bad Gateway"},
		{"200 garbage", 200, `{"secret":`, ErrServer, "unreadable answer"},
		{"200 neither secret nor approval", 200, `{}`, ErrServer, "unreadable answer"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			c, _ := stubClient(t, func(w http.ResponseWriter, r *http.Request) {
				calls++
				writeStub(w, tc.status, tc.body)
			})
			_, err := c.GetSecret(context.Background(), ref)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
			var ae *APIError
			errors.As(err, &ae)
			if !strings.Contains(ae.Message, tc.msg) {
				t.Fatalf("message %q lacks %q", ae.Message, tc.msg)
			}
			if strings.ContainsAny(err.Error(), "\n\r<") && tc.status != 502 {
				t.Fatalf("error not one clean line: %q", err)
			}
			if strings.Contains(err.Error(), "<html>") {
				t.Fatalf("raw body in error: %q", err)
			}
			if tc.want == ErrTokenExpired && calls != 2 {
				t.Fatalf("%d calls, want one replay after re-login", calls)
			}
		})
	}
}

func TestAPIErrorShape(t *testing.T) {
	e := &APIError{Op: "get secret", Method: "GET", Route: routeSecret, Status: 404, Code: "NotFound",
		Message: "Secret with name 'K' not found", ReqID: "req-x", Err: ErrNotFound}
	want := "infisical: get secret (GET /api/v4/secrets/{secretName}): not found: 404 NotFound: Secret with name 'K' not found [req-x]"
	if e.Error() != want {
		t.Fatalf("Error()=%q\nwant    %q", e.Error(), want)
	}
	if !errors.Is(e, ErrNotFound) || errors.Is(e, ErrValidation) {
		t.Fatal("Unwrap mismatch")
	}
}

func TestNewSiteURL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"http://h:1", "http://h:1"},
		{"http://h:1/", "http://h:1"},
		{"http://h:1/api", "http://h:1"},
		{"https://h/infisical/api/", "https://h/infisical"},
		{"", ""}, {"ftp://h", ""}, {"h:1", ""}, {"http://u:p@h", ""},
	} {
		c, err := New(Config{SiteURL: tc.in})
		if tc.want == "" {
			if err == nil {
				t.Errorf("%q accepted", tc.in)
			}
			continue
		}
		if err != nil || c.SiteURL() != tc.want {
			t.Errorf("%q → %v %v, want %q", tc.in, c, err, tc.want)
		}
	}
}

func TestValidateKey(t *testing.T) {
	for _, tc := range []struct {
		key string
		ok  bool
	}{
		{"DB_URL", true}, {"db.url", true}, {"1st-key", true}, {"a b", true}, {"ключ", true},
		{"", false}, {"a:b", false}, {"a/b", false}, {" a", false}, {"a\n", false}, {"a\u00a0", false},
		{"\ufeffa", false}, {strings.Repeat("k", 500), true}, {strings.Repeat("k", 501), false}, {"a\x00b", false},
		{"\xff", false},
	} {
		err := ValidateKey(tc.key)
		if (err == nil) != tc.ok {
			t.Errorf("ValidateKey(%q) = %v, want ok=%v", tc.key, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrValidation) {
			t.Errorf("ValidateKey(%q) = %v, not ErrValidation", tc.key, err)
		}
	}
}

func TestCleanPath(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "/"}, {"/", "/"}, {"//", "/"}, {"a", "/a"}, {"/a/b/", "/a/b"}, {"/a//b", "/a/b"}, {"/A-b_9", "/A-b_9"},
		{"/a.b", ""}, {"/a b", ""}, {"/../x", ""}, {"/ä", ""},
	} {
		got, err := CleanPath(tc.in)
		if tc.want == "" {
			if err == nil || !errors.Is(err, ErrValidation) {
				t.Errorf("CleanPath(%q) = %q, %v; want ErrValidation", tc.in, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("CleanPath(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestRedactBody(t *testing.T) {
	in := `{"secret":{"secretKey":"K","secretValue":"hunter2"},"imports":[{"secrets":[{"secretValue":"x\"y"}]}],` +
		`"clientSecret":"cs","n":12345678901234567890}`
	out := string(redactBody([]byte(in)))
	for _, bad := range []string{"hunter2", `x\"y`, `"cs"`} {
		if strings.Contains(out, bad) {
			t.Fatalf("redacted body %s still holds %s", out, bad)
		}
	}
	if !strings.Contains(out, `"secretKey":"K"`) || !strings.Contains(out, "12345678901234567890") {
		t.Fatalf("redaction lost other fields: %s", out)
	}
	if got := string(redactBody([]byte(`secretValue=hunter2`))); strings.Contains(got, "hunter2") {
		t.Fatalf("non-JSON body leaked: %s", got)
	}
}
