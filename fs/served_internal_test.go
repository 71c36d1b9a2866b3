package fs

import (
	"os"
	"os/exec"
	"testing"
)

// Refusals are kept per process: a second process refused on the same
// name (sed -i beside vim on one mount) must not replace the first one's,
// or the first one's recovery (vim: unlink KEY after its save was refused)
// goes through and deletes the secret in Infisical. In the two-mount soak
// that was every DELETE of the shared key.
func TestRefusalsAreKeptPerProcess(t *testing.T) {
	other := exec.Command("sleep", "10")
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = other.Process.Kill(); _ = other.Wait() })
	self, them := uint32(os.Getpid()), uint32(other.Process.Pid)

	d := &dirNode{}
	d.refuseProcess("KEY", self, false) // a refused save: its unlink comes next
	d.refuseProcess("KEY", them, true)  // another process refused on the same name
	if !d.refusing("KEY", self, opReplace) {
		t.Error("the first process's unlink is no longer refused after another process's refusal")
	}
	if d.refusing("KEY", self, opWrite) {
		t.Error("the first process's re-open is refused: its refusal covers unlinks and creates only")
	}
	if !d.refusing("KEY", them, opWrite) || !d.refusing("KEY", them, opReplace) {
		t.Error("the second process's refusal was lost")
	}
	if d.refusing("OTHER", self, opReplace) || d.refusing("KEY", 1, opReplace) {
		t.Error("a refusal covers another name or another process")
	}
}
