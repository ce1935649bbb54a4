//go:build tools

// Package tools only records which commands of k8s.io/kubernetes this wrapper module builds, so
// that "go mod tidy" keeps their dependencies in go.sum. It is never compiled.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
