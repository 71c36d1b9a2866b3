package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/yaml"

	"github.com/infisicalfs/infisicalfs/infisical/infisicaltest"
	"github.com/infisicalfs/infisicalfs/internal/testutil"
)

// daemonSetArgs is the infisicalfs container's command and args in the
// shipped DaemonSet, so that the test runs the binary as the cluster would.
func daemonSetArgs(t *testing.T) ([]string, []string) {
	t.Helper()
	b, err := os.ReadFile("../../deploy/kubernetes/csi/daemonset.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var ds appsv1.DaemonSet
	if err := yaml.UnmarshalStrict(b, &ds); err != nil {
		t.Fatal(err)
	}
	for _, c := range ds.Spec.Template.Spec.Containers {
		if c.Name == "infisicalfs" {
			return c.Command, c.Args
		}
	}
	t.Fatal("no infisicalfs container in the DaemonSet")
	return nil, nil
}

// TestCSICommand runs `infisicalfs csi` with the DaemonSet's own flags,
// publishes a volume through its socket, reads it, and stops it with
// SIGTERM: exit 0 and nothing left mounted.
func TestCSICommand(t *testing.T) {
	testutil.RequireFUSE(t)
	srv := infisicaltest.New()
	defer srv.Close()
	pid := srv.AddProject("webshop", "Web Shop")
	id, secret := "csi-cmd-client", "csi-cmd-secret-CANARY"
	srv.AddIdentity(id, secret)
	srv.Grant(id, pid, infisicaltest.PermRead)
	const want = "postgres://CANARY-csi-cmd-value"
	srv.SetSecret(pid, "dev", "/", "DATABASE_URL", want)

	dir := t.TempDir()
	sock := filepath.Join(dir, "csi.sock")
	root := filepath.Join(dir, "pods")
	command, args := daemonSetArgs(t)
	if len(command) != 2 || command[1] != "csi" {
		t.Fatalf("DaemonSet command %v", command)
	}
	for i, a := range args {
		switch {
		case strings.HasPrefix(a, "--endpoint="):
			args[i] = "--endpoint=unix://" + sock
		case strings.HasPrefix(a, "--target-root="):
			args[i] = "--target-root=" + root
		case a == "--node-id=$(NODE_NAME)": // kubelet expands it from the env
			args[i] = "--node-id=node-a"
		}
	}
	cmd := exec.Command(binary, append([]string{"csi"}, args...)...)
	cmd.Env = append(os.Environ(), "INFISICAL_URL="+srv.URL())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopped := false
	defer func() {
		if !stopped {
			cmd.Process.Kill()
			<-exited
		}
	}()

	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ident, node := csi.NewIdentityClient(conn), csi.NewNodeClient(conn)
	deadline := time.Now().Add(10 * time.Second)
	for {
		p, err := ident.Probe(ctx, &csi.ProbeRequest{})
		if err == nil && p.GetReady().GetValue() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no ready Probe: %v\n%s", err, stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if info, err := ident.GetPluginInfo(ctx, &csi.GetPluginInfoRequest{}); err != nil || info.Name != "infisicalfs.io" {
		t.Fatalf("GetPluginInfo %v %v", info, err)
	}
	if ni, err := node.NodeGetInfo(ctx, &csi.NodeGetInfoRequest{}); err != nil || ni.NodeId != "node-a" {
		t.Fatalf("NodeGetInfo %v %v", ni, err)
	}
	target := filepath.Join(root, "uid-1", "volumes", "kubernetes.io~csi", "secrets", "mount")
	_, err = node.NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{
		VolumeId: "csi-1", TargetPath: target, Readonly: true,
		VolumeCapability: &csi.VolumeCapability{
			AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{}},
			AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER},
		},
		VolumeContext: map[string]string{"project": "webshop", "env": "dev", "csi.storage.k8s.io/pod.name": "web"},
		Secrets:       map[string]string{"clientId": id, "clientSecret": secret},
	})
	if err != nil {
		t.Fatalf("publish: %v\n%s", err, stderr.String())
	}
	if got, err := os.ReadFile(filepath.Join(target, "DATABASE_URL")); err != nil || string(got) != want {
		t.Fatalf("DATABASE_URL: %q, %v; want %q", got, err, want)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		stopped = true
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no exit 20 s after SIGTERM")
	}
	if mounted(target) {
		t.Fatal("the volume is still mounted after the driver stopped")
	}
	if strings.Contains(stderr.String(), secret) || strings.Contains(stderr.String(), want) {
		t.Fatalf("the log holds the client secret or a value:\n%s", stderr.String())
	}
	if !strings.Contains(stderr.String(), `"msg":"published"`) {
		t.Fatalf("no json publish line in the log:\n%s", stderr.String())
	}
}
