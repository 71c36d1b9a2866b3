package csi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/infisicalfs/infisicalfs/infisical"
)

// node is the CSI Node service for ephemeral inline volumes.
//
// Idempotency: published remembers what each target holds, so a repeated
// NodePublishVolume with the same volume and options is OK without a
// second mount, and one with different ones is AlreadyExists. busy keeps two
// calls off one target or volume at once: the second gets Aborted, which
// kubelet retries, as the spec asks.
//
// Lock order: node.mu only; never held across Mounter calls.
type node struct {
	csi.UnimplementedNodeServer
	nodeID  string
	mounter Mounter
	log     *slog.Logger

	mu        sync.Mutex
	published map[string]*Volume // by target path
	busy      map[string]bool    // target paths and volume ids with a call running
}

func newNode(nodeID string, m Mounter, log *slog.Logger) *node {
	return &node{nodeID: nodeID, mounter: m, log: log, published: map[string]*Volume{}, busy: map[string]bool{}}
}

func (n *node) lock(keys ...string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, k := range keys {
		if n.busy[k] {
			return status.Errorf(codes.Aborted, "an operation on %s is already running", k)
		}
	}
	for _, k := range keys {
		n.busy[k] = true
	}
	return nil
}

func (n *node) unlock(keys ...string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, k := range keys {
		delete(n.busy, k)
	}
}

// publishInput extracts what ParseVolume reads from the request.
func publishInput(req *csi.NodePublishVolumeRequest) PublishInput {
	in := PublishInput{
		VolumeID: req.GetVolumeId(), Target: req.GetTargetPath(),
		Attrs: req.GetVolumeContext(), Secrets: req.GetSecrets(), ReadOnly: req.GetReadonly(),
	}
	c := req.GetVolumeCapability()
	switch {
	case c.GetBlock() != nil:
		in.IsBlock = true
	case c.GetMount() != nil:
		in.MountGroup = c.GetMount().GetVolumeMountGroup()
		in.MountFlags = c.GetMount().GetMountFlags()
		in.FsType = c.GetMount().GetFsType()
	default:
		in.Unspecified = true
	}
	return in
}

func (n *node) NodePublishVolume(ctx context.Context, req *csi.NodePublishVolumeRequest) (*csi.NodePublishVolumeResponse, error) {
	switch {
	case req.GetVolumeId() == "":
		return nil, status.Error(codes.InvalidArgument, "volume_id is required")
	case req.GetTargetPath() == "":
		return nil, status.Error(codes.InvalidArgument, "target_path is required")
	case req.GetVolumeCapability() == nil:
		return nil, status.Error(codes.InvalidArgument, "volume_capability is required")
	case req.GetStagingTargetPath() != "":
		return nil, status.Error(codes.InvalidArgument, "staging_target_path given, but this driver has no NodeStageVolume")
	}
	in := publishInput(req)
	if in.Unspecified {
		return nil, status.Error(codes.InvalidArgument, "volume_capability needs access type mount")
	}
	v, err := ParseVolume(in)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	if err := n.lock(v.Target, "volume "+v.ID); err != nil {
		return nil, err
	}
	defer n.unlock(v.Target, "volume "+v.ID)

	n.mu.Lock()
	old := n.published[v.Target]
	n.mu.Unlock()
	if old != nil {
		if !old.same(v) {
			return nil, status.Errorf(codes.AlreadyExists, "target %s already holds volume %s with other options", v.Target, old.ID)
		}
		// A republish (requiresRepublish) brings a fresh pod token.
		if err := n.mounter.Publish(ctx, v); err != nil {
			return nil, publishStatus(err)
		}
		return &csi.NodePublishVolumeResponse{}, nil
	}
	if err := n.mounter.Publish(ctx, v); err != nil {
		n.log.Warn("publish failed", "volume", v.ID, "pod", v.Pod, "target", v.Target, "err", err)
		return nil, publishStatus(err)
	}
	n.mu.Lock()
	n.published[v.Target] = v
	n.mu.Unlock()
	return &csi.NodePublishVolumeResponse{}, nil
}

// publishStatus maps a publish failure to the gRPC code kubelet and people
// read: the identity or scope being wrong is not an internal error.
func publishStatus(err error) error {
	code := codes.Internal
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		code = codes.DeadlineExceeded
	case errors.Is(err, infisical.ErrNotFound), errors.Is(err, ErrScopeNotFound):
		code = codes.NotFound
	case errors.Is(err, infisical.ErrAuthFailed), errors.Is(err, infisical.ErrTokenExpired):
		code = codes.Unauthenticated
	case errors.Is(err, infisical.ErrPermissionDenied):
		code = codes.PermissionDenied
	case errors.Is(err, infisical.ErrUnreachable), errors.Is(err, infisical.ErrServer), errors.Is(err, infisical.ErrRateLimited):
		code = codes.Unavailable
	case errors.Is(err, ErrUnsupported), errors.Is(err, ErrBadSettings):
		code = codes.InvalidArgument
	}
	return status.Error(code, err.Error())
}

// ErrScopeNotFound is a project or environment the identity cannot see.
var ErrScopeNotFound = errors.New("project or environment not found")

// ErrBadSettings is a volume whose attributes passed parsing but not the
// source's own checks (a template that does not parse, say).
var ErrBadSettings = errors.New("volume settings refused")

// ErrUnsupported is an attribute this build cannot serve.
var ErrUnsupported = errors.New("not supported by this build")

func (n *node) NodeUnpublishVolume(ctx context.Context, req *csi.NodeUnpublishVolumeRequest) (*csi.NodeUnpublishVolumeResponse, error) {
	switch {
	case req.GetVolumeId() == "":
		return nil, status.Error(codes.InvalidArgument, "volume_id is required")
	case req.GetTargetPath() == "":
		return nil, status.Error(codes.InvalidArgument, "target_path is required")
	}
	target := req.GetTargetPath()
	if err := n.lock(target, "volume "+req.GetVolumeId()); err != nil {
		return nil, err
	}
	defer n.unlock(target, "volume "+req.GetVolumeId())
	if err := n.mounter.Unpublish(ctx, target); err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	n.mu.Lock()
	delete(n.published, target)
	n.mu.Unlock()
	// The spec: the plugin deletes the directory it created. Unknown or
	// already gone is success (kubelet retries unpublish until OK).
	if err := os.Remove(target); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, status.Error(codes.Internal, fmt.Sprintf("remove target %s: %v", target, err))
	}
	return &csi.NodeUnpublishVolumeResponse{}, nil
}

// NodeGetCapabilities: VOLUME_MOUNT_GROUP makes kubelet hand over the pod's
// fsGroup instead of chown-ing the files itself (FUSE refuses chown).
func (n *node) NodeGetCapabilities(context.Context, *csi.NodeGetCapabilitiesRequest) (*csi.NodeGetCapabilitiesResponse, error) {
	return &csi.NodeGetCapabilitiesResponse{Capabilities: []*csi.NodeServiceCapability{{
		Type: &csi.NodeServiceCapability_Rpc{Rpc: &csi.NodeServiceCapability_RPC{Type: csi.NodeServiceCapability_RPC_VOLUME_MOUNT_GROUP}},
	}}}, nil
}

func (n *node) NodeGetInfo(context.Context, *csi.NodeGetInfoRequest) (*csi.NodeGetInfoResponse, error) {
	return &csi.NodeGetInfoResponse{NodeId: n.nodeID}, nil
}
