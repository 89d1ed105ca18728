# shellcheck shell=bash
# `tests/sim/cluster charts`: the addons' stand-in charts (tests/fixtures/charts, each creating
# what its upstream chart creates under the same names) as a Helm chart repository on loopback,
# for `platformctl up --charts <URL>`: the upstream repositories are not reachable here. Packaged
# by the harness's helm into the run state and served by Python's http.server (port base+16);
# `down` stops it. Sourced by tests/sim/cluster.

CHARTS_PORT=$((PORT_BASE + 16))

cmd_charts() {
  [ $# -eq 0 ] || die "usage: tests/sim/cluster charts"
  [ -f "$STATE/.platformctl-sim" ] && [ "$(running_count)" -gt 0 ] || die "no cluster runs in $STATE; run up first"
  local url=http://127.0.0.1:$CHARTS_PORT dir=$STATE/charts src py chart
  src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../fixtures/charts" && pwd)
  if pid_of charts >/dev/null; then
    printf '%s\n' "$url"
    return 0
  fi
  py=$(python_bin) || die "python3 is not installed (the chart repository is its http.server)"
  [ -x "$HELM_BIN/helm" ] || cmd_build
  ! port_busy "$CHARTS_PORT" || die "port $CHARTS_PORT on 127.0.0.1, needed by the chart repository, is already in use$(port_holder "$CHARTS_PORT")"
  rm -rf "$dir"
  mkdir -p "$dir"
  for chart in "$src"/*/; do
    [ -f "$chart/Chart.yaml" ] || continue
    "$HELM_BIN/helm" package "$chart" -d "$dir" >>"$STATE/logs/charts.log" 2>&1 ||
      { log_tail charts; die "helm package $chart failed"; }
  done
  "$HELM_BIN/helm" repo index "$dir" --url "$url" >>"$STATE/logs/charts.log" 2>&1 ||
    { log_tail charts; die "helm repo index failed"; }
  start charts -m http.server --bind 127.0.0.1 --directory "$dir" "$CHARTS_PORT"
  REUSING=1 wait_ready charts "$url/index.yaml"
  say "serving the stand-in charts ($(find "$dir" -name '*.tgz' | wc -l) of them) as a chart repository: platformctl up --charts $url"
  printf '%s\n' "$url"
}
