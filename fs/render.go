package fs

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/infisicalfs/infisicalfs/vault"
)

// The renderers of the folder views. Each takes the entries of one vault
// snapshot, wipes their values, and returns bytes the caller wipes.

// RenderEnv renders secrets as dotenv lines KEY='value'. Single quotes make
// `set -a; . ./.env` take every byte literally (no expansion, no command
// substitution, newlines kept); a quote inside is written '\”. Keys that
// are not shell names are left out, since sourcing them would fail; a
// comment at the end names them, so the file says what it lacks.
func RenderEnv(es []vault.Entry) []byte {
	sort.Slice(es, func(i, j int) bool { return es[i].Key < es[j].Key })
	var b bytes.Buffer
	var left []string
	for _, e := range es {
		if shellName(e.Key) {
			b.WriteString(e.Key)
			b.WriteString("='")
			for _, c := range e.Value.Bytes() {
				if c == '\'' {
					b.WriteString(`'\''`)
				} else {
					b.WriteByte(c)
				}
			}
			b.WriteString("'\n")
		} else {
			left = append(left, e.Key)
		}
		e.Value.Wipe()
	}
	if len(left) > 0 {
		// Names are not secret; a newline in one must not end the comment.
		quoted := make([]string, len(left))
		for i, k := range left {
			q, _ := json.Marshal(k)
			quoted[i] = string(q)
		}
		fmt.Fprintf(&b, "# infisicalfs: left out, not shell variable names (read them from .json or .yaml): %s\n", strings.Join(quoted, " "))
	}
	return b.Bytes()
}

// RenderJSON renders secrets as one JSON object, keys sorted. Values that are
// not valid UTF-8 have the bad bytes replaced (JSON strings are Unicode).
func RenderJSON(es []vault.Entry) []byte {
	sort.Slice(es, func(i, j int) bool { return es[i].Key < es[j].Key })
	var b bytes.Buffer
	b.WriteByte('{')
	for i, e := range es {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(e.Key)
		b.Write(k)
		b.WriteByte(':')
		v, _ := json.Marshal(string(e.Value.Bytes()))
		b.Write(v)
		clear(v)
		e.Value.Wipe()
	}
	b.WriteString("}\n")
	return b.Bytes()
}

// RenderYAML renders secrets as one YAML mapping, keys sorted, every key and
// value a double-quoted scalar: no plain scalar means no YAML 1.1 surprises
// (`no`, `on`, `0x1F`, `~`, a leading `-` or `#`), and escapes carry every
// control character. A value that is not valid UTF-8 cannot be a YAML
// string, so it is written as `!!binary` base64, which parsers decode to
// the exact bytes. An empty folder is `{}`.
func RenderYAML(es []vault.Entry) []byte {
	sort.Slice(es, func(i, j int) bool { return es[i].Key < es[j].Key })
	var b bytes.Buffer
	if len(es) == 0 {
		b.WriteString("{}\n")
	}
	for _, e := range es {
		// Keys come from JSON, so they are UTF-8; quoting covers the rest.
		yamlQuote(&b, []byte(e.Key))
		b.WriteString(": ")
		v := e.Value.Bytes()
		if utf8.Valid(v) {
			yamlQuote(&b, v)
		} else {
			b.WriteString("!!binary ")
			n := base64.StdEncoding.EncodedLen(len(v))
			enc := make([]byte, n)
			base64.StdEncoding.Encode(enc, v)
			b.Write(enc)
			clear(enc)
		}
		b.WriteByte('\n')
		e.Value.Wipe()
	}
	return b.Bytes()
}

// yamlQuote writes s as a YAML double-quoted scalar. Printable characters
// stand as they are; `"` and `\` are escaped, and so is everything a YAML
// parser could fold, drop or refuse: C0 and C1 controls, DEL, the line and
// paragraph separators, the byte order mark. Invalid UTF-8 becomes U+FFFD.
func yamlQuote(b *bytes.Buffer, s []byte) {
	b.WriteByte('"')
	for len(s) > 0 {
		r, size := utf8.DecodeRune(s)
		s = s[size:]
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f):
			fmt.Fprintf(b, `\x%02x`, r)
		case r == 0x2028 || r == 0x2029 || r == 0xfeff:
			fmt.Fprintf(b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
}
