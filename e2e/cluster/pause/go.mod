// The harness's pod sandbox (pause) image binary: a static, dependency-free Go program.
module warden.dev/cluster/pause

go 1.26.0
