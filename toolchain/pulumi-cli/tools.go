//go:build tools

// Package tools only records that this module builds github.com/pulumi/pulumi/pkg/v3/cmd/pulumi,
// so that `go mod tidy` keeps its dependencies in go.mod/go.sum. It is never compiled.
package tools

import _ "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"
