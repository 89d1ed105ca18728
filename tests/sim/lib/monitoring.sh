# shellcheck shell=bash
# --with monitoring (needs workloads): the real prometheus-operator, out of cluster, reconciling
# the Prometheus and Alertmanager objects (the kube-prometheus-stack chart's); the StatefulSets it
# makes run as real Prometheus, Alertmanager and prometheus-config-reloader processes under
# sim-kubelet, with the volumes the kubelet would give them (the operator's generated
# configuration Secret, the rule-file ConfigMaps, the service account token). Sourced by
# tests/sim/cluster.

# kube-prometheus-stack 81.4.3's images.
PROMETHEUS_VERSION=v3.9.1
# Prometheus v3.9.1 is module version v0.309.1 (Prometheus 3 tags its Go module v0.3xx).
PROMETHEUS_MODULE_VERSION=v0.309.1
ALERTMANAGER_VERSION=v0.30.1
PROMETHEUS_OPERATOR_BIN=$CACHE/prometheus-operator-$PROMETHEUS_OPERATOR_VERSION
PROMETHEUS_BIN=$CACHE/prometheus-$PROMETHEUS_VERSION
ALERTMANAGER_BIN=$CACHE/alertmanager-$ALERTMANAGER_VERSION

# The operator and its config reloader. Upstream replaces its pkg/client module with a folder of
# its own repository, for which the checksum database has no entry: fetched unchecked.
build_monitoring() {
  if [ ! -x "$PROMETHEUS_OPERATOR_BIN/operator" ]; then
    say "building prometheus-operator $PROMETHEUS_OPERATOR_VERSION (operator, prometheus-config-reloader) from github.com/prometheus-operator/prometheus-operator"
    local work m=github.com/prometheus-operator/prometheus-operator
    work=$(mktemp -d "$CACHE/.build-prometheus-operator.XXXXXX")
    printf 'module platformctl.dev/sim/prometheus-operator\n\ngo 1.25.0\n' >"$work/go.mod"
    (
      cd "$work" &&
        GONOSUMDB=$m/pkg/client go get -tool "$m/cmd/operator@$PROMETHEUS_OPERATOR_VERSION" \
          "$m/cmd/prometheus-config-reloader@$PROMETHEUS_OPERATOR_VERSION" &&
        mkdir -p out &&
        GONOSUMDB=$m/pkg/client go build -trimpath -ldflags "-s -w -X github.com/prometheus/common/version.Version=${PROMETHEUS_OPERATOR_VERSION#v}" \
          -o out/ "$m/cmd/operator" "$m/cmd/prometheus-config-reloader"
    ) >>"$work/build.log" 2>&1 || build_failed prometheus-operator "$work"
    rm -rf "$PROMETHEUS_OPERATOR_BIN"; mv -T "$work/out" "$PROMETHEUS_OPERATOR_BIN"; rm -rf "$work"
  fi
  if [ ! -x "$PROMETHEUS_BIN/prometheus" ]; then
    say "building Prometheus $PROMETHEUS_VERSION from github.com/prometheus/prometheus@$PROMETHEUS_MODULE_VERSION (cold: several minutes, about 3.5 GB of memory)"
    local work v=github.com/prometheus/common/version
    work=$(mktemp -d "$CACHE/.build-prometheus.XXXXXX")
    printf 'module platformctl.dev/sim/prometheus\n\ngo 1.25.0\n' >"$work/go.mod"
    (
      cd "$work" &&
        go get -tool "github.com/prometheus/prometheus/cmd/prometheus@$PROMETHEUS_MODULE_VERSION" &&
        mkdir -p out &&
        go build -trimpath -ldflags "-s -w -X $v.Version=${PROMETHEUS_VERSION#v}" -o out/ github.com/prometheus/prometheus/cmd/prometheus
    ) >>"$work/build.log" 2>&1 || build_failed Prometheus "$work"
    rm -rf "$PROMETHEUS_BIN"; mv -T "$work/out" "$PROMETHEUS_BIN"; rm -rf "$work"
  fi
  if [ ! -x "$ALERTMANAGER_BIN/alertmanager" ]; then
    say "building Alertmanager $ALERTMANAGER_VERSION from github.com/prometheus/alertmanager"
    local work v=github.com/prometheus/common/version
    work=$(mktemp -d "$CACHE/.build-alertmanager.XXXXXX")
    GOBIN="$work/out" go install -trimpath -ldflags "-s -w -X $v.Version=${ALERTMANAGER_VERSION#v}" \
      "github.com/prometheus/alertmanager/cmd/alertmanager@$ALERTMANAGER_VERSION" \
      >>"$work/build.log" 2>&1 || build_failed Alertmanager "$work"
    rm -rf "$ALERTMANAGER_BIN"; mv -T "$work/out" "$ALERTMANAGER_BIN"; rm -rf "$work"
  fi
}

# The images sim-kubelet runs with --with monitoring: repository, the program, and where the
# image holds it (its entrypoint; the operator names that path as the command of the config
# reloader, and gives every argument).
monitoring_images() {
  printf '%s %s %s\n' \
    quay.io/prometheus/prometheus "$PROMETHEUS_BIN/prometheus" /bin/prometheus \
    quay.io/prometheus/alertmanager "$ALERTMANAGER_BIN/alertmanager" /bin/alertmanager \
    quay.io/prometheus-operator/prometheus-config-reloader "$PROMETHEUS_OPERATOR_BIN/prometheus-config-reloader" /bin/prometheus-config-reloader
}

# The operator out of cluster, as the chart runs it in one (every namespace, no kubelet
# endpoints, its own config reloader image at its version); KUBECONFIG is how it reads a
# cluster from outside (client-go's loading rules).
start_monitoring() {
  running_with workloads || fail "--with monitoring needs --with workloads (its Prometheus and Alertmanager run as pods)"
  write_kubeconfig "$STATE/prometheus-operator.kubeconfig" prometheus-operator
  mkdir -p "$STATE/bin"
  ln -sfn "$PROMETHEUS_OPERATOR_BIN/operator" "$STATE/bin/prometheus-operator"
  KUBECONFIG=$STATE/prometheus-operator.kubeconfig start prometheus-operator \
    --web.listen-address="127.0.0.1:$PROMETHEUS_OPERATOR_PORT" --log-level=warn \
    --prometheus-config-reloader="quay.io/prometheus-operator/prometheus-config-reloader:$PROMETHEUS_OPERATOR_VERSION" \
    --cluster-domain=cluster.local
  wait_ready prometheus-operator "http://127.0.0.1:$PROMETHEUS_OPERATOR_PORT/healthz"
}
