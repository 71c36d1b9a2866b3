package infisical

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// rawValue decodes a JSON string straight into bytes. The common case (no
// escapes) costs one copy; encoding/json's own path would go through a
// string, which cannot be wiped.
type rawValue []byte

func (v *rawValue) UnmarshalJSON(data []byte) error {
	if bytes.Equal(data, []byte("null")) {
		*v = nil
		return nil
	}
	if len(data) < 2 || data[0] != '"' || data[len(data)-1] != '"' {
		return errors.New("secretValue is not a string")
	}
	inner := data[1 : len(data)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		*v = append(make([]byte, 0, len(inner)), inner...)
		return nil
	}
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("secretValue: %w", err)
	}
	*v = []byte(s)
	return nil
}

// wireSecret is the secret object of contract §3.1, the fields we use.
type wireSecret struct {
	ID                string   `json:"id"`
	Key               string   `json:"secretKey"`
	Value             rawValue `json:"secretValue"`
	Version           int      `json:"version"`
	Environment       string   `json:"environment"`
	SecretPath        string   `json:"secretPath"`
	Type              string   `json:"type"`
	CreatedAt         string   `json:"createdAt"`
	UpdatedAt         string   `json:"updatedAt"`
	SecretValueHidden bool     `json:"secretValueHidden"`
	Comment           string   `json:"secretComment"`
	SkipMultiline     bool     `json:"skipMultilineEncoding"`
	Tags              []struct {
		Slug string `json:"slug"`
	} `json:"tags"`
	Metadata []struct {
		Key   string `json:"key"`
		Value string `json:"value"`
	} `json:"secretMetadata"`
}

func (w *wireSecret) secret(defaultPath string) Secret {
	s := Secret{
		ID: w.ID, Key: w.Key, Value: []byte(w.Value), Version: w.Version,
		Environment: w.Environment, Path: w.SecretPath, Type: w.Type,
		CreatedAt: parseTime(w.CreatedAt), UpdatedAt: parseTime(w.UpdatedAt),
		ValueHidden: w.SecretValueHidden,
		Comment:     w.Comment, SkipMultilineEncoding: w.SkipMultiline,
	}
	for _, t := range w.Tags {
		s.Tags = append(s.Tags, t.Slug)
	}
	for _, m := range w.Metadata {
		s.Metadata = append(s.Metadata, Metadata{Key: m.Key, Value: m.Value})
	}
	if s.Path == "" {
		s.Path = defaultPath
	}
	if s.ValueHidden {
		clear(s.Value)
		s.Value = nil
	}
	return s
}

func parseTime(s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}
	}
	return t
}

// writeBody encodes meta (a struct without the value) and, when value is
// not nil, appends "secretValue": the value is escaped once, straight into
// the body, which the caller wipes after the request.
func writeBody(meta any, value []byte) ([]byte, error) {
	head, err := json.Marshal(meta)
	if err != nil {
		return nil, err
	}
	if value == nil {
		return head, nil
	}
	if len(head) < 2 || head[len(head)-1] != '}' {
		return nil, errors.New("request metadata is not a JSON object")
	}
	buf := make([]byte, 0, len(head)+len(value)+len(value)/8+32)
	buf = append(buf, head[:len(head)-1]...)
	if len(head) > 2 {
		buf = append(buf, ',')
	}
	buf = append(buf, `"secretValue":`...)
	buf = appendJSONString(buf, value)
	return append(buf, '}'), nil
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends v as a JSON string. v must be valid UTF-8.
func appendJSONString(dst, v []byte) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(v); i++ {
		b := v[i]
		if b >= 0x20 && b != '"' && b != '\\' {
			continue
		}
		dst = append(dst, v[start:i]...)
		switch b {
		case '"', '\\':
			dst = append(dst, '\\', b)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
		}
		start = i + 1
	}
	dst = append(dst, v[start:]...)
	return append(dst, '"')
}

// checkValue refuses a value the API cannot carry unchanged.
func checkValue(op string, value []byte) error {
	if len(value) > MaxValueSize {
		return &APIError{Op: op, Err: ErrValueTooLarge,
			Message: fmt.Sprintf("value is %d bytes, over the limit of %d", len(value), MaxValueSize),
			Remedy:  "Infisical accepts request bodies up to 1 MiB"}
	}
	if !utf8.Valid(value) {
		return &APIError{Op: op, Err: ErrValidation,
			Message: "value is not valid UTF-8; Infisical stores text and would alter it"}
	}
	return nil
}
