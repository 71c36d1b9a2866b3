package config

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// Flags after the mount point and -o options, as mount(8) and rclone take
// them: `mount MNT --read-only -o refresh_interval=30s,env=dev`.
func TestInterspersedFlagsAndMountOptions(t *testing.T) {
	fs, f := NewFlagSet("mount")
	fs.SetOutput(new(bytes.Buffer))
	if err := fs.Parse([]string{"/mnt/x", "--read-only", "-o", "refresh_interval=30s,env=dev,allow_other,nonempty,_netdev,x-systemd.automount", "-o", "env=prod,uid=7"}); err != nil {
		t.Fatal(err)
	}
	if fs.NArg() != 1 || fs.Arg(0) != "/mnt/x" {
		t.Fatalf("args %v, want the mount point alone", fs.Args())
	}
	c, err := Resolve(fs, f, envMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	if !c.ReadOnly || c.RefreshInterval.Duration != 30*time.Second || !c.AllowOther || !c.AllowNonEmpty || c.UID != 7 {
		t.Errorf("options not applied: %+v", c)
	}
	if strings.Join(c.Envs, ",") != "dev,prod" {
		t.Errorf("env from two -o: %v, want dev,prod", c.Envs)
	}
	// A flag after -o wins, as a later flag does.
	fs, f = NewFlagSet("mount")
	if err := fs.Parse([]string{"-o", "ro,refresh_interval=30s", "--refresh-interval=5s", "--read-only=false", "M"}); err != nil {
		t.Fatal(err)
	}
	if c, err = Resolve(fs, f, envMap(nil)); err != nil || c.ReadOnly || c.RefreshInterval.Duration != 5*time.Second {
		t.Errorf("later flags over -o: read-only %v, interval %s, %v", c.ReadOnly, c.RefreshInterval.Duration, err)
	}
}

func TestMountOptionErrors(t *testing.T) {
	for opts, want := range map[string]string{
		"refresh_interval=abc": "refresh-interval",
		"frobnicate=1":         `unknown mount option "frobnicate"`,
		"client_secret=s3cr3t": "credentials are never mount options",
		"url":                  "needs a value",
		"=x":                   "has no name",
		"options=ro":           "unknown mount option",
	} {
		fs, f := NewFlagSet("mount")
		fs.SetOutput(new(bytes.Buffer))
		if err := fs.Parse([]string{"-o", opts, "M"}); err != nil {
			t.Fatalf("-o %s: parse: %v", opts, err)
		}
		_, err := Resolve(fs, f, envMap(nil))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("-o %s: %v, want %q", opts, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("-o %s: the error repeats the value: %v", opts, err)
		}
	}
}

// --help prints each default once (it printed "(default 60s) (default 1m0s)").
func TestHelpDefaultsOnce(t *testing.T) {
	fs, _ := NewFlagSet("mount")
	var help bytes.Buffer
	fs.SetOutput(&help)
	fs.PrintDefaults()
	for _, line := range strings.Split(help.String(), "\n") {
		if strings.Count(line, "(default") > 1 {
			t.Errorf("default twice: %s", line)
		}
	}
	if !strings.Contains(help.String(), "--refresh-interval duration") || !strings.Contains(help.String(), "(default 1m)") {
		t.Errorf("refresh interval help:\n%s", help.String())
	}
}

// --help-config names every key, with its flag where it has one.
func TestKeyHelpNamesEveryKey(t *testing.T) {
	var b bytes.Buffer
	WriteKeyHelp(&b)
	for _, k := range Keys {
		if !strings.Contains(b.String(), "  "+k.Name+" ") && !strings.Contains(b.String(), "  "+k.Name+"\n") {
			t.Errorf("--help-config lacks %s", k.Name)
		}
	}
	if !strings.Contains(b.String(), "--refresh-interval: how often") {
		t.Errorf("help-config:\n%s", b.String())
	}
}

func FuzzParseMountOptions(f *testing.F) {
	for _, s := range []string{"ro,env=dev", "refresh_interval=30s,,x-a=b", "=", "a=b=c", ",,,"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		opts, err := ParseMountOptions(s)
		if err != nil {
			return
		}
		for _, o := range opts {
			if o.Name == "" || strings.ContainsAny(o.Name, ",_") || strings.Contains(o.Name, "=") {
				t.Fatalf("%q gave option %+v", s, o)
			}
		}
		// Applying never panics, whatever the names.
		fs, _ := NewFlagSet("mount")
		_ = ApplyMountOptions(fs, s)
	})
}

// The unknown-key error points where an installed user can look (it named
// testdata/config/full.toml, which only a source checkout has).
func TestUnknownKeyPointsToHelpConfig(t *testing.T) {
	_, _, err := parse([]byte("refresh_intervall = \"30s\"\n"))
	if err == nil || !strings.Contains(err.Error(), "refresh_intervall") || !strings.Contains(err.Error(), "infisicalfs mount --help-config") || strings.Contains(err.Error(), "testdata") {
		t.Errorf("unknown key error: %v", err)
	}
}

// The shipped starting config loads and validates once a secret is given,
// and runs no hooks or templates (full.toml's are not for copying).
func TestExampleConfig(t *testing.T) {
	c, _, err := Load("../testdata/config/example.toml")
	if err != nil {
		t.Fatal(err)
	}
	c.ClientSecret = "s"
	if err := c.Validate(); err != nil {
		t.Errorf("example.toml does not validate: %v", err)
	}
	if len(c.OnChange) > 0 || len(c.Templates) > 0 || !c.ReadOnly {
		t.Errorf("example.toml: hooks %d, templates %d, read-only %v", len(c.OnChange), len(c.Templates), c.ReadOnly)
	}
}
