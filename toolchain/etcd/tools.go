//go:build tools

// Package tools only records the command this wrapper module builds (etcd's main package is the
// root of go.etcd.io/etcd/server/v3), so that "go mod tidy" keeps its dependencies. Never compiled.
package tools

import (
	_ "go.etcd.io/etcd/server/v3"
)
