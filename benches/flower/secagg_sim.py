#!/usr/bin/env python3
"""One configuration of Flower's SecAgg+ in its simulation engine, timed.

n virtual SuperNodes run a ClientApp with `secaggplus_mod`; the ServerApp runs
`SecAggPlusWorkflow` inside `DefaultWorkflow` (FedAvg, every node sampled every round,
no evaluation round). The model is one float32 vector of d parameters and a client's
"training" adds N(0, 0.01) noise drawn from a seed of (seed, round, partition), so the
round's time is the protocol and the engine, not training; the server recomputes the
expected mean from the same seeds and checks the unmasked aggregate against it.

Dropouts: a `drop_mod` placed before `secaggplus_mod` raises in the chosen stage for a
seeded random `--drop-fraction` of the nodes each round. With `--drop-stage unmask` (the
default) those nodes have sent their masked input and then fail the unmask request: the
workflow keeps their input in the sum and rebuilds their self-mask seeds from the
neighbours' shares (the case cairn's comparison measures). With `--drop-stage masked`
they fail before sending a masked input: the workflow counts them dead and rebuilds
their pairwise masks from shares of their key. A raising ClientApp becomes an error
reply in the simulation engine, which the workflow treats as a dropped client; no
timeout is involved.

Prints one line per round and writes one JSON line (appended to `--out`). Memory: a
thread samples this process and all its descendants (Ray's GCS, raylet and the worker
actors) every 0.2 s and keeps the peak of the summed RSS (and of the summed PSS once a
second, which counts pages shared between the processes once).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import sys
import threading
import time

os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_DEDUP_LOGS", "1")

import numpy as np  # noqa: E402
import psutil  # noqa: E402

import flwr  # noqa: E402
from flwr.app import Context, Message  # noqa: E402
from flwr.app.message_type import MessageType  # noqa: E402
from flwr.client import ClientApp, NumPyClient  # noqa: E402
from flwr.client.mod import secaggplus_mod  # noqa: E402
from flwr.common import ndarrays_to_parameters, parameters_to_ndarrays  # noqa: E402
from flwr.common.secure_aggregation.secaggplus_constants import (  # noqa: E402
    RECORD_KEY_CONFIGS,
    Key,
    Stage,
)
from flwr.server import LegacyContext, ServerApp, ServerConfig  # noqa: E402
from flwr.server.strategy import FedAvg  # noqa: E402
from flwr.server.workflow import DefaultWorkflow, SecAggPlusWorkflow  # noqa: E402
from flwr.server.workflow.constant import MAIN_PARAMS_RECORD  # noqa: E402
from flwr.simulation import run_simulation  # noqa: E402
import flwr.compat.common.recorddict_compat as compat  # noqa: E402

NOISE_STD = 0.01


# ---------------------------------------------------------------------------
# cairn's (k, t) choice (crypto/src/secagg/params.rs, ported line by line) so the
# Flower run can use the neighbourhood cairn would use at the same n.
# ---------------------------------------------------------------------------
def _ln_fact(n: int) -> list[float]:
    t = [0.0]
    for i in range(1, n + 1):
        t.append(t[-1] + math.log(i))
    return t


def _ln_choose(lf, a, b):
    return lf[a] - lf[b] - lf[a - b]


def _hyper_tail(lf, pop, bad, draws, c):
    hi = min(bad, draws)
    denom = _ln_choose(lf, pop, draws)
    s = 0.0
    for x in range(c + 1, hi + 1):
        if draws - x <= pop - bad:
            s += math.exp(_ln_choose(lf, bad, x) + _ln_choose(lf, pop - bad, draws - x) - denom)
    return s


def _quantile(lf, pop, bad, draws, eps):
    for c in range(0, min(bad, draws)):
        if _hyper_tail(lf, pop, bad, draws, c) <= eps:
            return c
    return min(bad, draws)


def cairn_params(n: int, dropout: float, corruption: float, malicious: bool = True,
                 sigma: int = 40, eta: int = 30) -> tuple[int, int]:
    """(k neighbours, threshold t) as cairn's `choose_params` picks them."""
    lf = _ln_fact(n)
    corrupt = math.floor(corruption * n)
    removed = math.floor((corruption + dropout) * n)
    lost = removed if malicious else math.floor(dropout * n)
    sec_eps = 2.0 ** -sigma / n
    cor_eps = 2.0 ** -eta / n
    k = 2
    while True:
        complete = k >= n - 1
        k_eff = n - 1 if complete else k
        c = _quantile(lf, n - 1, corrupt, k_eff, sec_eps)
        d = _quantile(lf, n - 1, lost, k_eff, cor_eps)
        t_min = max((k_eff + c) // 2 + 1 if malicious else c + 1, 2)
        t_max = max(k_eff - d, 0)
        connected = complete
        if not complete:
            p = 1.0
            for i in range(k_eff):
                p *= max(removed - i, 0) / (n - i)
            connected = n * n * p <= 2.0 ** -sigma
        if connected and t_min <= t_max:
            return k_eff, min(max(t_min, k_eff // 2 + 1), t_max)
        if complete:
            raise ValueError(f"no (k, t) for n={n}")
        k += 2


# ---------------------------------------------------------------------------
# The benchmark
# ---------------------------------------------------------------------------
def drop_set(seed: int, rnd: int, n: int, frac: float) -> set[int]:
    """Partition ids that drop in round `rnd`."""
    m = int(round(frac * n))
    return set(random.Random(seed * 1_000_003 + rnd).sample(range(n), m))


def client_noise(seed: int, rnd: int, pid: int, d: int) -> np.ndarray:
    rs = np.random.RandomState((seed * 7_919 + rnd * 100_003 + pid) % (2**32))
    return rs.normal(0.0, NOISE_STD, d).astype(np.float32)


class RssSampler(threading.Thread):
    """Peak of the summed RSS (and PSS) of this process and all its descendants."""

    def __init__(self, interval: float = 0.2, pss_every: int = 5):
        super().__init__(daemon=True)
        self.interval = interval
        self.pss_every = pss_every
        self.stop = threading.Event()
        self.peak_rss = 0
        self.peak_pss = 0
        self.peak_main_rss = 0
        self.peak_procs = 0
        self.samples = 0

    def run(self):
        me = psutil.Process()
        i = 0
        while not self.stop.is_set():
            try:
                procs = [me] + me.children(recursive=True)
            except psutil.Error:
                procs = [me]
            rss = pss = 0
            do_pss = i % self.pss_every == 0
            for p in procs:
                try:
                    if do_pss:
                        mi = p.memory_full_info()
                        rss += mi.rss
                        pss += mi.pss
                    else:
                        rss += p.memory_info().rss
                except psutil.Error:
                    pass
            try:
                self.peak_main_rss = max(self.peak_main_rss, me.memory_info().rss)
            except psutil.Error:
                pass
            self.peak_rss = max(self.peak_rss, rss)
            if do_pss:
                self.peak_pss = max(self.peak_pss, pss)
            self.peak_procs = max(self.peak_procs, len(procs))
            self.samples += 1
            i += 1
            self.stop.wait(self.interval)


def content_bytes(msg: Message) -> int:
    """Payload bytes of a message: array data, bytes and strings (8 per number)."""
    if msg.has_error():
        return 0
    total = 0
    c = msg.content
    for arr_rec in c.array_records.values():
        for arr in arr_rec.values():
            total += len(arr.data)
    for cfg_rec in c.config_records.values():
        for v in cfg_rec.values():
            for x in (v if isinstance(v, list) else [v]):
                total += len(x) if isinstance(x, (bytes, str)) else 8
    return total


class CountingGrid:
    """Delegates to the simulation's Grid and adds up what each stage sends."""

    def __init__(self, grid, wf):
        self._grid = grid
        self._wf = wf

    def __getattr__(self, name):
        return getattr(self._grid, name)

    def send_and_receive(self, messages, *, timeout=None):
        messages = list(messages)
        rec = getattr(self._wf, "_rec", None)
        stage = getattr(self._wf, "_stage", None)
        if rec is not None and stage is not None:
            b = rec["bytes"].setdefault(stage, {"to_clients": 0, "from_clients": 0,
                                                "sent": 0, "replies": 0})
            b["to_clients"] += sum(content_bytes(m) for m in messages)
            b["sent"] += len(messages)
        replies = list(self._grid.send_and_receive(messages, timeout=timeout))
        if rec is not None and stage is not None:
            b["from_clients"] += sum(content_bytes(m) for m in replies)
            b["replies"] += sum(1 for m in replies if not m.has_error())
        return replies


class TimedSecAggPlus(SecAggPlusWorkflow):
    """SecAggPlusWorkflow with each stage and the whole call timed; checks the sum."""

    def __init__(self, cfg: dict, rounds_out: list, **kw):
        super().__init__(**kw)
        self.cfg = cfg
        self.rounds_out = rounds_out

    def __call__(self, grid, context):
        rec = {"stages": {}, "ok": False, "bytes": {}}
        self._rec = rec
        grid = CountingGrid(grid, self)
        rnd = len(self.rounds_out) + 1
        before = parameters_to_ndarrays(
            compat.arrayrecord_to_parameters(
                context.state.array_records[MAIN_PARAMS_RECORD], keep_input=True
            )
        )[0].copy()
        t0 = time.perf_counter()
        super().__call__(grid, context)
        rec["round_s"] = time.perf_counter() - t0
        after = parameters_to_ndarrays(
            compat.arrayrecord_to_parameters(
                context.state.array_records[MAIN_PARAMS_RECORD], keep_input=True
            )
        )[0]
        c = self.cfg
        dropped = drop_set(c["seed"], rnd, c["n"], c["drop_fraction"])
        included = [p for p in range(c["n"])
                    if not (c["drop_stage"] == "masked" and p in dropped)]
        expected = before.astype(np.float64) + np.mean(
            [client_noise(c["seed"], rnd, p, c["d"]) for p in included], axis=0)
        if rec["ok"]:
            rec["max_abs_err"] = float(np.max(np.abs(after.astype(np.float64) - expected)))
            rec["ok"] = rec["max_abs_err"] < 1e-4
        rec["round"] = rnd
        rec["dropped"] = len(dropped)
        self.rounds_out.append(rec)
        st = " ".join(f"{k}={v:.2f}s" for k, v in rec["stages"].items())
        print(f"[bench] round {rnd}: {rec['round_s']:.2f} s, ok={rec['ok']}, "
              f"err={rec.get('max_abs_err')}, dropped={len(dropped)} ({st})", flush=True)

    def _timed(self, name, fn, grid, context, state):
        self._stage = name
        print(f"[bench] {time.strftime('%H:%M:%S')} stage {name} starts "
              f"({len(state.active_node_ids)} active)", flush=True)
        t0 = time.perf_counter()
        ok = fn(grid, context, state)
        self._rec["stages"][name] = time.perf_counter() - t0
        self._stage = None
        if name == "unmask":
            self._rec["ok"] = bool(ok)
            self._rec["failures"] = len(state.failures)
        elif not ok:
            self._rec["halted_at"] = name
        return ok

    def setup_stage(self, grid, context, state):
        return self._timed("setup", super().setup_stage, grid, context, state)

    def share_keys_stage(self, grid, context, state):
        return self._timed("share_keys", super().share_keys_stage, grid, context, state)

    def collect_masked_vectors_stage(self, grid, context, state):
        return self._timed("collect_masked", super().collect_masked_vectors_stage,
                           grid, context, state)

    def unmask_stage(self, grid, context, state):
        return self._timed("unmask", super().unmask_stage, grid, context, state)


wf_ref: dict = {}


def build_apps(cfg: dict, rounds_out: list):
    n, d = cfg["n"], cfg["d"]
    seed, frac, stage_name = cfg["seed"], cfg["drop_fraction"], cfg["drop_stage"]
    drop_stage = Stage.UNMASK if stage_name == "unmask" else Stage.COLLECT_MASKED_VECTORS

    class NoiseClient(NumPyClient):
        def __init__(self, pid: int):
            self.pid = pid

        def fit(self, parameters, config):
            rnd = int(config["server_round"])
            w = parameters[0] + client_noise(seed, rnd, self.pid, d)
            return [w], 1, {}

    def client_fn(context: Context):
        return NoiseClient(int(context.node_config["partition-id"])).to_client()

    def drop_mod(msg: Message, ctxt: Context, call_next):
        if msg.metadata.message_type == MessageType.TRAIN and frac > 0:
            cfgs = msg.content.config_records.get(RECORD_KEY_CONFIGS)
            if cfgs is not None and cfgs.get(Key.STAGE) == drop_stage:
                rnd = int(msg.metadata.group_id)
                pid = int(ctxt.node_config["partition-id"])
                if pid in drop_set(seed, rnd, n, frac):
                    raise RuntimeError(f"simulated dropout of partition {pid} in {drop_stage}")
        return call_next(msg, ctxt)

    client_app = ClientApp(client_fn=client_fn, mods=[drop_mod, secaggplus_mod])

    server_app = ServerApp()

    def on_fit_config(rnd: int):
        return {"server_round": rnd}

    @server_app.main()
    def main(grid, context: Context) -> None:
        random.seed(seed)  # the workflow's neighbour shuffle uses `random`
        strategy = FedAvg(
            fraction_fit=1.0,
            fraction_evaluate=0.0,
            min_fit_clients=n,
            min_evaluate_clients=0,
            min_available_clients=n,
            initial_parameters=ndarrays_to_parameters([np.zeros(d, dtype=np.float32)]),
            on_fit_config_fn=on_fit_config,
        )
        lctx = LegacyContext(context=context, config=ServerConfig(num_rounds=cfg["rounds"]),
                             strategy=strategy)
        wf = TimedSecAggPlus(
            cfg, rounds_out,
            num_shares=cfg["num_shares"],
            reconstruction_threshold=cfg["threshold"],
            max_weight=1.0,
            timeout=cfg["timeout"],
        )
        wf_ref["wf"] = wf
        DefaultWorkflow(fit_workflow=wf)(grid, lctx)

    return server_app, client_app


def per_client_bytes(rec: dict) -> dict:
    """Mean payload bytes per client and stage: down (server to client), up (replies)."""
    out = {}
    for stage, b in rec.get("bytes", {}).items():
        out[stage] = {
            "down": round(b["to_clients"] / b["sent"]) if b["sent"] else 0,
            "up": round(b["from_clients"] / b["replies"]) if b["replies"] else 0,
        }
    out["total"] = {k: sum(v[k] for v in out.values()) for k in ("down", "up")}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, required=True)
    ap.add_argument("--d", type=int, required=True)
    ap.add_argument("--rounds", type=int, default=3,
                    help="rounds; the first is reported apart (Ray actors start in it)")
    ap.add_argument("--drop-fraction", type=float, default=0.0)
    ap.add_argument("--drop-stage", choices=["unmask", "masked"], default="unmask",
                    help="unmask: drop after sending the masked input (default); "
                         "masked: drop before it")
    ap.add_argument("--params", default="flower",
                    help="'flower': num_shares=3, reconstruction_threshold=2 (Flower's "
                         "secure-aggregation example); 'cairn': k+1 shares and t from "
                         "cairn's malicious (k, t) choice at this n; or 'S,T'")
    ap.add_argument("--cairn-dropout", type=float, default=0.2)
    ap.add_argument("--cairn-corruption", type=float, default=0.1)
    ap.add_argument("--timeout", type=float, default=None,
                    help="the workflow's per-stage reply timeout (default: none)")
    ap.add_argument("--num-cpus", type=int, default=2, help="CPUs given to Ray")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--time-limit", type=float, default=None,
                    help="stop after this many seconds, still writing the result line")
    ap.add_argument("--out", default=None, help="append the JSON line to this file")
    a = ap.parse_args()

    cairn_kt = None
    if a.params == "flower":
        num_shares, threshold = 3, 2
    elif a.params == "cairn":
        k, t = cairn_params(a.n, a.cairn_dropout, a.cairn_corruption)
        cairn_kt = [k, t]
        # Flower's neighbourhood is the node and num_shares - 1 ring neighbours, and the
        # node keeps one share of its own secrets; cairn's k neighbours exclude the node.
        num_shares, threshold = min(k + 1, a.n), t
    else:
        num_shares, threshold = (int(x) for x in a.params.split(","))

    cfg = dict(n=a.n, d=a.d, rounds=a.rounds, drop_fraction=a.drop_fraction,
               drop_stage=a.drop_stage, seed=a.seed, num_shares=num_shares,
               threshold=threshold, timeout=a.timeout)
    print(f"[bench] flwr {flwr.__version__}, n={a.n}, d={a.d}, rounds={a.rounds}, "
          f"drop={a.drop_fraction} ({a.drop_stage}), num_shares={num_shares}, "
          f"threshold={threshold}" + (f" (cairn k,t={cairn_kt})" if cairn_kt else ""),
          flush=True)

    rounds_out: list = []
    server_app, client_app = build_apps(cfg, rounds_out)
    sampler = RssSampler()
    sampler.start()
    t0 = time.perf_counter()
    err = None

    def on_time_limit():
        # Ray replaces Python's SIGTERM handling in this process, so the time limit is
        # kept here: report what ran and the memory it took, end Ray's processes (our
        # descendants) and leave.
        if done.wait(a.time_limit):
            return
        sampler.stop.set()
        report(a, cfg, cairn_kt, rounds_out, sampler, time.perf_counter() - t0,
               f"time limit of {a.time_limit:.0f} s reached during round "
               f"{len(rounds_out) + 1}, stage {getattr(wf_ref.get('wf'), '_stage', None)}")
        procs = psutil.Process().children(recursive=True)
        for p in procs:
            try:
                p.kill()
            except psutil.Error:
                pass
        psutil.wait_procs(procs, timeout=10)  # reap our direct children
        os._exit(124)

    done = threading.Event()
    if a.time_limit:
        threading.Thread(target=on_time_limit, daemon=True).start()
    try:
        run_simulation(
            server_app=server_app,
            client_app=client_app,
            num_supernodes=a.n,
            backend_config={
                "init_args": {"num_cpus": a.num_cpus, "num_gpus": 0,
                              "object_store_memory": 1 << 30},
                "client_resources": {"num_cpus": 1, "num_gpus": 0.0},
            },
        )
    except BaseException as ex:  # noqa: BLE001 - report whatever stopped it
        err = f"{type(ex).__name__}: {ex}"
    done.set()
    total = time.perf_counter() - t0
    sampler.stop.set()
    sampler.join()
    res = report(a, cfg, cairn_kt, rounds_out, sampler, total, err)
    return 0 if res["all_ok"] else 1


def report(a, cfg, cairn_kt, rounds_out, sampler, total, err) -> dict:
    num_shares, threshold = cfg["num_shares"], cfg["threshold"]
    times = [r["round_s"] for r in rounds_out]
    res = {
        "flwr": flwr.__version__,
        "python": platform.python_version(),
        "n": a.n, "d": a.d, "rounds": a.rounds,
        "drop_fraction": a.drop_fraction, "drop_stage": a.drop_stage,
        "params": a.params, "num_shares": num_shares, "threshold": threshold,
        "cairn_k_t": cairn_kt,
        "cairn_dropout_corruption": [a.cairn_dropout, a.cairn_corruption] if cairn_kt else None,
        "round_s": times,
        "first_round_s": times[0] if times else None,
        # round 1 includes starting the Ray actors and loading the ClientApp in them
        "median_round_s": float(np.median(times[1:])) if len(times) > 1 else None,
        "bytes_per_client_last_round": per_client_bytes(rounds_out[-1]) if rounds_out else None,
        "all_ok": bool(rounds_out) and len(rounds_out) == a.rounds
                  and all(r["ok"] for r in rounds_out),
        "rounds_detail": rounds_out,
        "total_s": total,
        "peak_rss_mib": sampler.peak_rss / 2**20,
        "peak_pss_mib": sampler.peak_pss / 2**20,
        "peak_main_rss_mib": sampler.peak_main_rss / 2**20,
        "max_processes": sampler.peak_procs,
        "ray_cpus": a.num_cpus,
        "error": err,
        "loadavg_end": os.getloadavg(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    line = json.dumps(res)
    print("[bench] RESULT " + line, flush=True)
    if a.out:
        with open(a.out, "a") as f:
            f.write(line + "\n")
    return res


if __name__ == "__main__":
    sys.exit(main())
