package csi

import (
	"context"
	"encoding/xml"
	"fmt"
	"go/build"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
)

// sanityBinary finds csi-sanity: $CSI_SANITY, else $(go env GOPATH)/bin,
// else PATH. With CSI_SANITY set (make test sets it) a missing binary
// fails the test rather than skipping it.
func sanityBinary(t *testing.T) string {
	if p := os.Getenv("CSI_SANITY"); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("CSI_SANITY=%s: %v (install it: go install github.com/kubernetes-csi/csi-test/v5/cmd/csi-sanity@v5.6.0, as .ci/run does)", p, err)
		}
		return p
	}
	if p := filepath.Join(build.Default.GOPATH, "bin", "csi-sanity"); fileExists(p) {
		return p
	}
	if p, err := exec.LookPath("csi-sanity"); err == nil {
		return p
	}
	t.Skip("csi-sanity not installed (go install github.com/kubernetes-csi/csi-test/v5/cmd/csi-sanity@v5.6.0)")
	return ""
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// inlineVolumes stands in for kubelet's handling of inline ephemeral
// volumes on csi-sanity's controller endpoint: csi-sanity's node tests
// get their volumes from CreateVolume, and this answers with a new volume
// id whose context is the request's parameters (the attributes file), as
// kubelet turns a pod's volumeAttributes into the volume context. The
// driver itself has no Controller service; only the test has this.
type inlineVolumes struct {
	csi.UnimplementedControllerServer
	n atomic.Int32
}

func (s *inlineVolumes) CreateVolume(_ context.Context, req *csi.CreateVolumeRequest) (*csi.CreateVolumeResponse, error) {
	return &csi.CreateVolumeResponse{Volume: &csi.Volume{
		VolumeId:      fmt.Sprintf("csi-%d-%s", s.n.Add(1), req.GetName()),
		VolumeContext: req.GetParameters(),
	}}, nil
}

// forwardIdentity answers the stand-in endpoint's Identity calls (which
// csi-sanity checks on every endpoint it is given) with the driver's own.
type forwardIdentity struct {
	csi.UnimplementedIdentityServer
	to csi.IdentityClient
}

func (f forwardIdentity) GetPluginInfo(ctx context.Context, r *csi.GetPluginInfoRequest) (*csi.GetPluginInfoResponse, error) {
	return f.to.GetPluginInfo(ctx, r)
}

func (f forwardIdentity) GetPluginCapabilities(ctx context.Context, r *csi.GetPluginCapabilitiesRequest) (*csi.GetPluginCapabilitiesResponse, error) {
	return f.to.GetPluginCapabilities(ctx, r)
}

func (f forwardIdentity) Probe(ctx context.Context, r *csi.ProbeRequest) (*csi.ProbeResponse, error) {
	return f.to.Probe(ctx, r)
}

func (s *inlineVolumes) DeleteVolume(context.Context, *csi.DeleteVolumeRequest) (*csi.DeleteVolumeResponse, error) {
	return &csi.DeleteVolumeResponse{}, nil
}

// TestCSISanity runs the community conformance suite (csi-sanity) against
// the driver with real infisicalfs mounts against infisicaltest. The
// controller suites are skipped: the driver has no Controller service
// (ephemeral inline volumes need none: kubelet calls NodePublishVolume
// directly). csi-sanity skips by itself what the driver's capabilities
// rule out (staging, stats, expansion, health, multi-writer).
func TestCSISanity(t *testing.T) {
	bin := sanityBinary(t)
	w := newWorld(t)
	dir := t.TempDir()

	ctrlSock := filepath.Join(dir, "kubelet-standin.sock")
	ln, err := net.Listen("unix", ctrlSock)
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	csi.RegisterControllerServer(gs, &inlineVolumes{})
	csi.RegisterIdentityServer(gs, forwardIdentity{to: w.c.id})
	go gs.Serve(ln)
	t.Cleanup(gs.Stop)

	secrets := filepath.Join(dir, "secrets.yaml")
	// The test identity's credentials for infisicaltest, as a
	// nodePublishSecretRef would give them.
	if err := os.WriteFile(secrets, []byte("NodePublishVolumeSecret:\n  clientId: cid-1\n  clientSecret: "+canarySecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	junit := filepath.Join(dir, "junit.xml")
	cmd := exec.CommandContext(testCtx(t), bin,
		"-csi.endpoint", "unix://"+w.c.addr,
		"-csi.controllerendpoint", "unix://"+ctrlSock,
		"-csi.mountdir", filepath.Join(dir, "mnt"),
		"-csi.stagingdir", filepath.Join(dir, "stage"),
		"-csi.secrets", secrets,
		"-csi.testvolumeparameters", "testdata/sanity-attributes.yaml",
		"-ginkgo.skip", `\[Controller Server\]|\[GroupController`,
		"-ginkgo.junit-report", junit,
		"-ginkgo.no-color",
	)
	out, err := cmd.CombinedOutput()
	summary := regexp.MustCompile(`(?m)^(Ran \d+ of \d+ Specs.*|(SUCCESS|FAIL)!.*)$`).FindAllString(string(out), -1)
	if err != nil {
		t.Fatalf("csi-sanity failed: %v\n%s", err, out)
	}
	t.Logf("csi-sanity: %s", strings.Join(summary, " "))
	if len(summary) == 0 || !strings.Contains(string(out), "SUCCESS!") {
		t.Fatalf("no success summary in csi-sanity's output:\n%s", out)
	}
	ran, skipped := junitSummary(t, junit)
	if ran < 10 {
		t.Fatalf("only %d specs ran", ran)
	}
	for _, s := range skipped {
		t.Logf("skipped: %s", s)
	}
	// "should remove target path" published a real volume: it logged in
	// and listed the environment on the server.
	if !strings.Contains(w.logs.String(), "msg=published") || w.srv.Count("POST", "/api/v1/auth/universal-auth/login") == 0 || len(listings(w.srv)) == 0 {
		t.Fatalf("no real volume was published during csi-sanity (logins %d, listings %d)", w.srv.Count("POST", "/api/v1/auth/universal-auth/login"), len(listings(w.srv)))
	}
	if ms, _ := ourMounts("/proc/self/mountinfo", dir); len(ms) > 0 {
		t.Fatalf("csi-sanity's volumes left mounted: %v", ms)
	}
	if strings.Contains(string(out), canaryValue) || strings.Contains(w.logs.String(), canarySecret) {
		t.Fatal("a value or the client secret reached csi-sanity's output or the log")
	}
}

// junitSummary reads csi-sanity's JUnit report: how many specs ran, and
// the node-suite specs it skipped with why (the controller suites, skipped
// whole, are not listed one by one).
func junitSummary(t *testing.T, file string) (ran int, skipped []string) {
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Suites []struct {
			Cases []struct {
				Name    string `xml:"name,attr"`
				Status  string `xml:"status,attr"`
				Skipped *struct {
					Message string `xml:"message,attr"`
				} `xml:"skipped"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	for _, s := range rep.Suites {
		for _, c := range s.Cases {
			switch {
			case c.Skipped == nil && c.Status != "skipped":
				ran++
			case strings.Contains(c.Name, "[Controller Server]") || strings.Contains(c.Name, "[GroupController"):
			default:
				msg := ""
				if c.Skipped != nil {
					msg = c.Skipped.Message
				}
				skipped = append(skipped, c.Name+" ("+strings.TrimSpace(msg)+")")
			}
		}
	}
	return ran, skipped
}
