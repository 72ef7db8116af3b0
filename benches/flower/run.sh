#!/usr/bin/env bash
# Flower SecAgg+ simulation benchmark (issue #13): builds benches/flower/.venv from
# requirements.txt, then runs secagg_sim.py once per configuration, one at a time.
#
#   benches/flower/run.sh                          # the default grid (see below)
#   benches/flower/run.sh 300:100000:0.1:flower    # n:d:drop[:params[:drop-stage]]
#
# params: flower (num_shares 3, threshold 2), cairn (cairn's (k, t) at that n), or S,T.
# drop-stage: unmask (drop after sending the masked input, default) or masked.
# Environment: TIMEOUT (seconds per configuration, default 900), ROUNDS (default 3; the
# first round starts the Ray actors and is reported apart), OUT (results file, default
# benches/flower/results.jsonl), PYTHON (default python3).
# Each configuration's full log goes to benches/flower/logs/. A configuration that runs
# past TIMEOUT stops itself, writes what it measured so far and ends its Ray processes;
# one killed otherwise (out of memory: exit 137) gets a line written here.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv"
out="${OUT:-$here/results.jsonl}"
limit="${TIMEOUT:-900}"
rounds="${ROUNDS:-3}"
logs="$here/logs"
mkdir -p "$logs"

if [ ! -x "$venv/bin/python" ]; then
    "${PYTHON:-python3}" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt"

if [ "$#" -eq 0 ]; then
    set --
    for params in flower cairn; do
        for n in 10 100; do
            for d in 10000 100000; do
                for drop in 0 0.1; do
                    set -- "$@" "$n:$d:$drop:$params"
                done
            done
        done
    done
fi

export FLWR_TELEMETRY_ENABLED=0 RAY_USAGE_STATS_ENABLED=0
status=0
for spec in "$@"; do
    IFS=: read -r n d drop params stage <<<"$spec"
    params="${params:-flower}"
    stage="${stage:-unmask}"
    log="$logs/n${n}_d${d}_drop${drop}_${params/,/-}_${stage}.log"
    echo "== n=$n d=$d drop=$drop params=$params drop-stage=$stage (limit ${limit}s) -> $log"
    rc=0
    # secagg_sim.py stops itself at the limit (and still reports); `timeout` is the backstop.
    timeout -k 30 "$((limit + 60))" "$venv/bin/python" "$here/secagg_sim.py" \
        --time-limit "$limit" --n "$n" --d "$d" --rounds "$rounds" --drop-fraction "$drop" \
        --drop-stage "$stage" --params "$params" --out "$out" >"$log" 2>&1 || rc=$?
    grep '^\[bench\] round\|^\[bench\] flwr' "$log" || true
    if [ "$rc" -ne 0 ] && ! grep -q '^\[bench\] RESULT' "$log"; then
        # No result line: killed from outside (137: SIGKILL, e.g. the OOM killer) or crashed.
        printf '{"n": %s, "d": %s, "drop_fraction": %s, "drop_stage": "%s", "params": "%s", "error": "exit %s without a result (see %s)", "time": "%s"}\n' \
            "$n" "$d" "$drop" "$stage" "$params" "$rc" "$(basename "$log")" "$(date +%FT%T)" >>"$out"
    fi
    grep '^\[bench\] RESULT' "$log" | sed 's/^\[bench\] RESULT //' |
        "$venv/bin/python" -c 'import json,sys
for l in sys.stdin:
    r = json.loads(l)
    print("   -> median round %s s (first %s s), peak RSS %.0f MiB (PSS %.0f), ok=%s, error=%s"
          % (r["median_round_s"], r["first_round_s"], r["peak_rss_mib"], r["peak_pss_mib"],
             r["all_ok"], r["error"]))' || true
    [ "$rc" -eq 0 ] || status=1
done
exit "$status"
