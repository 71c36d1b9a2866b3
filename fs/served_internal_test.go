package fs

import (
	"fmt"
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

// Reads are remembered per name and thread; readers that exited are swept
// out as the map grows, so a walk by short-lived cats leaves little behind.
func TestReadersArePerNameAndSweptWhenGone(t *testing.T) {
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	self, dead := uint32(os.Getpid()), uint32(gone.Process.Pid)
	d := &dirNode{}
	d.noteReader("KEY", self, 3)
	d.noteReader("KEY", dead, 5)
	d.noteReader("OTHER", self, 9)
	if v, ok := d.readBy("KEY", self); !ok || v != 3 {
		t.Errorf("readBy(KEY, self) = %d, %v; want 3", v, ok)
	}
	if v, ok := d.readBy("OTHER", self); !ok || v != 9 {
		t.Errorf("readBy(OTHER, self) = %d, %v; want 9", v, ok)
	}
	if _, ok := d.readBy("NEW", self); ok {
		t.Error("readBy of a name never read answered")
	}
	for i := 0; i < 200; i++ { // grow past the sweep threshold
		d.noteReader(fmt.Sprintf("K%d", i), dead, 1)
	}
	d.mu.Lock()
	n := len(d.readers)
	_, deadKept := d.readers[readerKey{"KEY", dead}]
	d.mu.Unlock()
	if deadKept || n > 64 {
		t.Errorf("after the sweep: %d readers, the exited one kept: %v", n, deadKept)
	}
	if v, ok := d.readBy("KEY", self); !ok || v != 3 {
		t.Errorf("a live reader was swept: readBy = %d, %v", v, ok)
	}
}
