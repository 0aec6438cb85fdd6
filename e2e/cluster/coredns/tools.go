//go:build tools

// Package tools pins CoreDNS's main package so `go mod tidy` keeps its dependency
// graph in go.sum. The cluster harness runs CoreDNS as a host process on the node IP.
package tools

import _ "github.com/coredns/coredns"
