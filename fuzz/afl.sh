#!/usr/bin/env bash
# AFL++ runs of the cairn fuzz targets (afl.rs, stable toolchain). From the repository root:
#
#   fuzz/afl.sh setup               install cargo-afl and build AFL++ (once per machine)
#   fuzz/afl.sh build               build the instrumented harness into fuzz/target-afl
#   fuzz/afl.sh run TARGET [SECS]   fuzz TARGET for SECS seconds (default 600), niced, from
#                                   fuzz/corpus/TARGET into fuzz/out/TARGET
#   fuzz/afl.sh stats TARGET        the run's time, execs, corpus, crashes and hangs
#   fuzz/afl.sh cmin TARGET         minimise the run's queue (with the old corpus) into
#                                   fuzz/corpus/TARGET
#   fuzz/afl.sh targets             list the targets
#
# The machine need not be tuned for AFL (no root `system-config`): the environment below
# skips the CPU-frequency and core-dump checks and CPU binding, so fuzzers share cores with
# other work.
set -euo pipefail
cd "$(dirname "$0")/.."

export AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_AFFINITY=1
export AFL_NO_UI=1 AFL_SKIP_CRASHES=1
BIN=fuzz/target-afl/release/afl
# Bounded memory (MB of address space) so a decoder that over-allocates crashes its run
# instead of the machine.
MEM=${CAIRN_FUZZ_MEM:-8192}

targets() {
    sed -n 's/^    ("\([a-z0-9_]*\)", [a-z0-9_]*),$/\1/p' fuzz/src/lib.rs
}

cmd=${1:-}
case "$cmd" in
    setup)
        command -v cargo-afl >/dev/null || cargo install cargo-afl
        # Builds the AFL++ shipped with cargo-afl; an error saying it is already built is fine.
        cargo afl config --build || true
        ;;
    build)
        cargo afl build --release --features afl -p cairn-fuzz --bin afl \
            --target-dir fuzz/target-afl
        ;;
    run)
        t=${2:?target}
        secs=${3:-600}
        mkdir -p fuzz/out
        exec nice -n 10 cargo afl fuzz -i "fuzz/corpus/$t" -o "fuzz/out/$t" -m "$MEM" \
            -V "$secs" -- "$BIN" "$t"
        ;;
    stats)
        t=${2:?target}
        f="fuzz/out/$t/default/fuzzer_stats"
        grep -E '^(start_time|last_update|run_time|execs_done|execs_per_sec|corpus_count|corpus_found|saved_crashes|saved_hangs|bitmap_cvg|stability)' "$f"
        ;;
    cmin)
        t=${2:?target}
        tmp="fuzz/out/$t.cmin"
        rm -rf "$tmp" "fuzz/out/$t.all"
        mkdir -p "fuzz/out/$t.all"
        cp "fuzz/corpus/$t"/* "fuzz/out/$t.all/"
        cp "fuzz/out/$t/default/queue"/id:* "fuzz/out/$t.all/" 2>/dev/null || true
        nice -n 10 cargo afl cmin -i "fuzz/out/$t.all" -o "$tmp" -m "$MEM" -- "$BIN" "$t"
        rm -rf "fuzz/corpus/$t"
        mkdir -p "fuzz/corpus/$t"
        # Names without AFL's colons and commas (portable file names), numbered.
        n=0
        for f in "$tmp"/*; do
            n=$((n + 1))
            cp "$f" "fuzz/corpus/$t/$(printf '%04d' "$n")"
        done
        rm -rf "$tmp" "fuzz/out/$t.all"
        echo "$t: $n files, $(cat "fuzz/corpus/$t"/* | wc -c) bytes"
        ;;
    targets)
        targets
        ;;
    *)
        sed -n '2,13p' "$0" >&2
        exit 2
        ;;
esac
