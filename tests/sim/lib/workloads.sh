# shellcheck shell=bash
# --with workloads: pods that run. Sourced by tests/sim/cluster.
#
# sim-kubelet (tests/sim/kubelet, a workspace member) stands in for the kubelet and container
# runtime, the one piece that cannot be real here: a pod on a kwok node whose every container has
# one of the images below runs as that program, one OS process per container, in a network
# namespace of its own with its pod IP, with the environment, probes, restarts and
# SIGTERM-then-SIGKILL a kubelet gives it. kwok goes on playing every other pod (its pod stages
# skip these). The reference services are built from examples/services with cargo, like the
# runner.
#
# The pod network: a bridge on this host (psim<port base>) with 10.<n>.0.0/16, n from the port
# base and, when another network on this host (another cluster's bridge) has that /16, the next
# free one (`up` records it in $STATE/pod-net), so clusters side by side never meet; node i's pods get 10.<n>.i.0/24, kwok's own
# status-only pods 10.<n>.250.0/24. Pod IPs cannot be loopback addresses (the API server refuses
# 127.0.0.0/8 in EndpointSlices); these never leave the machine: the bridge is the only link to
# them, pods have no default route, and the host does not forward. Needs root (CI runs as root).
POD_NET_PREFIX=10.$(cat "$STATE/pod-net" 2>/dev/null || echo $((100 + (PORT_BASE / 100) % 150)))
POD_NET_GATEWAY=$POD_NET_PREFIX.255.254

# The first n from the port base's whose 10.<n>.0.0/16 no route of this host touches.
choose_pod_network() {
  local n=$((100 + (PORT_BASE / 100) % 150)) tries
  for tries in $(seq 150); do
    ip -4 route show | grep -q "^10\.$n\." || break
    n=$((100 + (n - 100 + 1) % 150))
    [ "$tries" -lt 150 ] || fail "no free 10.<100..249>.0.0/16 for the pod network: every one is routed on this host"
  done
  echo "$n" >"$STATE/pod-net"
  POD_NET_PREFIX=10.$n
  POD_NET_GATEWAY=$POD_NET_PREFIX.255.254
}
POD_NET_BRIDGE=psim$PORT_BASE

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

# What sim-kubelet runs, one `repository program [path in the image]` line each: the reference
# services, and with --with monitoring its images (tests/sim/lib/monitoring.sh). The run's
# options are in $STATE/with.
workload_images() {
  local s
  for s in "${WORKLOAD_SERVICES[@]}"; do printf 'platformctl/%s %s\n' "$s" "$STATE/bin/$s"; done
  if running_with monitoring; then monitoring_images; fi
}

# Images whose own entrypoint is not here, one `repository program` line each: sim-kubelet runs
# a container of one only when its command names the program, with this host's own. `up`'s git
# server (gitops.local) runs `/bin/sh -c '… git daemon …'` in Argo CD's image; Argo CD's own
# pods (args only) stay kwok's.
workload_programs() {
  printf '%s\n' 'quay.io/argoproj/argocd /bin/sh'
}

# The jq expression kwok's pod stages use to leave sim-kubelet's pods alone: true when every
# container is one it runs (Config::runnable): its image (registry prefixes and tag dropped, as
# sim-kubelet reads them) is one of workload_images, or it is one of workload_programs' and its
# command names the program.
workload_pod_expression() {
  local repos="" pairs="" repo program _
  while read -r repo _; do repos+="\"$repo\","; done < <(workload_images)
  while read -r repo program; do pairs+="[\"$repo\", \"$program\"],"; done < <(workload_programs)
  printf '[(.spec.containers // [])[], (.spec.initContainers // [])[] | (.image | split("@")[0] | sub(":[^:/]*$"; "") | ltrimstr("docker.io/") | ltrimstr("localhost/") | ltrimstr("library/")) as $r | ($r | IN(%s)) or ([$r, (.command // [])[0]] | IN(%s))] | all' "${repos%,}" "${pairs%,}"
}

# kwok's status-only pods on the pod network too (with workloads), so even a dial to one stays
# on the bridge.
kwok_cidr_flag() {
  ! running_with workloads || printf -- '--cidr %s.250.1/24' "$POD_NET_PREFIX"
}

# kwok's own fast pod stages (from its module at the pinned version), each with one more
# requirement: not a pod sim-kubelet runs.
kwok_pod_stages() {
  local dir=$1 f expr
  expr=$(workload_pod_expression)
  for f in pod-ready pod-complete pod-delete; do
    EXPR=$expr awk '
      BEGIN { expr = ENVIRON["EXPR"] }
      { print }
      /^    matchExpressions:$/ && !done {
        gsub(/\x27/, "\x27\x27", expr)
        printf "    - key: \x27%s\x27\n      operator: NotIn\n      values: [\x27true\x27]\n", expr
        done = 1
      }' "$dir/kustomize/stage/pod/fast/$f.yaml"
    printf -- '---\n'
  done
}

# The bridge and whatever pod network namespaces are left (sim-kubelet removes a pod's own when
# the pod goes; a killed one leaves them).
remove_pod_network() {
  local ns
  for ns in $(ip -o netns list 2>/dev/null | awk '{print $1}'); do
    case $ns in "$POD_NET_BRIDGE"-*) ip netns del "$ns" 2>/dev/null || true ;; esac
  done
  ! ip link show "$POD_NET_BRIDGE" >/dev/null 2>&1 || ip link del "$POD_NET_BRIDGE" 2>/dev/null || true
}

# The only name server that pods, the API server and the controllers the harness runs out of
# cluster are given: an address on loopback that nothing answers, so a name that is not a
# cluster name fails here at once instead of going to the host's resolver (which, on some
# machines, answers every name with an outside proxy).
POD_RESOLVER=127.253.0.53

# The /16 chosen and its bridge made, at the start of `up` (the API server's certificate names
# the gateway, and the API server routes webhook and APIService calls to endpoint addresses on
# the bridge), under a lock, so two clusters starting at once cannot choose the same one; and
# the resolver file of everything on the pod network.
make_pod_network() {
  [ "$(id -u)" -eq 0 ] || fail "--with workloads needs root (pod network namespaces and a bridge)"
  command -v ip >/dev/null || fail "--with workloads needs ip (iproute2)"
  command -v flock >/dev/null || fail "--with workloads needs flock (util-linux)"
  remove_pod_network
  exec 9>"${TMPDIR:-/tmp}/platformctl-sim-pod-network.lock"
  flock 9
  choose_pod_network
  { ip link add "$POD_NET_BRIDGE" type bridge && ip addr add "$POD_NET_GATEWAY/16" dev "$POD_NET_BRIDGE" &&
    ip link set "$POD_NET_BRIDGE" up; } 2>"$STATE/logs/pod-network.log" ||
    fail "could not make the pod network's bridge $POD_NET_BRIDGE" "" pod-network
  exec 9>&-
  mkdir -p "$STATE/kubelet/hosts"
  printf 'nameserver %s\noptions timeout:1 attempts:1\n' "$POD_RESOLVER" >"$STATE/kubelet/resolv.conf"
  # (sim-kubelet fills it with the cluster names once it runs; rewritten in place, so a bind
  # mount of it follows)
  printf '127.0.0.1 localhost\n' >"$STATE/kubelet/hosts/cluster"
}

# With workloads, the API server sends webhook and APIService calls to an endpoint address of
# the Service (a pod IP on the bridge), not to its ClusterIP, which nothing routes here (the
# host would send it to its default route): a call reaches the pod's process or fails here.
apiserver_flags() {
  ! running_with workloads || printf -- '--enable-aggregator-routing\n'
}

start_workloads() {
  local dir=$STATE/kubelet bin=$STATE/bin s images="" node nodes=""
  mkdir -p "$dir" "$bin"
  # Copies, so a cargo build during the run does not replace what runs (pid_of goes by the
  # executable).
  cp "$WORKLOADS_TARGET/sim-kubelet" "$bin/sim-kubelet"
  for s in "${WORKLOAD_SERVICES[@]}"; do cp "$WORKLOADS_TARGET/$s" "$bin/$s"; done
  local repo program inside extra
  while read -r repo program inside; do
    extra=""
    # (one binary stands in for every tag of a service: the tag is its version)
    case $repo in platformctl/*) extra=', "versionEnv": "PLATFORM_VERSION"' ;; esac
    if [ -n "$inside" ]; then
      extra+=", \"files\": {\"$inside\": \"$program\"}"
      program=$inside
    fi
    images+="\"$repo\": {\"entrypoint\": [\"$program\"]$extra},"
  done < <(workload_images)
  while read -r repo program; do
    images+="\"$repo\": {\"programs\": [\"$program\"]},"
  done < <(workload_programs)
  for node in "${NODES[@]}"; do nodes+="\"$node\","; done
  cat >"$dir/config.json" <<JSON
{
  "nodes": [${nodes%,}],
  "images": {${images%,}},
  "state": "$dir",
  "podNetwork": {"base": "$POD_NET_PREFIX.0.0", "gateway": "$POD_NET_GATEWAY", "bridge": "$POD_NET_BRIDGE", "netnsPrefix": "$POD_NET_BRIDGE"},
  "apiHost": "127.0.0.1",
  "apiPort": $API_PORT,
  "hostIp": "127.0.0.1",
  "resolver": "$POD_RESOLVER"
}
JSON
  write_kubeconfig "$STATE/sim-kubelet.kubeconfig" sim-kubelet
  start sim-kubelet --kubeconfig "$STATE/sim-kubelet.kubeconfig" --config "$dir/config.json"
  # Running once it has written the controllers' hosts file.
  wait_until sim-kubelet "cluster names in $dir/hosts/cluster" test -s "$dir/hosts/cluster"
}

# The cluster names for a component the harness runs out of cluster (the API server, the
# controllers): with workloads, in a private mount namespace (as root; CI is), its /etc/hosts is
# sim-kubelet's cluster file and its /etc/resolv.conf names only $POD_RESOLVER.
cluster_names_prefix() {
  local hosts=$STATE/kubelet/hosts/cluster resolv=$STATE/kubelet/resolv.conf
  if [ -f "$hosts" ] && [ -f "$resolv" ]; then
    printf '%s\n' unshare -m sh -c 'mount --bind "$0" /etc/hosts && mount --bind "$1" /etc/resolv.conf && shift && exec "$@"' "$hosts" "$resolv"
  fi
}
