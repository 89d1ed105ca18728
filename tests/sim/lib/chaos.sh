# shellcheck shell=bash
# --with chaos: the real Chaos Mesh controller manager (chaos-controller-manager), out of
# cluster, reconciling every Chaos Mesh kind; for pod-kill it deletes the selected pods itself,
# so no chaos-daemon is needed (the one part of Chaos Mesh that would need a container runtime).
# Sourced by tests/sim/cluster.
#
# (The pinned commit, CHAOS_MESH_VERSION, is in tests/sim/cluster: the CRDs come from it too.)
# Its go.mod replaces the api module with ./api, which a module zip cannot carry; the proxy
# serves the api module at this pseudo-version (not at the main module's own commit).
CHAOS_MESH_API_VERSION=v0.0.0-20260906172039-d70b66ad97ac
CHAOS_MESH_BIN=$CACHE/chaos-mesh-$CHAOS_MESH_VERSION

# A wrapper module: the main module's replace lines (its k8s.io pins, runtime-spec), the api
# replaced by the served pseudo-version, and go.sum started from the main module's own: the
# checksum database reached here has no entry for one of its dependencies
# (github.com/chaos-mesh/fx-logr v0.1.0), whose hash upstream's go.sum does carry.
build_chaos() {
  [ -x "$CHAOS_MESH_BIN/chaos-controller-manager" ] && return 0
  say "building the Chaos Mesh controller manager ($CHAOS_MESH_VERSION) from github.com/chaos-mesh/chaos-mesh (cold: about 5 minutes)"
  local work dir m=github.com/chaos-mesh/chaos-mesh
  work=$(mktemp -d "$CACHE/.build-chaos-mesh.XXXXXX")
  dir=$(gomod_dir "$m@$CHAOS_MESH_VERSION")
  {
    printf 'module platformctl.dev/sim/chaos-mesh\n\ngo 1.25.11\n\n'
    printf 'require %s %s\n\n' "$m" "$CHAOS_MESH_VERSION"
    awk '/=> \.\.?\// {next} /^replace \($/ {b = 1; print; next} b && /^\)$/ {b = 0; print; next} b {print; next} /^replace [^(]/ {print}' "$dir/go.mod"
    printf 'replace %s/api => %s/api %s\n' "$m" "$m" "$CHAOS_MESH_API_VERSION"
  } >"$work/go.mod"
  cp "$dir/go.sum" "$work/go.sum"
  chmod u+w "$work/go.sum"
  printf '//go:build tools\n\npackage tools\n\nimport _ "%s/cmd/chaos-controller-manager"\n' "$m" >"$work/tools.go"
  (
    cd "$work" &&
      go mod tidy &&
      mkdir -p out &&
      go build -trimpath -ldflags "-s -w" -o out/ "$m/cmd/chaos-controller-manager"
  ) >>"$work/build.log" 2>&1 || build_failed "the Chaos Mesh controller manager" "$work"
  chmod -R u+w "$work/out"
  # (under the build lock: an entry here is an incomplete one)
  rm -rf "$CHAOS_MESH_BIN"; mv -T "$work/out" "$CHAOS_MESH_BIN"; rm -rf "$work"
}

# The controller manager out of cluster, as the chart runs it in one: cluster scoped, security
# mode off (the chart's default is on, which also makes its admission webhook check that the
# caller may create the chaos kind in each affected namespace; no webhook configuration is
# installed here, so nothing calls it), leader election off (one replica). The webhook server
# always starts and needs a certificate: a self-signed one of its own. Metrics on loopback.
start_chaos() {
  write_kubeconfig "$STATE/chaos-controller-manager.kubeconfig" chaos
  local certs=$STATE/chaos/certs
  mkdir -p "$certs"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
    -subj "/CN=chaos-mesh-controller-manager" -addext "subjectAltName=IP:127.0.0.1" \
    -keyout "$certs/tls.key" -out "$certs/tls.crt" 2>/dev/null
  ENABLE_LEADER_ELECTION=false CLUSTER_SCOPED=true SECURITY_MODE=false NAMESPACE=chaos-mesh \
    METRICS_HOST=127.0.0.1 METRICS_PORT="$CHAOS_METRICS_PORT" \
    WEBHOOK_HOST=127.0.0.1 WEBHOOK_PORT="$CHAOS_WEBHOOK_PORT" CERTS_DIR="$certs" \
    start chaos-controller-manager -kubeconfig "$STATE/chaos-controller-manager.kubeconfig"
  wait_ready chaos-controller-manager "http://127.0.0.1:$CHAOS_METRICS_PORT/metrics"
}
