#!/usr/bin/env python3
"""Turns one bench/results/<time>/ folder written by bench/run.sh into a Markdown table of figures, with the
ratio to Python and pass/fail against the targets of the benchmark issue.

Usage: python3 bench/summarize.py bench/results/<time> [--data bench/data]

MB is 10^6 bytes everywhere (criterion prints MiB/s; the figures here are converted from its time).
"""

import argparse
import json
import re
from pathlib import Path

SETS = ["small", "medium", "large", "xl"]
# in-process targets: ratio to Python, or MB/s
TARGETS = {"small": ("ratio", 100), "medium": ("ratio", 25), "large": ("mbps", 400), "xl": ("mbps", 400)}
# hostile inputs: "well under a second" is read as < 1 s; "a small multiple of its size" as a peak RSS growth
# over the loaded input of at most this many times the input
HOSTILE_SECONDS = 1.0
HOSTILE_MULTIPLE = 4.0
# ... or, for a small input, a growth this small in absolute terms: any multipart message pays ~3 MiB once
# (code pages, the boundary regex), and MAX_PARTS caps the rest (bench/deep_nesting.sh shows it level off)
HOSTILE_ABSOLUTE_MIB = 8.0


def kv_lines(path):
    rows = []
    if path.exists():
        for line in path.read_text().splitlines():
            pairs = dict(re.findall(r"(\w+)=(\S+)", line))
            if pairs:
                rows.append(pairs)
    return rows


def set_bytes(data, name):
    files = sorted((data / name).glob("*.eml"))
    return len(files), sum(f.stat().st_size for f in files)


def verdict(ok):
    return "**pass**" if ok else "**FAIL**"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("results")
    ap.add_argument("--data", default=str(Path(__file__).resolve().parent / "data"))
    args = ap.parse_args()
    res, data = Path(args.results), Path(args.data)
    python = json.loads((res / "python.json").read_text())["results"] if (res / "python.json").exists() else {}

    out = []
    machine = res / "machine.txt"
    if machine.exists():
        out += ["```", machine.read_text().strip(), "```", ""]

    out += ["### In process: parse + envelope + JSON render into io::sink() (criterion mean; Python best of N)", "",
            "| set | messages | MB | Rust time/iter (mean [95% CI]) | Rust MB/s | fastest sample MB/s | Rust per message "
            "| Rust parse-only MB/s | Python MB/s | Python per message | ratio | target | result |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name in SETS:
        count, size = set_bytes(data, name)
        est = res / "criterion" / "convert" / name / "estimates.json"
        pest = res / "criterion" / "parse" / name / "estimates.json"
        if not est.exists() or not count:
            out.append(f"| {name} | {count} | {size / 1e6:.1f} | (not measured) ||||||||||")
            continue
        e = json.loads(est.read_text())["mean"]
        secs = e["point_estimate"] / 1e9
        lo, hi = e["confidence_interval"]["lower_bound"] / 1e9, e["confidence_interval"]["upper_bound"] / 1e9
        mbps = size / 1e6 / secs
        best_mbps = ""
        sample = est.with_name("sample.json")
        if sample.exists():
            smp = json.loads(sample.read_text())
            fastest = min(t / n for t, n in zip(smp["times"], smp["iters"])) / 1e9
            best_mbps = f"{size / 1e6 / fastest:.0f}"
        parse_mbps = ""
        if pest.exists():
            parse_mbps = f"{size / 1e6 / (json.loads(pest.read_text())['mean']['point_estimate'] / 1e9):.0f}"
        py = python.get(name)
        ratio = mbps / py["mb_per_s"] if py else None
        kind, goal = TARGETS[name]
        if kind == "ratio":
            target = f"≥ {goal}× Python"
            ok = ratio is not None and ratio >= goal
        else:
            target = f"≥ {goal} MB/s"
            ok = mbps >= goal
        per_msg = secs / count
        per_msg_s = f"{per_msg * 1e6:.1f} µs" if per_msg < 1e-3 else f"{per_msg * 1e3:.1f} ms"
        out.append(
            f"| {name} | {count} | {size / 1e6:.1f} | {secs * 1e3:.1f} ms [{lo * 1e3:.1f}, {hi * 1e3:.1f}] "
            f"| {mbps:.0f} | {best_mbps} | {per_msg_s} | {parse_mbps} "
            f"| {py['mb_per_s']:.2f} | {py['ms_per_message']:.2f} ms | {ratio:.1f}× | {target} | {verdict(ok)} |"
            if py else
            f"| {name} | {count} | {size / 1e6:.1f} | {secs * 1e3:.1f} ms | {mbps:.0f} | {best_mbps} | {per_msg_s} | {parse_mbps} "
            f"| – | – | – | {target} | {verdict(ok)} |")

    out += ["", "### Peak memory (target: ≤ 2× the message size on the 40 MB message)", "",
            "| file | size MB | peak binary: RSS after loading | peak binary: peak RSS (VmHWM) | × size "
            "| `mailroom render` max RSS (time -v) | × size | result |",
            "|---|---|---|---|---|---|---|---|"]
    cli = {Path(r["file"]).name: r for r in kv_lines(res / "cli_time.txt")}
    for r in kv_lines(res / "peak.txt"):
        name, size = Path(r["file"]).name, int(r["size"])
        peak = int(r["peak_rss_kb"]) * 1024
        c = cli.get(name)
        cli_rss = int(c["cli_wall_s_max_rss_kb"].split(",")[1]) * 1024 if c else None
        is_target = "/xl/" in r["file"]
        ok = peak <= 2 * size and (cli_rss is None or cli_rss <= 2 * size)
        out.append(
            f"| {name} | {size / 1e6:.1f} | {int(r['rss_loaded_kb']) / 1024:.1f} MiB | {peak / 2**20:.1f} MiB "
            f"| {peak / size:.2f} | {f'{cli_rss / 2**20:.1f} MiB' if cli_rss else '–'} "
            f"| {f'{cli_rss / size:.2f}' if cli_rss else '–'} | {verdict(ok) if is_target else '(no target)'} |")

    out += ["", f"### Hostile inputs (target: each well under a second — read as < {HOSTILE_SECONDS:.0f} s — and "
            f"memory a small multiple of its size — read as peak RSS growth ≤ {HOSTILE_MULTIPLE:.0f}× the input, or "
            f"≤ {HOSTILE_ABSOLUTE_MIB:.0f} MiB in all)", "",
            "| file | size MB | in-process first run (parse / render) | best of 3 | peak RSS | growth over loaded input "
            "| growth × size | CLI wall | CLI max RSS | warnings | result |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in kv_lines(res / "hostile.txt"):
        name, size = Path(r["file"]).name, int(r["size"])
        peak_kb, loaded_kb = int(r["peak_rss_kb"]), int(r["rss_loaded_kb"])
        growth = (peak_kb - loaded_kb) * 1024
        c = cli.get(name)
        wall, rss = (c["cli_wall_s_max_rss_kb"].split(",") if c else ("", ""))
        slowest = max(float(r["total_ms"]) / 1e3, float(wall) if wall else 0.0)
        small_multiple = growth <= HOSTILE_MULTIPLE * size
        capped = growth <= HOSTILE_ABSOLUTE_MIB * 2**20
        ok = slowest < HOSTILE_SECONDS and (small_multiple or capped)
        out.append(
            f"| {name} | {size / 1e6:.2f} | {float(r['total_ms']):.1f} ms ({float(r['parse_ms']):.1f} / "
            f"{float(r['render_ms']):.1f}) | {float(r['best_total_ms']):.1f} ms | {peak_kb / 1024:.1f} MiB "
            f"| {growth / 2**20:.1f} MiB | {growth / size:.2f} | {f'{float(wall) * 1e3:.0f} ms' if wall else '–'} "
            f"| {f'{int(rss) / 1024:.1f} MiB' if rss else '–'} | {r.get('warnings', '')} "
            f"| {verdict(ok)}{'' if small_multiple or not ok else f' (≤ {HOSTILE_ABSOLUTE_MIB:.0f} MiB)'} |")

    out += ["", "### Whole process: `mailroom render --out DIR` over each set (files read from the page cache, "
            "written to a temporary folder)", "",
            "| set | messages | MB | mean | min | MB/s (mean) | per message | in-process MB/s | Python MB/s "
            "| CLI ÷ Python |", "|---|---|---|---|---|---|---|---|---|---|"]
    for name in SETS:
        path = res / f"cli_{name}.json"
        if not path.exists():
            continue
        count, size = set_bytes(data, name)
        h = json.loads(path.read_text())["results"][0]
        mean, low = h["mean"], h["min"]
        est = res / "criterion" / "convert" / name / "estimates.json"
        inproc = size / 1e6 / (json.loads(est.read_text())["mean"]["point_estimate"] / 1e9) if est.exists() else None
        py = python.get(name)
        py_mbps = f"{py['mb_per_s']:.2f}" if py else "–"
        vs_py = f"{size / 1e6 / mean / py['mb_per_s']:.1f}×" if py else "–"
        out.append(
            f"| {name} | {count} | {size / 1e6:.1f} | {mean * 1e3:.1f} ms | {low * 1e3:.1f} ms | {size / 1e6 / mean:.0f} "
            f"| {mean / count * 1e3:.3f} ms | {f'{inproc:.0f}' if inproc else '–'} | {py_mbps} | {vs_py} |")

    probe = res / "probe.txt"
    if probe.exists():
        out += ["", "### Where the time of a large message goes (probe, best of 5)", "", "```",
                probe.read_text().strip(), "```"]
    print("\n".join(out))


if __name__ == "__main__":
    main()
