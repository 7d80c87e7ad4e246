#!/usr/bin/env python3
"""Parses wrk and h2load output into result rows, and turns the rows into the table.

Used by benches/compare.sh:
  compare_table.py wrk PHASE NAME TICKS HZ < wrk-output   -> one row (TICKS: the server's CPU
                                                             clock ticks during the run)
  compare_table.py h2load PHASE NAME LOG < h2load-output  -> one row (percentiles from LOG)
  compare_table.py oha PHASE NAME RATE < oha-json         -> one open-loop row
  compare_table.py table < rows                           -> medians and ratios, Markdown
A row is tab-separated: phase, name, requests/s, p50 ms, p99 ms, server CPU us per request
("-" when not measured; idle rows: phase "idle", name, connections held, RSS MiB, RSS before, "-";
open-loop rows: phase "lat50"/"lat80", name, achieved req/s, p50, p99, p99.9 ms, rate asked for).
"""

import re
import statistics
import sys

UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}
FLOOR = "floor"
HAPROXY = "haproxy jwt_verify HS256"


def wrk_row(phase, name, ticks, hz, text):
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    done = int(re.search(r"^\s*(\d+) requests in", text, re.M).group(1))
    cpu_us = int(ticks) / int(hz) * 1e6 / max(done, 1)
    pct = {}
    for p, value, unit in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", text, re.M):
        pct[p] = float(value) * UNITS_MS[unit]
    return [phase, name, f"{rps:.0f}", f"{pct['50']:.3f}", f"{pct['99']:.3f}", f"{cpu_us:.1f}"]


def h2load_row(phase, name, log, text):
    rps = float(re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", text).group(1))
    # --log-file: start time (us since epoch), status, duration (us); one line per request.
    durations = sorted(int(line.split("\t")[2]) for line in open(log) if line.strip())
    if not durations:
        raise SystemExit(f"{name}: h2load logged no requests")

    def pick(q):
        return durations[min(len(durations) - 1, int(q * len(durations)))] / 1000.0

    return [phase, name, f"{rps:.0f}", f"{pick(0.50):.3f}", f"{pick(0.99):.3f}", "-"]


def oha_row(phase, name, rate, text):
    """One open-loop run: achieved req/s, p50, p99, p99.9 (ms), and the rate asked for."""
    import json

    result = json.loads(text)
    statuses = result.get("statusCodeDistribution", {})
    errors = result.get("errorDistribution", {})
    if errors or set(statuses) - {"200"}:
        raise SystemExit(f"{name}: oha saw answers other than 200: {statuses} {errors}")
    pct = result["latencyPercentiles"]
    ms = [f"{pct[p] * 1000:.3f}" for p in ("p50", "p99", "p99.9")]
    rps = result["summary"]["requestsPerSec"]
    return [phase, name, f"{rps:.0f}", *ms, rate]


def latency_table(rows, order):
    """Open-loop phases (lat50, lat80): medians of the runs, p99 and p99.9 against HAProxy's."""
    for phase in sorted({p for (p, _) in order if p.startswith("lat")}):
        names = [n for (p, n) in order if p == phase]
        rate = rows[(phase, names[0])][0][5]
        print(f"\n### Open loop at {rate} req/s ({phase[3:]} % of HAProxy HS256's peak; oha, latency corrected)\n")
        print("| case | achieved req/s | p50 ms | p99 ms | p99.9 ms | p99 / HAProxy's | p99.9 / HAProxy's | runs (p99 ms) |")
        print("|---|---|---|---|---|---|---|---|")
        med = {}
        for n in names:
            runs = rows[(phase, n)]
            med[n] = [statistics.median(float(r[i]) for r in runs) for i in range(1, 5)]
            med[n].append(" / ".join(f"{float(r[3]):.2f}" for r in runs))
        ha = med.get(HAPROXY)
        for n in names:
            rps, p50, p99, p999, each = med[n]
            vs99 = f"{p99 / ha[2]:.2f}" if ha else "-"
            vs999 = f"{p999 / ha[3]:.2f}" if ha else "-"
            print(f"| {n} | {rps:,.0f} | {p50:.2f} | {p99:.2f} | {p999:.2f} | {vs99} | {vs999} | {each} |")


def table(lines):
    rows = {}
    order = []
    latency = {}
    for line in lines:
        fields = line.rstrip("\n").split("\t")
        if fields[0].startswith("lat"):
            key = (fields[0], fields[1])
            if key not in latency:
                latency[key] = []
                order.append(key)
            latency[key].append(fields[1:])
            continue
        phase, name, a, b, c, *rest = fields
        cpu = float(rest[0]) if rest and rest[0] != "-" else None
        key = (phase, name)
        if key not in rows:
            rows[key] = []
            order.append(key)
        rows[key].append((float(a), float(b), c, cpu))
    titles = {
        "h1": "HTTP/1.1 keep-alive (wrk)",
        "h2": "HTTP/2 over TLS (h2load; floor: h2c)",
        "tls": "New TLS connection per request (wrk, Connection: close)",
    }
    for phase, title in titles.items():
        names = [n for (p, n) in order if p == phase]
        if not names:
            continue
        med = {}
        for n in names:
            runs = rows[(phase, n)]
            med[n] = (
                statistics.median(r[0] for r in runs),
                statistics.median(r[1] for r in runs),
                statistics.median(float(r[2]) for r in runs),
                [r[0] for r in runs],
                statistics.median(cpus) if (cpus := [r[3] for r in runs if r[3] is not None]) else None,
            )
        print(f"\n### {title}\n")
        print("| case | req/s (median) | runs | p50 ms | p99 ms | vs floor | vs HAProxy HS256 | p99 added over floor | server CPU us/req |")
        print("|---|---|---|---|---|---|---|---|---|")
        floor = med.get(FLOOR)
        ha = med.get(HAPROXY)
        for n in names:
            rps, p50, p99, runs, cpu = med[n]
            cpu_cell = f"{cpu:.1f}" if cpu is not None else "-"
            vs_floor = f"{rps / floor[0]:.2f}" if floor and n != FLOOR else "-"
            vs_ha = f"{rps / ha[0]:.2f}" if ha else "-"
            added = f"{p99 - floor[2]:+.2f} ms" if floor and n != FLOOR else "-"
            each = " / ".join(f"{r:,.0f}" for r in runs)
            print(f"| {n} | {rps:,.0f} | {each} | {p50:.2f} | {p99:.2f} | {vs_floor} | {vs_ha} | {added} | {cpu_cell} |")
    latency_table(latency, order)
    idle = [(n, rows[(p, n)][0]) for (p, n) in order if p == "idle"]
    if idle:
        print("\n### Idle keep-alive TLS connections\n")
        print("| proxy | connections held | RSS MiB (before) | RSS MiB (holding) |")
        print("|---|---|---|---|")
        for n, (held, rss, before, _) in idle:
            print(f"| {n} | {held:,.0f} | {before} | {rss:.1f} |")


def main():
    mode = sys.argv[1]
    if mode == "wrk":
        print("\t".join(wrk_row(*sys.argv[2:6], sys.stdin.read())))
    elif mode == "h2load":
        print("\t".join(h2load_row(sys.argv[2], sys.argv[3], sys.argv[4], sys.stdin.read())))
    elif mode == "oha":
        print("\t".join(oha_row(sys.argv[2], sys.argv[3], sys.argv[4], sys.stdin.read())))
    elif mode == "table":
        table(sys.stdin)
    else:
        raise SystemExit(f"unknown mode {mode!r} (expected wrk, h2load or table)")


if __name__ == "__main__":
    main()
