#!/usr/bin/env bash
# Audit speed: generates N Kubernetes objects (Services, Deployments,
# ConfigMaps, Ingresses; a few with findings) and times `realip doctor` on
# them, printing objects/s and peak RSS.
# Usage: scripts/bench-doctor.sh [N]   (default 10000)
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-10000}"
cargo build --release -q -p realip
work=$(mktemp -d /tmp/realip-doctor-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
python3 - "$n" "$work/objects.yaml" <<'PY'
import sys
n, path = int(sys.argv[1]), sys.argv[2]
docs = []
for i in range(n):
    ns = f"ns-{i % 50}"
    k = i % 4
    if k == 0:
        ty = "LoadBalancer" if i % 40 == 0 else "ClusterIP"
        docs.append(f"apiVersion: v1\nkind: Service\nmetadata:\n  name: svc-{i}\n  namespace: {ns}\n  labels: {{app: a{i}}}\nspec:\n  type: {ty}\n  selector: {{app: a{i}}}\n  ports:\n  - port: 80\n    targetPort: 8080\n")
    elif k == 1:
        allow = "*" if i % 97 == 0 else "10.0.0.0/8"
        docs.append(f"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: dep-{i}\n  namespace: {ns}\nspec:\n  replicas: 2\n  template:\n    metadata:\n      labels: {{app: a{i}}}\n    spec:\n      containers:\n      - name: app\n        image: example/app:{i}\n        args: [\"--port\", \"8080\", \"--forwarded-allow-ips={allow}\"]\n")
    elif k == 2:
        docs.append(f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{i}\n  namespace: {ns}\ndata:\n  key: value-{i}\n")
    else:
        docs.append(f"apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: ing-{i}\n  namespace: {ns}\nspec:\n  rules:\n  - host: h{i}.example.com\n")
open(path, "w").write("---\n".join(docs))
PY
/usr/bin/time -f "%e %M" -o "$work/time" ./target/release/realip doctor "$work/objects.yaml" --format json >"$work/out.json" || true
read -r secs kb <"$work/time"
findings=$(python3 -c "import json,sys; print(len(json.load(open(sys.argv[1]))['findings']))" "$work/out.json")
awk -v n="$n" -v s="$secs" -v kb="$kb" -v f="$findings" 'BEGIN {printf "%d objects in %.2f s (%.0f objects/s), peak RSS %.1f MiB, %d findings\n", n, s, (s > 0 ? n / s : 0), kb / 1024, f}'
