package csi

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"sigs.k8s.io/yaml"

	"github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/infisicalfs/infisicalfs/infisical/infisicaltest"
)

const manifestDir = "../deploy/kubernetes/csi"

// manifests decodes every document of every file in manifestDir into its
// Kubernetes API type, strictly: an unknown or misspelt field, a duplicate
// key or a wrong type fails, as `kubectl apply --validate=strict` would.
type manifests struct {
	driver   []*storagev1.CSIDriver
	ds       []*appsv1.DaemonSet
	pods     map[string]*corev1.Pod // by file
	secrets  map[string]*corev1.Secret
	accounts []*corev1.ServiceAccount
}

func loadManifests(t *testing.T) manifests {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(manifestDir, "*.yaml"))
	if err != nil || len(files) < 4 {
		t.Fatalf("manifests: %v, %v", files, err)
	}
	m := manifests{pods: map[string]*corev1.Pod{}, secrets: map[string]*corev1.Secret{}}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte("\t")) {
			t.Errorf("%s: tabs in YAML", f)
		}
		for i, doc := range bytes.Split(b, []byte("\n---\n")) {
			var tm struct{ APIVersion, Kind string }
			if err := yaml.Unmarshal(doc, &tm); err != nil {
				t.Fatalf("%s doc %d: %v", f, i, err)
			}
			var obj any
			switch tm.APIVersion + " " + tm.Kind {
			case "storage.k8s.io/v1 CSIDriver":
				o := &storagev1.CSIDriver{}
				m.driver, obj = append(m.driver, o), o
			case "apps/v1 DaemonSet":
				o := &appsv1.DaemonSet{}
				m.ds, obj = append(m.ds, o), o
			case "v1 Pod":
				o := &corev1.Pod{}
				m.pods[filepath.Base(f)], obj = o, o
			case "v1 Secret":
				o := &corev1.Secret{}
				m.secrets[filepath.Base(f)], obj = o, o
			case "v1 ServiceAccount":
				o := &corev1.ServiceAccount{}
				m.accounts, obj = append(m.accounts, o), o
			case "v1 Namespace":
				obj = &corev1.Namespace{}
			default:
				t.Fatalf("%s doc %d: unexpected %s %s", f, i, tm.APIVersion, tm.Kind)
			}
			if err := yaml.UnmarshalStrict(doc, obj); err != nil {
				t.Fatalf("%s doc %d (%s): %v", f, i, tm.Kind, err)
			}
		}
	}
	return m
}

func TestManifestCSIDriver(t *testing.T) {
	m := loadManifests(t)
	if len(m.driver) != 1 {
		t.Fatalf("%d CSIDriver objects", len(m.driver))
	}
	d := m.driver[0]
	s := d.Spec
	switch {
	case d.Name != DriverName:
		t.Errorf("name %q, want %q", d.Name, DriverName)
	case s.AttachRequired == nil || *s.AttachRequired:
		t.Error("attachRequired must be false: there is no controller to attach")
	case s.PodInfoOnMount == nil || !*s.PodInfoOnMount:
		t.Error("podInfoOnMount must be true")
	case !slices.Equal(s.VolumeLifecycleModes, []storagev1.VolumeLifecycleMode{storagev1.VolumeLifecycleEphemeral}):
		t.Errorf("volumeLifecycleModes %v, want [Ephemeral]", s.VolumeLifecycleModes)
	case len(s.TokenRequests) != 1 || s.TokenRequests[0].Audience != DefaultAudience:
		t.Errorf("tokenRequests %v, want one for audience %q", s.TokenRequests, DefaultAudience)
	case s.RequiresRepublish == nil || !*s.RequiresRepublish:
		t.Error("requiresRepublish must be true: republish brings fresh tokens")
	case s.FSGroupPolicy == nil || *s.FSGroupPolicy != storagev1.FileFSGroupPolicy:
		t.Error("fsGroupPolicy must be File, so that kubelet hands over fsGroup (VOLUME_MOUNT_GROUP)")
	}
}

func flagValue(args []string, name string) string {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v
		}
	}
	return ""
}

func TestManifestDaemonSet(t *testing.T) {
	m := loadManifests(t)
	if len(m.ds) != 1 {
		t.Fatalf("%d DaemonSets", len(m.ds))
	}
	spec := m.ds[0].Spec.Template.Spec
	vols := map[string]*corev1.HostPathVolumeSource{}
	for _, v := range spec.Volumes {
		vols[v.Name] = v.HostPath
	}
	hostOf := func(c corev1.Container, mountPath string) (string, *corev1.VolumeMount) {
		for i, vm := range c.VolumeMounts {
			if vm.MountPath == mountPath && vols[vm.Name] != nil {
				return vols[vm.Name].Path, &c.VolumeMounts[i]
			}
		}
		t.Fatalf("container %s mounts no hostPath at %s", c.Name, mountPath)
		return "", nil
	}
	byName := map[string]corev1.Container{}
	for _, c := range spec.Containers {
		byName[c.Name] = c
	}
	drv, reg, probe := byName["infisicalfs"], byName["node-driver-registrar"], byName["liveness-probe"]
	if drv.Name == "" || reg.Name == "" || probe.Name == "" {
		t.Fatalf("containers %v: want infisicalfs, node-driver-registrar, liveness-probe", spec.Containers)
	}
	if !slices.Equal(drv.Command, []string{"infisicalfs", "csi"}) {
		t.Errorf("driver command %v", drv.Command)
	}
	if drv.SecurityContext == nil || drv.SecurityContext.Privileged == nil || !*drv.SecurityContext.Privileged {
		t.Error("the driver must be privileged: it mounts FUSE and propagates mounts to the node")
	}
	// The socket: the driver's endpoint is in the plugin dir the registrar
	// registers with kubelet under its host path.
	ep, err := socketPath(flagValue(drv.Args, "endpoint"))
	if err != nil {
		t.Fatal(err)
	}
	plugHost, _ := hostOf(drv, filepath.Dir(ep))
	if got := flagValue(reg.Args, "kubelet-registration-path"); got != filepath.Join(plugHost, filepath.Base(ep)) {
		t.Errorf("registrar registers %q, the driver listens on host path %q", got, filepath.Join(plugHost, filepath.Base(ep)))
	}
	for _, c := range []corev1.Container{reg, probe} {
		if flagValue(c.Args, "csi-address") != ep {
			t.Errorf("%s dials %q, the driver listens on %q", c.Name, flagValue(c.Args, "csi-address"), ep)
		}
		if h, _ := hostOf(c, filepath.Dir(ep)); h != plugHost {
			t.Errorf("%s sees plugin dir %q, want %q", c.Name, h, plugHost)
		}
	}
	if h, _ := hostOf(reg, "/registration"); h != "/var/lib/kubelet/plugins_registry" {
		t.Errorf("registration dir %q", h)
	}
	root := flagValue(drv.Args, "target-root")
	h, vm := hostOf(drv, root)
	if h != root || vm.MountPropagation == nil || *vm.MountPropagation != corev1.MountPropagationBidirectional {
		t.Errorf("target root %q: host path %q, propagation %v; want the same path, Bidirectional", root, h, vm.MountPropagation)
	}
	if h, _ := hostOf(drv, "/dev/fuse"); h != "/dev/fuse" {
		t.Errorf("/dev/fuse from %q", h)
	}
	if flagValue(drv.Args, "node-id") != "$(NODE_NAME)" || !slices.ContainsFunc(drv.Env, func(e corev1.EnvVar) bool {
		return e.Name == "NODE_NAME" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "spec.nodeName"
	}) {
		t.Error("--node-id must be the node's name from the downward API")
	}
	lp := drv.LivenessProbe
	if lp == nil || lp.HTTPGet == nil || lp.HTTPGet.Path != "/healthz" || lp.HTTPGet.Port.String() != "healthz" ||
		len(drv.Ports) != 1 || fmt.Sprint(drv.Ports[0].ContainerPort) != flagValue(probe.Args, "health-port") {
		t.Error("the driver's liveness probe must reach the liveness-probe sidecar's /healthz port")
	}
}

// TestManifestExampleAppUnprivileged checks the example pods ask for no
// privilege, and that their volume attributes are what the driver accepts.
func TestManifestExampleAppUnprivileged(t *testing.T) {
	m := loadManifests(t)
	if len(m.pods) != 2 {
		t.Fatalf("%d example pods", len(m.pods))
	}
	for file, p := range m.pods {
		t.Run(file, func(t *testing.T) {
			in, ctr := podVolumeInput(t, p, m.secrets[file])
			sc := p.Spec.SecurityContext
			if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser == 0 || sc.FSGroup == nil {
				t.Fatal("the pod must run as a non-root user with an fsGroup")
			}
			if p.Spec.HostNetwork || p.Spec.HostPID || p.Spec.HostIPC {
				t.Error("host namespaces")
			}
			for _, v := range p.Spec.Volumes {
				if v.HostPath != nil {
					t.Errorf("hostPath volume %s", v.Name)
				}
			}
			cs := ctr.SecurityContext
			if cs == nil || (cs.Privileged != nil && *cs.Privileged) || cs.AllowPrivilegeEscalation == nil || *cs.AllowPrivilegeEscalation ||
				cs.Capabilities == nil || len(cs.Capabilities.Add) > 0 || !slices.Contains(cs.Capabilities.Drop, "ALL") {
				t.Error("the container must be unprivileged: no escalation, all capabilities dropped, none added")
			}
			for _, vm := range ctr.VolumeMounts {
				if vm.MountPropagation != nil && *vm.MountPropagation != corev1.MountPropagationNone {
					t.Errorf("mount propagation %v", *vm.MountPropagation)
				}
			}
			if strings.Contains(file, "kubernetes-auth") {
				in.Attrs[ctxSATokens] = tokens(DefaultAudience, "example-token")
				in.Attrs[ctxSAName] = p.Spec.ServiceAccountName
			}
			v, err := ParseVolume(in)
			if err != nil {
				t.Fatalf("the driver refuses the example's volume: %v", err)
			}
			// Who may read: the pod's user through its fsGroup.
			if !v.View.ReadOnly || v.View.GID != uint32(*sc.FSGroup) || v.View.FileMode&0o040 == 0 {
				t.Fatalf("view %+v: the pod's group %d cannot read", v.View, *sc.FSGroup)
			}
		})
	}
}

// podVolumeInput is what kubelet would send NodePublishVolume for the
// pod's one CSI volume, and the container that mounts it.
func podVolumeInput(t *testing.T, p *corev1.Pod, secret *corev1.Secret) (PublishInput, corev1.Container) {
	t.Helper()
	var vol *corev1.CSIVolumeSource
	var name string
	for _, v := range p.Spec.Volumes {
		if v.CSI != nil {
			vol, name = v.CSI, v.Name
		}
	}
	if vol == nil || vol.Driver != DriverName {
		t.Fatalf("no %s volume", DriverName)
	}
	var ctr corev1.Container
	for _, c := range p.Spec.Containers {
		for _, vm := range c.VolumeMounts {
			if vm.Name == name {
				ctr = c
			}
		}
	}
	attrs := map[string]string{ctxPodName: p.Name, ctxPodNS: p.Namespace, ctxPodUID: "uid-1", ctxEphemeral: "true"}
	for k, v := range vol.VolumeAttributes {
		attrs[k] = v
	}
	in := PublishInput{VolumeID: "csi-example", Target: "/t", Attrs: attrs, ReadOnly: vol.ReadOnly != nil && *vol.ReadOnly}
	if fg := p.Spec.SecurityContext.FSGroup; fg != nil {
		in.MountGroup = fmt.Sprint(*fg)
	}
	if vol.NodePublishSecretRef != nil {
		if secret == nil || secret.Name != vol.NodePublishSecretRef.Name {
			t.Fatalf("nodePublishSecretRef %q: no such Secret beside the pod", vol.NodePublishSecretRef.Name)
		}
		in.Secrets = secret.StringData
	}
	return in, ctr
}

// TestManifestExampleAppReads publishes the example pod's volume as kubelet
// would, against infisicaltest holding the example's project, and reads the
// file its command reads as the pod's user and groups: no root, no
// capability.
func TestManifestExampleAppReads(t *testing.T) {
	w := newWorld(t)
	m := loadManifests(t)
	p := m.pods["example-app.yaml"]
	in, ctr := podVolumeInput(t, p, m.secrets["example-app.yaml"])
	w.srv.AddIdentity(in.Secrets["clientId"], in.Secrets["clientSecret"])
	w.srv.Grant(in.Secrets["clientId"], w.shop, infisicaltest.PermRead)
	w.srv.SetSecret(w.shop, "dev", "/", "DATABASE_URL", "postgres://example")

	tgt := w.target("example")
	req := &csi.NodePublishVolumeRequest{VolumeId: in.VolumeID, TargetPath: tgt, VolumeCapability: mountCap(in.MountGroup),
		VolumeContext: in.Attrs, Secrets: in.Secrets, Readonly: in.ReadOnly}
	if _, err := w.c.node.NodePublishVolume(testCtx(t), req); err != nil {
		t.Fatal(err)
	}
	// A non-root user must be able to reach the target, as kubelet's
	// directories let a pod's bind mount be reached.
	for d := filepath.Dir(tgt); len(d) > len(os.TempDir()); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// The container's command reads mountPath/DATABASE_URL: here target/DATABASE_URL.
	if !strings.Contains(strings.Join(ctr.Command, " "), ctr.VolumeMounts[0].MountPath+"/DATABASE_URL") {
		t.Fatalf("the example's command %q does not read DATABASE_URL", ctr.Command)
	}
	uid, gid := uint32(*p.Spec.SecurityContext.RunAsUser), uint32(*p.Spec.SecurityContext.RunAsGroup)
	fsGroup := uint32(*p.Spec.SecurityContext.FSGroup)
	cat := func(gid uint32, groups []uint32) (string, error) {
		cmd := exec.Command("cat", filepath.Join(tgt, "DATABASE_URL"))
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid, Groups: groups}}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := cat(gid, []uint32{fsGroup}); err != nil || out != "postgres://example" {
		t.Fatalf("the pod's user reads %q, %v", out, err)
	}
	// Without the fsGroup (as primary or supplementary group) the same
	// user is refused: the mode, not luck, lets the pod in.
	if out, err := cat(12345, nil); err == nil {
		t.Fatalf("a user outside the pod's group read %q", out)
	}
	if _, err := w.c.node.NodeUnpublishVolume(testCtx(t), &csi.NodeUnpublishVolumeRequest{VolumeId: in.VolumeID, TargetPath: tgt}); err != nil {
		t.Fatal(err)
	}
}
