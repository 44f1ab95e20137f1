#!/usr/bin/env bash
# Usage: bench/pipeline.sh OUT_DIR [REGISTRY/REPO:TAG]
#
# What a team runs today for the bundle galley builds from
# testdata/stacks/real-charts (plus the grafana patch bench/compare adds):
# the stock `helm template` once per chart with the same release name,
# namespace, values, Kubernetes version and API versions; `kustomize build`
# for the one app that has a patch; a hand-written Argo CD Application per
# app; tar+gzip; and `oras push` of the tarball as one
# application/vnd.oci.image.layer.v1.tar+gzip layer (plain HTTP, for the local
# registry bench/compare starts). With no reference, nothing is pushed.
#
# Environment: HELM, KUSTOMIZE, ORAS (the pinned binaries from
# scripts/tool-path.sh), CHARTS (default ../shared/charts), JOBS (charts
# rendered at once, default 1: one after another, as such scripts usually
# run).
#
# The apps are listed here, not read from the stack: that is how these
# scripts are written. Keep them in step with the stack.
set -euo pipefail

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
	echo "usage: $0 OUT_DIR [REGISTRY/REPO:TAG]" >&2
	exit 2
fi
out=$1
ref=${2:-}
root=$(cd "$(dirname "$0")/.." && pwd)
export HELM=${HELM:?set HELM to the helm binary}
export CHARTS=${CHARTS:-$root/../shared/charts}
KUSTOMIZE=${KUSTOMIZE:?set KUSTOMIZE to the kustomize binary}
JOBS=${JOBS:-1}

# app namespace chart values-file ("-" for none)
apps="metabase bi metabase -
argo-cd argocd argo-cd -
opentelemetry-collector observability opentelemetry-collector opentelemetry-collector.yaml
kube-prometheus-stack monitoring kube-prometheus-stack kube-prometheus-stack.pinned.yaml
grafana observability grafana grafana.pinned.yaml
airflow orchestration airflow airflow.pinned.yaml"

rm -rf "$out"
mkdir -p "$out/bundle/apps" "$out/bundle/argocd"
export OUT=$out/bundle

render() {
	local app=$1 ns=$2 chart=$3 values=$4
	local args=(--namespace "$ns" --kube-version 1.37.0 --api-versions monitoring.coreos.com/v1 --include-crds --skip-tests)
	if [ "$values" != - ]; then
		args+=(-f "$CHARTS/_values/$values")
	fi
	mkdir -p "$OUT/apps/$app"
	"$HELM" template "$app" "$CHARTS/$chart" "${args[@]}" >"$OUT/apps/$app/manifests.yaml"
}
export -f render
printf '%s\n' "$apps" | xargs -P "$JOBS" -L 1 bash -c 'render "$@"' render

# grafana's patch, as a kustomization over its render.
k=$out/kustomize-grafana
mkdir -p "$k"
mv "$OUT/apps/grafana/manifests.yaml" "$k/rendered.yaml"
cat >"$k/kustomization.yaml" <<'EOF'
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
- rendered.yaml
patches:
- target:
    kind: Deployment
    name: grafana
  patch: |-
    - op: add
      path: /spec/revisionHistoryLimit
      value: 3
EOF
"$KUSTOMIZE" build "$k" >"$OUT/apps/grafana/manifests.yaml"

# One Argo CD Application per app, pointing at its directory.
printf '%s\n' "$apps" | while read -r app ns _ _; do
	cat >"$OUT/argocd/$app.yaml" <<EOF
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: $app
  namespace: argocd
spec:
  project: real-charts
  source:
    repoURL: oci://registry.example.com/platform/real-charts
    targetRevision: 0.1.0
    path: apps/$app
  destination:
    server: https://kubernetes.default.svc
    namespace: $ns
  syncPolicy:
    automated: {prune: true, selfHeal: true}
    syncOptions: [CreateNamespace=true]
EOF
done

tar -C "$OUT" -czf "$out/bundle.tar.gz" .

if [ -n "$ref" ]; then
	ORAS=${ORAS:?set ORAS to the oras binary}
	# oras wants relative paths: the file name becomes the layer's title.
	cd "$out"
	"$ORAS" push --plain-http --no-tty --artifact-type application/vnd.galley.bundle.v1 \
		"$ref" bundle.tar.gz:application/vnd.oci.image.layer.v1.tar+gzip >/dev/null
fi
