#!/usr/bin/env bash
# Static checks of the container files, no container engine needed:
#   - `dockerfile-utils lint Dockerfile` (npm package, pinned) reports nothing
#   - every YAML file under deploy/ parses (Debian's python3-yaml via /usr/bin/python3)
#   - the manifests agree with the Dockerfile and with each other: the exposed port, the
#     probe paths (/healthz, /readyz), selectors and labels, named ports, the HPA target,
#     resources on every container, the kustomization listing every manifest, and the
#     compose file's port, Prometheus config and scrape target; the batch-eval Jobs pass only
#     flags of `cpwc-detect eval`, and an Indexed Job's --shard N is its completions.
#
#   deploy/container/lint.sh [--help]
set -euo pipefail

log() { printf '[container-lint] %s\n' "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }

if [[ "${1:-}" == "--help" || "${1:-}" == "-h" ]]; then
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
  exit 0
fi

readonly DOCKERFILE_UTILS=dockerfile-utils@0.16.3
repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"

if ! /usr/bin/python3 -c 'import yaml' 2>/dev/null; then
  log "installing python3-yaml"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-yaml >/dev/null
fi

lint_output=$(npx --yes "$DOCKERFILE_UTILS" lint Dockerfile 2>&1 | grep -v '^npm warn' || true)
[[ -z "$lint_output" ]] || { printf '%s\n' "$lint_output" >&2; die "dockerfile-utils lint Dockerfile reported problems"; }

/usr/bin/python3 - <<'EOF' || die "deploy/ manifests (see above)"
import pathlib
import re
import sys

import yaml

problems: list[str] = []


def check(condition: bool, message: str) -> None:
    if not condition:
        problems.append(message)


dockerfile = pathlib.Path("Dockerfile").read_text()
exposed = [int(p) for p in re.findall(r"^EXPOSE\s+(\d+)", dockerfile, re.M)]
check(len(exposed) == 1, f"Dockerfile: expected one EXPOSE, found {exposed}")
port = exposed[0] if exposed else -1
check(f"CPWC_PORT={port}" in dockerfile, f"Dockerfile: CPWC_PORT is not set to the exposed port {port}")
check("path:'/readyz'" in dockerfile, "Dockerfile: HEALTHCHECK does not probe /readyz")

documents: dict[str, list[dict]] = {}
for path in sorted(pathlib.Path("deploy").rglob("*.y*ml")):
    try:
        documents[str(path)] = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    except yaml.YAMLError as err:
        problems.append(f"{path}: does not parse: {err}")

# ---- Kubernetes ----
k8s = {p: docs for p, docs in documents.items() if p.startswith("deploy/k8s/")}
by_kind: dict[str, dict] = {}
for path, docs in k8s.items():
    for doc in docs:
        if doc.get("kind") == "Kustomization":
            listed = set(doc.get("resources", []))
            here = pathlib.Path(path).parent  # a kustomization lists the manifests of its own directory
            manifests = {pathlib.Path(p).name for p in k8s if pathlib.Path(p).parent == here and not p.endswith("kustomization.yaml")}
            check(listed == manifests, f"{path}: resources {sorted(listed)} != manifests {sorted(manifests)}")
            continue
        for key in ("apiVersion", "kind"):
            check(key in doc, f"{path}: a document lacks {key}")
        check(bool(doc.get("metadata", {}).get("name")), f"{path}: a document lacks metadata.name")
        if doc.get("kind") != "Job":  # the batch-eval Jobs (deploy/k8s/batch-eval) are checked below
            by_kind[doc.get("kind", "?")] = doc

# ---- batch-evaluation Jobs: `cpwc-detect eval` flags, --shard N = completions (test/eval/batch/k8s-jobs.test.ts checks more) ----
eval_flags = set(re.findall(r"^  '?([a-z][a-z-]*)'?: \{ type:", pathlib.Path("src/cli/eval.ts").read_text(), re.M))
for path, docs in k8s.items():
    for doc in docs:
        if doc.get("kind") != "Job":
            continue
        container = doc["spec"]["template"]["spec"]["containers"][0]
        args = [str(a) for a in container.get("args", [])]
        check(args[:3] == ["node", "dist/cli/index.js", "eval"], f"{path}: the Job does not run `node dist/cli/index.js eval`")
        unknown = [a for a in args if a.startswith("--") and a[2:] not in eval_flags]
        check(not unknown, f"{path}: flags {unknown} are not options of cpwc-detect eval (src/cli/eval.ts)")
        shard = [args[i + 1] for i, a in enumerate(args[:-1]) if a == "--shard"]
        if doc["spec"].get("completionMode") == "Indexed":
            want = f"$(JOB_COMPLETION_INDEX)/{doc['spec'].get('completions')}"
            check(shard == [want], f"{path}: an Indexed Job must pass --shard {want}, has {shard}")

deployment = by_kind.get("Deployment")
check(deployment is not None, "deploy/k8s: no Deployment")
if deployment is not None:
    spec = deployment["spec"]
    template = spec["template"]
    labels = template["metadata"]["labels"]
    selector = spec["selector"]["matchLabels"]
    check(selector.items() <= labels.items(), "Deployment: selector does not match the pod labels")
    container = template["spec"]["containers"][0]
    named_ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
    check(named_ports.get("http") == port, f"Deployment: port 'http' is {named_ports.get('http')}, the image exposes {port}")

    def probe_path(probe: str) -> str | None:
        return container.get(probe, {}).get("httpGet", {}).get("path")

    check(probe_path("livenessProbe") == "/healthz", "Deployment: livenessProbe is not GET /healthz")
    check(probe_path("readinessProbe") == "/readyz", "Deployment: readinessProbe is not GET /readyz")
    for kind in ("requests", "limits"):
        for resource in ("cpu", "memory"):
            check(resource in container.get("resources", {}).get(kind, {}), f"Deployment: resources.{kind}.{resource} missing")
    check(template["spec"].get("securityContext", {}).get("runAsUser") == 1000, "Deployment: not runAsUser 1000 (the image's node user)")
    annotations = template["metadata"].get("annotations", {})
    check(annotations.get("prometheus.io/port") == str(port), "Deployment: prometheus.io/port annotation differs from the port")

    service = by_kind.get("Service")
    check(service is not None, "deploy/k8s: no Service")
    if service is not None:
        check(service["spec"]["selector"].items() <= labels.items(), "Service: selector does not match the pod labels")
        for p in service["spec"]["ports"]:
            target = p.get("targetPort")
            check(target in named_ports or target == port, f"Service: targetPort {target} is not a container port")

    hpa = by_kind.get("HorizontalPodAutoscaler")
    check(hpa is not None, "deploy/k8s: no HorizontalPodAutoscaler")
    if hpa is not None:
        ref = hpa["spec"]["scaleTargetRef"]
        check(ref["kind"] == "Deployment" and ref["name"] == deployment["metadata"]["name"], "HPA: scaleTargetRef is not the Deployment")
        check(hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"], "HPA: minReplicas > maxReplicas")

    pdb = by_kind.get("PodDisruptionBudget")
    if pdb is not None:
        check(pdb["spec"]["selector"]["matchLabels"].items() <= labels.items(), "PDB: selector does not match the pod labels")

# ---- compose + Prometheus ----
compose = (documents.get("deploy/docker-compose.yml") or [None])[0]
check(compose is not None, "deploy/docker-compose.yml missing or empty")
if compose is not None:
    services = compose.get("services", {})
    detect = services.get("detect", {})
    container_ports = [int(str(p).split(":")[-1]) for p in detect.get("ports", [])]
    check(port in container_ports, f"compose: detect publishes {container_ports}, the image exposes {port}")
    check((pathlib.Path("deploy") / detect.get("build", {}).get("context", "") / "Dockerfile").is_file(), "compose: build context has no Dockerfile")
    prometheus = services.get("prometheus", {})
    mounts = [v.split(":")[0] for v in prometheus.get("volumes", []) if v.startswith("./")]
    for mount in mounts:
        check((pathlib.Path("deploy") / mount).exists(), f"compose: prometheus mounts missing {mount}")
    prom = (documents.get("deploy/prometheus.yml") or [{}])[0]
    targets = [t for job in prom.get("scrape_configs", []) for sc in job.get("static_configs", []) for t in sc.get("targets", [])]
    check(f"detect:{port}" in targets, f"prometheus.yml: no target detect:{port} (has {targets})")
    check(all(job.get("metrics_path", "/metrics") == "/metrics" for job in prom.get("scrape_configs", [])), "prometheus.yml: metrics_path is not /metrics")

for problem in problems:
    print(f"  {problem}", file=sys.stderr)
sys.exit(1 if problems else 0)
EOF
log "ok: Dockerfile lint clean; $(find deploy -name '*.y*ml' | wc -l) deploy YAML files parse and agree"
