// Package csi is the Kubernetes CSI node plugin: it serves the Identity and
// Node gRPC services for ephemeral inline volumes and turns each published
// volume into an infisicalfs view at the pod's target path, sharing one
// source (vault and sync loop) between volumes of the same identity and
// scope.
//
// Layers, each with its own tests:
//   - attrs.go: a NodePublishVolumeRequest becomes a Volume (scope, view
//     options, credentials), or an error naming the bad attribute;
//   - registry.go: refcounted sources keyed by (credentials fingerprint,
//     URL, project, env, path), so N pods of one scope cost one sync loop;
//   - mounter.go: the Mounter the services call, on top of the registry;
//   - node.go, identity.go: the gRPC services, idempotency and error codes;
//   - mountinfo.go: finding (and, at start, removing) our own mounts;
//   - driver.go: the listener and the start-up cleanup.
package csi
