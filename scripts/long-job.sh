#!/usr/bin/env bash
# The issue's two operational targets, measured with the release binary as real processes
# on loopback (the fraud table, 5 holders, examples/long-job.toml):
#
#   1. a 50-round job runs unattended; the coordinator's resident memory (VmRSS, recorded
#      in each round's record) at rounds 1, 25 and 50;
#   2. a coordinator killed (SIGKILL) mid-job and started again: seconds from the new
#      process's start to the job resumed (store opened, round in flight abandoned, model
#      and optimiser state restored), and to the first round completed after the restart.
#
#   scripts/long-job.sh            (builds target/release/cairn first)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/torch-env.sh
. scripts/torch-env.sh
cargo build --release --locked -p cairn >/dev/null
C=target/release/cairn
JOB=examples/long-job.toml

work=$(mktemp -d)
cleanup() {
    # shellcheck disable=SC2046
    kill $(jobs -p) 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
now() { date +%s.%N; }

# Starts the coordinator with its state in $1 on $2, logging to $3; waits for its address.
start_coordinator() {
    "$C" coordinator --job "$JOB" --out "$1" --listen "$2" >"$3" 2>&1 &
    coord=$!
    for _ in $(seq 600); do
        grep -q '^fingerprint ' "$3" 2>/dev/null && return 0
        sleep 0.05
    done
    echo "the coordinator did not start: $(tail -5 "$3")" >&2
    exit 1
}
start_holders() {
    local addr fp
    addr=$(sed -n 's/^listening on //p' "$1")
    fp=$(sed -n 's/^fingerprint //p' "$1")
    for i in 0 1 2 3 4; do
        "$C" participant --coordinator "$addr" --fingerprint "$fp" --device cpu \
            --holder "$i" --of 5 --reconnect 120 >"$work/holder-$i-$2.log" 2>&1 &
    done
}
rss_at() { # metrics.json, round → MiB
    python3 -c "import json,sys; r=[x for x in json.load(open(sys.argv[1])) if x['round']==int(sys.argv[2])][0]; print(f\"{r['rss_bytes']/2**20:.1f}\")" "$1" "$2"
}

echo "== 1. 50 rounds unattended"
t0=$(now)
start_coordinator "$work/a" 127.0.0.1:0 "$work/a.log"
start_holders "$work/a.log" a
wait "$coord"
t1=$(now)
m=$work/a/metrics.json
rounds=$(python3 -c "import json; print(len(json.load(open('$m'))))")
auc=$(python3 -c "import json; print(round(json.load(open('$m'))[-1]['test']['auc'],4))")
printf "rounds %s in %.0f s; final AUC %s\n" "$rounds" "$(echo "$t1 - $t0" | bc)" "$auc"
printf "coordinator RSS: round 1 %s MiB, round 25 %s MiB, round 50 %s MiB\n" \
    "$(rss_at "$m" 1)" "$(rss_at "$m" 25)" "$(rss_at "$m" 50)"
wait

echo "== 2. kill -9 after round 10, restart"
start_coordinator "$work/b" 127.0.0.1:0 "$work/b1.log"
addr=$(sed -n 's/^listening on //p' "$work/b1.log")
start_holders "$work/b1.log" b
for _ in $(seq 3000); do
    grep -q 'round completed round=10 ' "$work/b1.log" 2>/dev/null && break
    sleep 0.02
done
kill -9 "$coord"
wait "$coord" 2>/dev/null || true
t_start=$(now)
start_coordinator "$work/b" "$addr" "$work/b2.log"
for _ in $(seq 3000); do
    grep -q '^resumed job' "$work/b2.log" && break
    sleep 0.01
done
t_resumed=$(now)
for _ in $(seq 6000); do
    grep -q 'round completed' "$work/b2.log" && break
    sleep 0.01
done
t_round=$(now)
grep '^resumed job' "$work/b2.log"
printf "restart: resumed %.2f s after the process started (its own clock: %s s); first round completed %.2f s after start\n" \
    "$(echo "$t_resumed - $t_start" | bc)" \
    "$(sed -n 's/.* \([0-9.]*\) s after the coordinator started/\1/p' "$work/b2.log")" \
    "$(echo "$t_round - $t_start" | bc)"
kill "$coord" 2>/dev/null || true
