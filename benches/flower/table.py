#!/usr/bin/env python3
"""Prints results.jsonl (or the files given) as README.md's tables (`--stages`: per stage)."""

import json
import sys
from pathlib import Path


def dim(d: int) -> str:
    k = len(str(d)) - 1
    return f"10^{k}" if d == 10**k else str(d)


STAGES = ("setup", "share_keys", "collect_masked", "unmask")


def stages_table(paths) -> None:
    """Median over rounds 2+ (or round 1 alone) of each stage's seconds."""
    print("| n | d | drop | (num_shares, t) | " + " | ".join(STAGES) + " |")
    print("|---|---|---|---|" + "---|" * len(STAGES))
    for path in paths:
        for line in open(path):
            r = json.loads(line)
            detail = r.get("rounds_detail") or []
            if not detail:
                continue
            use = detail[1:] or detail
            cells = []
            for st in STAGES:
                xs = sorted(x["stages"][st] for x in use if st in x["stages"])
                cells.append(f"{(xs[len(xs) // 2] + xs[(len(xs) - 1) // 2]) / 2:.2f}"
                             if xs else "—")
            print(f"| {r['n']} | {dim(r['d'])} | {r['drop_fraction']:g} "
                  f"| ({r['num_shares']}, {r['threshold']}) | " + " | ".join(cells) + " |")


def main() -> None:
    args = sys.argv[1:]
    stages = "--stages" in args
    args = [x for x in args if x != "--stages"]
    paths = args or [str(Path(__file__).with_name("results.jsonl"))]
    if stages:
        stages_table(paths)
        return
    print("| n | d | drop | (num_shares, t) | s / round, median of rounds 2+ | round 1 (Ray start) "
          "| rounds ok | peak RSS (PSS), MiB | up / down per client, last round | stopped |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for path in paths:
        for line in open(path):
            r = json.loads(line)
            drop = f"{r['drop_fraction']:g}" + (
                f" ({r['drop_stage']})" if r.get("drop_stage") != "unmask" else "")
            kt = f"({r.get('num_shares')}, {r.get('threshold')})"
            if r.get("cairn_k_t"):
                kt += " cairn"
            elif r.get("params") not in (None, "flower"):
                kt += " set"
            times = r.get("round_s") or []
            med = f"{r['median_round_s']:.2f}" if r.get("median_round_s") is not None else "—"
            first = f"{times[0]:.1f}" if times else "—"
            detail = r.get("rounds_detail") or []
            ok = f"{sum(1 for x in detail if x.get('ok'))}/{r.get('rounds', '?')}"
            mem = (f"{r['peak_rss_mib']:.0f} ({r['peak_pss_mib']:.0f})"
                   if "peak_rss_mib" in r else "—")
            b = (r.get("bytes_per_client_last_round") or {}).get("total")
            bytes_ = f"{b['up'] / 1e3:,.0f} / {b['down'] / 1e3:,.0f} kB" if b else "—"
            stopped = r.get("error") or ""
            print(f"| {r['n']} | {dim(r['d'])} | {drop} | {kt} | {med} | {first} | {ok} "
                  f"| {mem} | {bytes_} | {stopped} |")


if __name__ == "__main__":
    main()
