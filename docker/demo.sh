#!/usr/bin/env bash
# make demo: start the local stack (docker/compose.yaml) where a Docker engine answers; without
# one, say so and run the dry-run tool on the bundled samples, which shows the log groups,
# streams and indices the plugin would write.
#
# Environment: CWOS=path to a built cwos binary (else it is built into build/cwos).
set -euo pipefail
cd "$(dirname "$0")/.."

if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
  if docker compose version >/dev/null 2>&1; then
    compose=(docker compose)
  elif command -v docker-compose >/dev/null 2>&1; then
    compose=(docker-compose)
  else
    echo "make demo: the Docker engine answers but the compose plugin is missing (docker compose version failed)." >&2
    exit 1
  fi
  "${compose[@]}" -f docker/compose.yaml up --build --detach --wait
  cat <<'EOF'

The demo stack is up. Every few seconds the log generator writes lines for four containers.
  CloudWatch Logs (moto):  http://127.0.0.1:5000/moto-api/   groups /aws/containerinsights/demo.<namespace>.<container>
                           aws --endpoint-url http://127.0.0.1:5000 --region us-east-1 logs describe-log-groups
  OpenSearch indices:      http://127.0.0.1:9200/_cat/indices/cwl-*?v
  OpenSearch Dashboards:   http://127.0.0.1:5601  (create the index pattern cwl-*, time field @timestamp, then Discover)
  Fluent Bit metrics:      http://127.0.0.1:2020/api/v1/metrics
Stop and remove everything: docker compose -f docker/compose.yaml down -v
EOF
  exit 0
fi

echo "make demo: no Docker engine answers here (docker info failed), so the demo stack cannot start."
echo "Running the dry-run tool on the bundled samples instead: the names the plugin would use."
echo

cwos=${CWOS:-}
if [[ -z "$cwos" ]]; then
  mkdir -p build
  go build -o build/cwos ./cmd/cwos
  cwos=build/cwos
fi

# The values the DaemonSet would take from the cluster-info ConfigMap (the seed's cluster).
export CLUSTER_NAME=${CLUSTER_NAME:-bys-dev-eks-main}
export AWS_REGION=${AWS_REGION:-ap-northeast-2}
export HOST_NAME=${HOST_NAME:-ip-10-0-1-23.ap-northeast-2.compute.internal}
export OPENSEARCH_ENDPOINT=${OPENSEARCH_ENDPOINT:-https://search-bys-dev-opensearch-eks-abcdefghijklmnop.ap-northeast-2.es.amazonaws.com}
tag=application.var.log.containers.iam-dev-7c9d8b6f5-x2x9k_aws-awssdk_iam-dev-4f2d9c1b7a6e5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e1d0c.log

set -x
"$cwos" check --config docker/conf/fluent-bit.yaml
"$cwos" render --config docker/conf/fluent-bit.yaml --records docker/samples/k8s-records.jsonl \
  --tag "$tag" --time 2023-02-22T01:00:00Z
