//go:build tools

// Package tools pins the main packages of the node and the remaining control-plane
// components so `go mod tidy` keeps their dependency graph in go.sum. Same
// k8s.io/kubernetes version as e2e/controlplane/kube-apiserver (build.sh checks).
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
