// Package deps pins the module's chosen dependencies while the packages that
// use them are being written, so that `go mod tidy` keeps them. Remove an
// import here once a real package imports it.
package deps

import (
	_ "github.com/BurntSushi/toml"
	_ "github.com/awnumar/memguard"
	_ "github.com/fsnotify/fsnotify"
	_ "github.com/hanwen/go-fuse/v2/fs"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "golang.org/x/sys/unix"
)
