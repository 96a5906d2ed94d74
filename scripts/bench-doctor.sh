#!/usr/bin/env bash
# Audit speed and memory of `realip doctor`, on two generated inputs:
#  1. N objects (default 10,000): Services, Deployments, ConfigMaps and
#     Ingresses in 50 namespaces, an ingress-nginx controller per namespace
#     and a few findings; target under 1 s and 200 MiB.
#  2. A 16 MB stream of 4,000 documents (about 4 KiB each: Deployments with
#     long env lists and args, ConfigMaps with data blobs, Services with
#     annotations); target under 2 s.
# Prints wall time, objects/s, peak RSS and the number of findings; the
# figures go in docs/benchmarks.md (speed is never asserted in a test).
# Usage: scripts/bench-doctor.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-10000}"
cargo build --release -q -p realip
work=$(mktemp -d /tmp/realip-doctor-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
python3 - "$n" "$work/objects.yaml" "$work/big.yaml" <<'PY'
import sys
n, path, big = int(sys.argv[1]), sys.argv[2], sys.argv[3]
docs = []
for ns in range(50):
    docs.append(f"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: ingress-nginx-controller\n  namespace: ns-{ns}\n  labels: {{app.kubernetes.io/name: ingress-nginx, app.kubernetes.io/component: controller}}\nspec:\n  replicas: 2\n  template:\n    metadata:\n      labels: {{app.kubernetes.io/name: ingress-nginx, app.kubernetes.io/component: controller}}\n    spec:\n      containers:\n      - name: controller\n        image: registry.k8s.io/ingress-nginx/controller:v1.12.0\n        args: [/nginx-ingress-controller, --configmap=$(POD_NAMESPACE)/ingress-nginx-controller]\n")
for i in range(n - 50):
    ns = f"ns-{i % 50}"
    k = i % 4
    if k == 0:
        ty = "LoadBalancer" if i % 40 == 0 else "ClusterIP"
        docs.append(f"apiVersion: v1\nkind: Service\nmetadata:\n  name: svc-{i}\n  namespace: {ns}\n  labels: {{app: a{i}}}\nspec:\n  type: {ty}\n  selector: {{app: a{i}}}\n  ports:\n  - port: 80\n    targetPort: 8080\n")
    elif k == 1:
        allow = "*" if i % 97 == 0 else "10.0.0.0/8"
        docs.append(f"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: dep-{i}\n  namespace: {ns}\nspec:\n  replicas: 2\n  template:\n    metadata:\n      labels: {{app: a{i}}}\n    spec:\n      containers:\n      - name: app\n        image: example/app:{i}\n        command: [uvicorn, main:app]\n        args: [\"--port\", \"8080\", \"--forwarded-allow-ips={allow}\"]\n")
    elif k == 2:
        docs.append(f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{i}\n  namespace: {ns}\ndata:\n  key: value-{i}\n")
    else:
        docs.append(f"apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: ing-{i}\n  namespace: {ns}\nspec:\n  rules:\n  - host: h{i}.example.com\n")
open(path, "w").write("---\n".join(docs))

# 4,000 documents, 16 MB.
docs = []
for i in range(4000):
    ns = f"team-{i % 40}"
    k = i % 4
    if k == 0:
        env = "".join(f"        - name: SETTING_{j}\n          value: \"{'x' * 40}-{i}-{j}\"\n" for j in range(42))
        args = ", ".join(f"\"--flag-{j}=value-{i}-{j}\"" for j in range(20))
        docs.append(f"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: dep-{i}\n  namespace: {ns}\n  labels: {{app: a{i}, team: {ns}}}\nspec:\n  replicas: 3\n  template:\n    metadata:\n      labels: {{app: a{i}}}\n    spec:\n      containers:\n      - name: app\n        image: example/app:{i}\n        command: [gunicorn, -k, uvicorn.workers.UvicornWorker]\n        args: [{args}, \"--forwarded-allow-ips=10.0.0.0/8\"]\n        env:\n{env}")
    elif k == 1:
        blob = "\n".join(f"    line {j} of the configuration blob for object {i} " + "y" * 40 for j in range(42))
        docs.append(f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{i}\n  namespace: {ns}\ndata:\n  app.conf: |\n{blob}\n")
    elif k == 2:
        ann = "".join(f"    example.com/annotation-{j}: \"{'z' * 60}-{i}\"\n" for j in range(40))
        docs.append(f"apiVersion: v1\nkind: Service\nmetadata:\n  name: svc-{i}\n  namespace: {ns}\n  annotations:\n{ann}spec:\n  type: ClusterIP\n  selector: {{app: a{i - 2}}}\n  ports:\n  - port: 80\n    targetPort: 8080\n")
    else:
        rules = "".join(f"  - host: h{i}-{j}.example.com\n    http:\n      paths:\n      - path: /p{j}\n        pathType: Prefix\n        backend:\n          service:\n            name: svc-{i - 1}\n            port:\n              number: 80\n" for j in range(13))
        docs.append(f"apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: ing-{i}\n  namespace: {ns}\nspec:\n  ingressClassName: nginx\n  rules:\n{rules}")
open(big, "w").write("---\n".join(docs))
PY
run() { # label objects file
    /usr/bin/time -f "%e %M %U %S" -o "$work/time" ./target/release/realip doctor "$3" --format json >"$work/out.json" || true
    read -r secs kb user sys <"$work/time"
    findings=$(python3 -c "import json,sys; print(len(json.load(open(sys.argv[1]))['findings']))" "$work/out.json")
    size=$(stat -c %s "$3")
    awk -v l="$1" -v n="$2" -v s="$secs" -v kb="$kb" -v f="$findings" -v b="$size" -v u="$user" -v y="$sys" 'BEGIN {printf "%s: %d objects, %.1f MB in %.2f s wall, %.2f s CPU (user+sys) (%.0f objects/s), peak RSS %.1f MiB, %d findings\n", l, n, b / 1e6, s, u + y, (s > 0 ? n / s : 0), kb / 1024, f}'
}
run "objects" "$n" "$work/objects.yaml"
run "16 MB stream" 4000 "$work/big.yaml"
