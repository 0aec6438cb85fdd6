#!/usr/bin/env bash
# After `tsc -p tsconfig.build.json`: make the CLI entry points executable (tsc keeps their
# `#!/usr/bin/env node` line but not the mode) and put the kubectl plugin in <dist>/bin under the
# name kubectl looks for: put <dist>/bin on PATH and `kubectl warden` works and
# `kubectl plugin list` lists it. kubectl does not strip ".js" (the plugin would be `warden.js`),
# hence the link. kubectl_complete-warden is what kubectl (1.26+) runs to complete `kubectl warden`.
set -euo pipefail
dist="${1:-dist}"
chmod 0755 "$dist/cli/kubectl-warden.js" "$dist/cli/warden.js"
mkdir -p "$dist/bin"
ln -sfn ../cli/kubectl-warden.js "$dist/bin/kubectl-warden"
cat >"$dist/bin/kubectl_complete-warden" <<'SH'
#!/usr/bin/env sh
# kubectl runs this with the words after `kubectl warden` to complete them (cobra's __complete protocol).
exec "$(dirname "$0")/kubectl-warden" __complete "$@"
SH
chmod 0755 "$dist/bin/kubectl_complete-warden"
