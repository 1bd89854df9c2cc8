#!/bin/sh
# Log generator for the demo stack: writes, every second, JSON lines shaped like what Fluent Bit's
# kubernetes filter hands the output on a cluster (a "kubernetes" map with namespace, pod and
# container), so the demo exercises the same group and index templates as the DaemonSet.
# Runs in busybox (POSIX sh, no bash).
set -eu
out=/var/log/demo/containers.log
mkdir -p "$(dirname "$out")"
n=0
while :; do
  n=$((n + 1))
  now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  for app in "shop cart-6b8f7d9c4-p5k2m cart" "shop checkout-7f9c6d5b8-q2w3e checkout" "aws-awssdk iam-dev-7c9d8b6f5-x2x9k iam-dev" "kube-system coredns-5d78c9869d-7xq2n coredns"; do
    set -- $app
    printf '{"time":"%s","stream":"stdout","log":"request %d handled by %s","kubernetes":{"namespace_name":"%s","pod_name":"%s","container_name":"%s","host":"demo-node"}}\n' \
      "$now" "$n" "$3" "$1" "$2" "$3" >> "$out"
  done
  # Now and then a line without Kubernetes metadata: it goes to the fallback group and index.
  if [ $((n % 10)) -eq 0 ]; then
    printf '{"time":"%s","stream":"stderr","log":"line %d without kubernetes metadata"}\n' "$now" "$n" >> "$out"
  fi
  sleep 1
done
