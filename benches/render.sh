#!/usr/bin/env bash
# Benchmark: render a generated platform of N services x 2 environments (default 1000).
# Budget (DESIGN.md): < 1 s, and >= 20x faster than `helm template` on an equivalent chart.
# The helm comparison runs when `helm` is on PATH (or HELM=/path/to/helm); the chart renders
# the same objects per service and environment (Rollout, Services, ConfigMap, HPA, Ingress,
# ServiceMonitor) from one values file, as a Helm user would write it.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-1000}
RUNS=${RUNS:-5}
cargo build --release --locked --quiet
bin=${CARGO_TARGET_DIR:-$PWD/target}/release/platformctl
# tmpfs by default: this measures platformctl, not the disk (on an ext4 mounted with `discard`,
# creating 11,000 small files alone can take seconds). DISK=1 also reports a run on $TMPDIR.
shm=/dev/shm
[ -d "$shm" ] && [ -w "$shm" ] || shm=${TMPDIR:-/tmp}
work=$(mktemp -d -p "$shm")
trap 'rm -rf "$work"' EXIT

python3 - "$N" "$work" <<'PY'
import sys, json
n, work = int(sys.argv[1]), sys.argv[2]
head = open("platform.yaml").read().split("\nservices:\n")[0]
svcs, values = [], []
for i in range(n):
    name = f"svc-{i:04d}"
    svcs.append(f"""  - name: {name}
    image: example/{name}
    tags: {{ dev: 1.0.{i}, prod: 1.0.{i} }}
    port: 8080
    resources:
      requests: {{ cpu: 100m, memory: 64Mi }}
      limits: {{ cpu: 500m, memory: 128Mi }}
    config: {{ LOG_LEVEL: info, INDEX: "{i}" }}
    strategy:
      canary:
        steps: [20, 50, 100]
        analysis: {{ successRate: 99, latency: {{ percentile: 95, threshold: 0.3 }} }}
""")
    values.append({"name": name, "image": f"example/{name}", "tag": f"1.0.{i}", "index": str(i)})
open(f"{work}/platform.yaml", "w").write(head + "\nservices:\n" + "".join(svcs))
json.dump({"services": values, "envs": [{"name": "dev", "namespace": "practice", "replicas": 1},
          {"name": "prod", "namespace": "prod", "replicas": 3}]}, open(f"{work}/values.json", "w"))
PY

now() { date +%s%N; }
best() { # best wall time in ms of RUNS runs of "$@"
  local b=""
  for _ in $(seq "$RUNS"); do
    local t0; t0=$(now); "$@" >/dev/null; local ms=$(( ($(now) - t0) / 1000000 ))
    if [ -z "$b" ] || [ "$ms" -lt "$b" ]; then b=$ms; fi
  done
  echo "$b"
}
fresh() { rm -rf "$work/argocd" "$work/envs" "$work/chaos"; "$bin" -q -f "$work/platform.yaml" render; }

files=$("$bin" -f "$work/platform.yaml" -o json render | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["files"]))')
cold=$(best fresh)
noop=$(best "$bin" -q -f "$work/platform.yaml" render)
check=$(best "$bin" -q -f "$work/platform.yaml" render --check)
echo "render: $N services x 2 environments, $files files, on $(df --output=fstype "$work" | tail -1) ($shm)"
echo "  platformctl render (empty tree)   ${cold} ms   budget < 1000 ms"
echo "  platformctl render (no change)    ${noop} ms"
echo "  platformctl render --check        ${check} ms"

if [ "${DISK:-0}" = 1 ]; then
  disk=$(mktemp -d); cp "$work/platform.yaml" "$disk/"
  t0=$(now); "$bin" -q -f "$disk/platform.yaml" render; echo "  platformctl render (empty tree, disk $disk) $(( ($(now) - t0) / 1000000 )) ms"
  rm -rf "$disk"
fi

HELM=${HELM:-$(command -v helm || true)}
if [ -z "$HELM" ] && [ -x "$(go env GOPATH 2>/dev/null)/bin/helm" ]; then HELM="$(go env GOPATH)/bin/helm"; fi
if [ -z "$HELM" ]; then
  echo "  helm template: not measured (no helm on PATH; set HELM=/path/to/helm)"
  [ "$cold" -lt 1000 ] || { echo "FAIL: over budget"; exit 1; }
  exit 0
fi
chart=$work/chart
mkdir -p "$chart/templates"
printf 'apiVersion: v2\nname: bench\nversion: 0.1.0\n' > "$chart/Chart.yaml"
cat > "$chart/templates/all.yaml" <<'TPL'
{{- range $env := .Values.envs }}
{{- range $s := $.Values.services }}
---
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: {{ $s.name }}
  namespace: {{ $env.namespace }}
  labels: {app.kubernetes.io/name: {{ $s.name }}, app.kubernetes.io/managed-by: helm}
spec:
  replicas: {{ $env.replicas }}
  selector: {matchLabels: {app.kubernetes.io/name: {{ $s.name }}}}
  template:
    metadata:
      labels: {app.kubernetes.io/name: {{ $s.name }}}
      annotations: {checksum/config: {{ print $s.name $s.index | sha256sum | quote }}}
    spec:
      containers:
        - name: {{ $s.name }}
          image: "{{ $s.image }}:{{ $s.tag }}"
          ports: [{name: http, containerPort: 8080}]
          envFrom: [{configMapRef: {name: {{ $s.name }}-config}}]
          resources: {requests: {cpu: 100m, memory: 64Mi}, limits: {cpu: 500m, memory: 128Mi}}
          readinessProbe: {httpGet: {path: /readyz, port: http}, periodSeconds: 5}
          livenessProbe: {httpGet: {path: /healthz, port: http}, periodSeconds: 5}
  strategy:
    canary:
      steps:
        - setWeight: 20
        - analysis: {templates: [{templateName: {{ $s.name }}}]}
        - setWeight: 50
        - analysis: {templates: [{templateName: {{ $s.name }}}]}
        - setWeight: 100
---
apiVersion: v1
kind: Service
metadata: {name: {{ $s.name }}, namespace: {{ $env.namespace }}}
spec: {selector: {app.kubernetes.io/name: {{ $s.name }}}, ports: [{name: http, port: 8080, targetPort: http}]}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: {{ $s.name }}-config, namespace: {{ $env.namespace }}}
data: {LOG_LEVEL: info, INDEX: {{ $s.index | quote }}}
---
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: {{ $s.name }}, namespace: {{ $env.namespace }}}
spec:
  metrics:
    - name: success-rate
      successCondition: result[0] >= 0.99
      provider: {prometheus: {address: http://prometheus-operated.monitoring.svc:9090, query: {{ printf "sum(rate(http_requests_total{service=%q}[1m]))" $s.name | quote }}}}
{{- if eq $env.name "prod" }}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: {{ $s.name }}, namespace: {{ $env.namespace }}}
spec:
  scaleTargetRef: {apiVersion: argoproj.io/v1alpha1, kind: Rollout, name: {{ $s.name }}}
  minReplicas: 3
  maxReplicas: 10
  metrics: [{type: Resource, resource: {name: cpu, target: {type: Utilization, averageUtilization: 70}}}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: {{ $s.name }}, namespace: {{ $env.namespace }}}
spec: {ingressClassName: nginx, rules: [{host: "{{ $s.name }}.prod.local", http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: {{ $s.name }}, port: {name: http}}}}]}}]}
---
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata: {name: {{ $s.name }}, namespace: {{ $env.namespace }}}
spec: {selector: {matchLabels: {app.kubernetes.io/name: {{ $s.name }}}}, endpoints: [{port: http, path: /metrics, interval: 15s}]}
{{- end }}
{{- end }}
{{- end }}
TPL
helm_ms=$(best "$HELM" template bench "$chart" -f "$work/values.json" --output-dir "$work/helm-out")
echo "  helm template ($("$HELM" version --short), same objects)   ${helm_ms} ms"
ratio=$(python3 -c "print(f'{$helm_ms / max($cold, 1):.1f}')")
echo "  ratio helm/platformctl: ${ratio}x   budget >= 20x"
[ "$cold" -lt 1000 ] || { echo "FAIL: over budget"; exit 1; }
