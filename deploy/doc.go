// Package deploy holds the files for running infisicalfs outside a shell:
// the mount(8) helper, a systemd unit, a Dockerfile, and Kubernetes and
// compose examples (see README.md). Its Go tests exercise the mount helper.
package deploy
