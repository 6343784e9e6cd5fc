#!/usr/bin/env bash
# Soak: the three services on the local stack (mock cluster and Schema Registry), the orders
# placed over HTTP through the Order API (`order-producer serve`) by `xtask load` at RATE
# requests per second (a fresh Idempotency-Key each) for SOAK_SECONDS, printing the resident
# memory (VmRSS) of each service process every INTERVAL seconds, then a summary line per
# process (first sample after warm-up, last, peak) and the load's own summary. picklist-consumer
# runs with --json (stdout to /dev/null) and no staff, the case in which every pick list stays
# open: its staff board fills to --board-open-lists and stays there, and the Order API's view
# fills to --view-orders with open orders. Everything listens on 127.0.0.1 and ends with the
# script (each process it started is stopped by its pid).
#
#   scripts/soak-rss.sh                      # release builds, 1,000 orders/s, 10 minutes
#   PROFILE=debug SOAK_SECONDS=180 scripts/soak-rss.sh
#
# Settings: RATE (1000), SOAK_SECONDS (600), INTERVAL (15), WARMUP (60: samples before it are
# not compared), PROFILE (release or debug), LOAD_ARGS (more `xtask load` flags, e.g.
# --without-keys), CARGO_TARGET_DIR (target), PICKLIST_CONSUMER_BIN
# (another picklist-consumer binary to run, e.g. one built from an earlier commit to compare).
set -euo pipefail
cd "$(dirname "$0")/.."

RATE=${RATE:-1000}
SOAK_SECONDS=${SOAK_SECONDS:-600}
INTERVAL=${INTERVAL:-15}
WARMUP=${WARMUP:-60}
PROFILE=${PROFILE:-release}
TARGET=${CARGO_TARGET_DIR:-target}

profile_flag=()
[ "$PROFILE" = release ] && profile_flag=(--release)
cargo build --quiet "${profile_flag[@]}" -p order-producer -p fulfillment-service -p picklist-consumer -p xtask
bin="$TARGET/$PROFILE"

dir=$(mktemp -d "${TMPDIR:-/tmp}/soak.XXXXXX")
pids=()
stop() {
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap stop EXIT

"$bin/xtask" stack --properties-out "$dir/client.properties" >"$dir/stack.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 600); do [ -s "$dir/client.properties" ] && break; sleep 0.1; done
[ -s "$dir/client.properties" ] || { echo "the local stack did not start; see $dir/stack.log" >&2; exit 1; }

"$bin/fulfillment-service" --config "$dir/client.properties" --listen 127.0.0.1:0 \
    2>"$dir/fulfillment.log" >/dev/null &
fulfillment=$!; pids+=("$fulfillment")
"${PICKLIST_CONSUMER_BIN:-$bin/picklist-consumer}" --config "$dir/client.properties" --json \
    2>"$dir/picklist-consumer.log" >/dev/null &
consumer=$!; pids+=("$consumer")
"$bin/order-producer" --config "$dir/client.properties" serve --listen 127.0.0.1:0 \
    2>"$dir/order-producer.log" >/dev/null &
producer=$!; pids+=("$producer")
api=
for _ in $(seq 1 600); do
    api=$(grep -o -m1 'listening on http://[0-9.:]*' "$dir/order-producer.log" | sed 's/listening on //') || true
    [ -n "$api" ] && break
    sleep 0.1
done
[ -n "$api" ] || { echo "the Order API did not start; see $dir/order-producer.log" >&2; exit 1; }
# The view answers once it has read the status topic (empty on a fresh stack).
for _ in $(seq 1 600); do curl -sf "$api/health" >/dev/null && break; sleep 0.1; done
# shellcheck disable=SC2086 # LOAD_ARGS is a list of words
"$bin/xtask" load --url "$api" --rate "$RATE" --seconds "$SOAK_SECONDS" --interval "$INTERVAL" \
    ${LOAD_ARGS:-} >"$dir/load.log" 2>&1 &
load=$!; pids+=("$load")

rss() { awk '/^VmRSS/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status" 2>/dev/null || echo "-"; }
names=(order-producer fulfillment-service picklist-consumer)
procs=("$producer" "$fulfillment" "$consumer")
declare -A first last peak
echo "soak: $RATE orders/s for ${SOAK_SECONDS}s ($PROFILE builds), RSS in MiB every ${INTERVAL}s; logs in $dir"
printf '%6s  %14s  %19s  %17s\n' seconds "${names[@]}"
start=$(date +%s)
while :; do
    sleep "$INTERVAL"
    elapsed=$(( $(date +%s) - start ))
    row=()
    for i in 0 1 2; do
        value=$(rss "${procs[$i]}")
        row+=("$value")
        name=${names[$i]}
        if [ "$value" != "-" ]; then
            if [ "$elapsed" -ge "$WARMUP" ] && [ -z "${first[$name]:-}" ]; then first[$name]=$value; fi
            last[$name]=$value
            if [ "$value" -gt "${peak[$name]:-0}" ]; then peak[$name]=$value; fi
        fi
    done
    printf '%6s  %14s  %19s  %17s\n' "$elapsed" "${row[@]}"
    [ "$elapsed" -ge "$SOAK_SECONDS" ] && break
    kill -0 "$load" 2>/dev/null || break
done
wait "$load" || echo "xtask load failed; see $dir/load.log" >&2
for name in "${names[@]}"; do
    echo "$name: after warm-up ${first[$name]:--} MiB, last ${last[$name]:--} MiB, peak ${peak[$name]:--} MiB"
done
grep -h -m1 "staff board full" "$dir/picklist-consumer.log" || true
tail -n 1 "$dir/load.log"
curl -sf "$api/metrics" | grep -E '^order_api_view_(orders|evicted)' || true
