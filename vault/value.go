package vault

import "fmt"

// Value is decrypted plaintext handed out by Get or Snapshot. It prints as a
// redacted placeholder under every fmt verb; only Bytes reveals it.
type Value struct {
	b []byte
}

// Bytes returns the plaintext (nil for a nil or wiped Value). It aliases the
// Value's memory: Wipe zeroes it.
func (v *Value) Bytes() []byte {
	if v == nil {
		return nil
	}
	return v.b
}

// Wipe zeroes the plaintext. It is safe to call twice and on nil.
func (v *Value) Wipe() {
	if v == nil {
		return
	}
	clear(v.b)
	v.b = nil
}

// Value receivers, so a dereferenced Value is redacted too.

func (v Value) String() string { return fmt.Sprintf("vault.Value(redacted, %d bytes)", len(v.b)) }

// GoString keeps %#v redacted.
func (v Value) GoString() string { return v.String() }

// Format redacts under every verb (%s, %q, %x, %v, %+v, %#v ...).
func (v Value) Format(f fmt.State, _ rune) { fmt.Fprint(f, v.String()) }

// String redacts the plaintext of a Change.
func (c Change) String() string {
	return fmt.Sprintf("vault.Change{Addr: %s, Meta: %+v, Delete: %t, Value: redacted, %d bytes}", c.Addr, c.Meta, c.Delete, len(c.Value))
}

// GoString keeps %#v redacted.
func (c Change) GoString() string { return c.String() }

// Format redacts under every verb.
func (c Change) Format(f fmt.State, _ rune) { fmt.Fprint(f, c.String()) }

// String describes the vault without any value or name.
func (v *Vault) String() string {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return fmt.Sprintf("vault.Vault{secrets: %d, generation: %d, destroyed: %t}", v.n, v.gen, v.keys == nil)
}

// GoString keeps %#v free of internals.
func (v *Vault) GoString() string { return v.String() }

// Format prints String under every verb.
func (v *Vault) Format(f fmt.State, _ rune) { fmt.Fprint(f, v.String()) }
