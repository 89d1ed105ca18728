# shellcheck shell=bash
# --with workloads: pods that run. Sourced by tests/sim/cluster.
#
# sim-kubelet (tests/sim/kubelet, a workspace member) stands in for the kubelet and container
# runtime, the one piece that cannot be real here: a pod on a kwok node whose every container has
# one of the images below runs as that program, one OS process per container, on its own pod IP
# in 127.0.0.0/8, with the environment, probes, restarts and SIGTERM-then-SIGKILL a kubelet gives
# it. kwok goes on playing every other pod (its pod stages skip these). The reference services
# are built from examples/services with cargo, like the runner.

# The images sim-kubelet runs, as `repository=binary` (the binary is the image's entrypoint).
WORKLOAD_SERVICES=(customer-api auth orders payments notifications)

build_workloads() {
  command -v cargo >/dev/null || die "cargo is not installed (needed to build sim-kubelet and the services)"
  say "building sim-kubelet and the reference services (cargo, workspace target directory)"
  local root log
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
  log=$(mktemp)
  (cd "$root" && cargo build --locked --quiet -p sim-kubelet -p platform-services --bins) >"$log" 2>&1 ||
    { tail -n 30 "$log" | sed 's/^/  /' >&2; rm -f "$log"; die "building sim-kubelet or the services failed"; }
  rm -f "$log"
  WORKLOADS_TARGET=$(cd "$root" && cargo metadata --format-version 1 --no-deps 2>/dev/null | jq -r .target_directory)/debug
  [ -x "$WORKLOADS_TARGET/sim-kubelet" ] || die "cargo built no $WORKLOADS_TARGET/sim-kubelet"
}

# The jq expression kwok's pod stages use to leave sim-kubelet's pods alone: true when every
# container's image (registry prefixes and tag dropped, as sim-kubelet reads them) is one of its.
workload_pod_expression() {
  local repos="" s
  for s in "${WORKLOAD_SERVICES[@]}"; do repos+="\"platformctl/$s\","; done
  printf '[(.spec.containers // [])[], (.spec.initContainers // [])[] | .image | split("@")[0] | sub(":[^:/]*$"; "") | ltrimstr("docker.io/") | ltrimstr("localhost/") | ltrimstr("library/") | IN(%s)] | all' "${repos%,}"
}

# kwok's own fast pod stages (from its module at the pinned version), each with one more
# requirement: not a pod sim-kubelet runs.
kwok_pod_stages() {
  local dir=$1 f expr
  expr=$(workload_pod_expression)
  for f in pod-ready pod-complete pod-delete; do
    printf '\n---\n'
    EXPR=$expr awk '
      BEGIN { expr = ENVIRON["EXPR"] }
      { print }
      /^    matchExpressions:$/ && !done {
        gsub(/\x27/, "\x27\x27", expr)
        printf "    - key: \x27%s\x27\n      operator: NotIn\n      values: [\x27true\x27]\n", expr
        done = 1
      }' "$dir/kustomize/stage/pod/fast/$f.yaml"
  done
}

start_workloads() {
  local dir=$STATE/kubelet bin=$STATE/bin s images="" node nodes=""
  mkdir -p "$dir" "$bin"
  # Copies, so a cargo build during the run does not replace what runs (pid_of goes by the
  # executable).
  cp "$WORKLOADS_TARGET/sim-kubelet" "$bin/sim-kubelet"
  for s in "${WORKLOAD_SERVICES[@]}"; do
    cp "$WORKLOADS_TARGET/$s" "$bin/$s"
    images+="\"platformctl/$s\": {\"entrypoint\": [\"$bin/$s\"], \"env\": {\"BIND_ADDRESS\": \"\$(POD_IP)\"}, \"versionEnv\": \"PLATFORM_VERSION\"},"
  done
  for node in "${NODES[@]}"; do nodes+="\"$node\","; done
  cat >"$dir/config.json" <<JSON
{
  "nodes": [${nodes%,}],
  "images": {${images%,}},
  "state": "$dir",
  "apiHost": "127.0.0.1",
  "apiPort": $API_PORT,
  "hostIp": "127.0.0.1",
  "resolver": "127.253.0.53"
}
JSON
  write_kubeconfig "$STATE/sim-kubelet.kubeconfig" sim-kubelet
  start sim-kubelet --kubeconfig "$STATE/sim-kubelet.kubeconfig" --config "$dir/config.json"
  # Running once it has written the controllers' hosts file.
  wait_until sim-kubelet "cluster names in $dir/hosts/cluster" test -s "$dir/hosts/cluster"
}

# The cluster names for a controller the harness runs out of cluster: with workloads, its
# /etc/hosts is sim-kubelet's cluster file, in a private mount namespace (as root; CI is).
cluster_names_prefix() {
  local hosts=$STATE/kubelet/hosts/cluster
  if [ -f "$hosts" ]; then
    printf '%s\n' unshare -m sh -c 'mount --bind "$0" /etc/hosts && exec "$@"' "$hosts"
  fi
}
