package fs

import gofs "github.com/hanwen/go-fuse/v2/fs"

// One assertion per go-fuse interface a node implements: a typo in a method
// signature would otherwise silently fall back to go-fuse's default.
var (
	_ gofs.NodeGetattrer      = (*dirNode)(nil)
	_ gofs.NodeSetattrer      = (*dirNode)(nil)
	_ gofs.NodeLookuper       = (*dirNode)(nil)
	_ gofs.NodeOpendirHandler = (*dirNode)(nil)
	_ gofs.NodeCreater        = (*dirNode)(nil)
	_ gofs.NodeUnlinker       = (*dirNode)(nil)
	_ gofs.NodeMkdirer        = (*dirNode)(nil)
	_ gofs.NodeRmdirer        = (*dirNode)(nil)
	_ gofs.NodeRenamer        = (*dirNode)(nil)
	_ gofs.NodeSetxattrer     = (*dirNode)(nil)
	_ gofs.NodeRemovexattrer  = (*dirNode)(nil)

	_ gofs.FileReaddirenter = (*dirHandle)(nil)
	_ gofs.FileSeekdirer    = (*dirHandle)(nil)
	_ gofs.FileReleasedirer = (*dirHandle)(nil)
	_ gofs.FileFsyncdirer   = (*dirHandle)(nil)

	_ gofs.NodeGetattrer     = (*fileNode)(nil)
	_ gofs.NodeSetattrer     = (*fileNode)(nil)
	_ gofs.NodeOpener        = (*fileNode)(nil)
	_ gofs.NodeReader        = (*fileNode)(nil)
	_ gofs.NodeWriter        = (*fileNode)(nil)
	_ gofs.NodeFlusher       = (*fileNode)(nil)
	_ gofs.NodeFsyncer       = (*fileNode)(nil)
	_ gofs.NodeReleaser      = (*fileNode)(nil)
	_ gofs.NodeSetxattrer    = (*fileNode)(nil)
	_ gofs.NodeGetxattrer    = (*fileNode)(nil)
	_ gofs.NodeRemovexattrer = (*fileNode)(nil)
	_ gofs.NodeOnForgetter   = (*fileNode)(nil)
	_ gofs.NodeListxattrer   = (*fileNode)(nil)

	_ gofs.NodeGetattrer     = (*viewNode)(nil)
	_ gofs.NodeSetattrer     = (*viewNode)(nil)
	_ gofs.NodeOpener        = (*viewNode)(nil)
	_ gofs.NodeReader        = (*viewNode)(nil)
	_ gofs.NodeFlusher       = (*viewNode)(nil)
	_ gofs.NodeReleaser      = (*viewNode)(nil)
	_ gofs.NodeSetxattrer    = (*viewNode)(nil)
	_ gofs.NodeRemovexattrer = (*viewNode)(nil)

	_ gofs.NodeGetattrer      = (*tmplDir)(nil)
	_ gofs.NodeLookuper       = (*tmplDir)(nil)
	_ gofs.NodeOpendirHandler = (*tmplDir)(nil)
	_ gofs.NodeCreater        = (*tmplDir)(nil)
	_ gofs.NodeMkdirer        = (*tmplDir)(nil)
	_ gofs.NodeUnlinker       = (*tmplDir)(nil)
	_ gofs.NodeRmdirer        = (*tmplDir)(nil)

	_ gofs.NodeGetattrer = (*tmplFile)(nil)
	_ gofs.NodeSetattrer = (*tmplFile)(nil)
	_ gofs.NodeOpener    = (*tmplFile)(nil)
	_ gofs.NodeReader    = (*tmplFile)(nil)
	_ gofs.NodeFlusher   = (*tmplFile)(nil)
	_ gofs.NodeReleaser  = (*tmplFile)(nil)
)

// The history (history.go).
var (
	_ gofs.NodeGetattrer = (*histDir)(nil)
	_ gofs.NodeLookuper  = (*histDir)(nil)
	_ gofs.NodeReaddirer = (*histDir)(nil)

	_ gofs.NodeGetattrer = (*versionNode)(nil)
	_ gofs.NodeSetattrer = (*versionNode)(nil)
	_ gofs.NodeOpener    = (*versionNode)(nil)
	_ gofs.NodeReader    = (*versionNode)(nil)
	_ gofs.NodeFlusher   = (*versionNode)(nil)
	_ gofs.NodeReleaser  = (*versionNode)(nil)
)
