//go:build tools

// Package tools pins the CNCF distribution registry's main package so `go mod tidy`
// keeps its dependency graph in go.sum. The harness serves images to the kubelet from it.
package tools

import _ "github.com/distribution/distribution/v3/cmd/registry"
