package infisicaltest

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strings"
)

// bufferedWriter holds a whole answer so that ETag and 304 can be decided
// after the handler has run, as @fastify/etag's onSend hook does.
type bufferedWriter struct {
	header      http.Header
	status      int
	wroteHeader bool
	body        bytes.Buffer
}

func (b *bufferedWriter) Header() http.Header { return b.header }

func (b *bufferedWriter) WriteHeader(status int) {
	if b.wroteHeader {
		return
	}
	b.wroteHeader = true
	b.status = status
}

func (b *bufferedWriter) Write(p []byte) (int, error) {
	b.WriteHeader(http.StatusOK)
	return b.body.Write(p)
}

func (b *bufferedWriter) flushTo(w http.ResponseWriter) {
	for k, v := range b.header {
		w.Header()[k] = v
	}
	if b.status == http.StatusNotModified {
		w.WriteHeader(b.status)
		return
	}
	w.WriteHeader(b.status)
	_, _ = w.Write(b.body.Bytes())
}

// applyETag gives a 200 answer a strong ETag (hash of the body) and turns it
// into an empty 304 when the request's If-None-Match names that tag.
func applyETag(b *bufferedWriter, r *http.Request) {
	if b.status != http.StatusOK {
		return
	}
	sum := sha256.Sum256(b.body.Bytes())
	tag := `"` + base64.RawURLEncoding.EncodeToString(sum[:18]) + `"`
	b.header.Set("ETag", tag)
	if etagMatches(r.Header.Get("If-None-Match"), tag) {
		b.status = http.StatusNotModified
		b.body.Reset()
		b.header.Del("Content-Type")
		b.header.Del("Content-Length")
	}
}

func etagMatches(ifNoneMatch, tag string) bool {
	for _, cand := range strings.Split(ifNoneMatch, ",") {
		cand = strings.TrimSpace(cand)
		if cand == tag || cand == "*" {
			return true
		}
	}
	return false
}
