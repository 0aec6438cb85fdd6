//go:build tools

// Package tools pins the helm main package so `go mod tidy` keeps its
// dependency graph in go.sum.
package tools

import _ "helm.sh/helm/v3/cmd/helm"
