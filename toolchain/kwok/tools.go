//go:build tools

// Package tools only records the command this wrapper module builds, so that "go mod tidy" keeps
// its dependencies. Never compiled.
package tools

import (
	_ "sigs.k8s.io/kwok/cmd/kwok"
)
