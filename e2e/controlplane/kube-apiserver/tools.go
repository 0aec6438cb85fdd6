//go:build tools

// Package tools pins the kube-apiserver main package so `go mod tidy` keeps its
// dependency graph in go.sum.
package tools

import _ "k8s.io/kubernetes/cmd/kube-apiserver"

import _ "k8s.io/kubernetes/cmd/kubectl"
