package vault

import "fmt"

// Value is a decrypted secret handed out for serving or pushing. Wipe it as
// soon as it is no longer needed; printing it never shows the plaintext.
type Value struct{ b []byte }

// Bytes is the plaintext; valid until Wipe.
func (v *Value) Bytes() []byte {
	if v == nil {
		return nil
	}
	return v.b
}

// Wipe zeroes the plaintext. Safe to call twice and on nil.
func (v *Value) Wipe() {
	if v == nil {
		return
	}
	clear(v.b)
	v.b = nil
}

func (v *Value) String() string   { return "[redacted]" }
func (v *Value) GoString() string { return "vault.Value{[redacted]}" }

// Format keeps %v, %+v, %#v, %s, %q and %x from printing the plaintext.
func (v *Value) Format(f fmt.State, verb rune) { fmt.Fprint(f, "[redacted]") }
