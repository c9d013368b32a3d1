#!/usr/bin/env python3
"""The same conversion as Mailroom's benchmark, with Python's `email` package: the baseline to compare with.

For each message: BytesParser(policy=policy.default).parsebytes, the plain and html bodies
(get_body(preferencelist=('plain',)) and ('html',)), every attachment of iter_attachments() with its decoded
bytes base64-encoded, the headers as a dict (lower-case keys with '_' for '-', repeated headers as lists),
and json.dumps of the whole CloudMailin-like dict. Files are read into memory first; time.perf_counter()
times the conversion loop only.

Usage: python3 bench/python_baseline.py [--data bench/data] [--sets small,medium,large,xl] [--repeat N]
Prints one line per set (best of N passes) and, with --json FILE, writes the figures there.
"""

import argparse
import base64
import json
import sys
import time
from email import policy
from email.parser import BytesParser
from pathlib import Path

PARSER = BytesParser(policy=policy.default)


def convert(raw):
    msg = PARSER.parsebytes(raw)
    headers = {}
    for name, value in msg.items():
        key = name.lower().replace("-", "_")
        value = str(value)
        if key in headers:
            if isinstance(headers[key], list):
                headers[key].append(value)
            else:
                headers[key] = [headers[key], value]
        else:
            headers[key] = value
    plain = msg.get_body(preferencelist=("plain",))
    html = msg.get_body(preferencelist=("html",))
    attachments = []
    for part in msg.iter_attachments():
        content = part.get_payload(decode=True) or b""
        attachments.append({
            "file_name": part.get_filename() or "",
            "content_type": part.get_content_type(),
            "size": len(content),
            "disposition": part.get_content_disposition() or "attachment",
            "content_id": (part.get("Content-ID") or "").strip("<>"),
            "content": base64.b64encode(content).decode("ascii"),
        })
    payload = {
        "envelope": {"to": "", "recipients": [], "from": "", "helo_domain": "", "remote_ip": "",
                     "spf": {"result": "none", "domain": ""}},
        "headers": headers,
        "plain": plain.get_content() if plain is not None else None,
        "html": html.get_content() if html is not None else None,
        "attachments": attachments,
    }
    return json.dumps(payload)


def load(folder):
    files = sorted(Path(folder).glob("*.eml"))
    return [(f.name, f.read_bytes()) for f in files]


def main():
    here = Path(__file__).resolve().parent
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(here / "data"))
    ap.add_argument("--sets", default="small,medium,large,xl")
    ap.add_argument("--repeat", type=int, default=3, help="passes over each set; the best is reported")
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args()

    results = {}
    for name in args.sets.split(","):
        files = load(Path(args.data) / name)
        if not files:
            sys.exit(f"{args.data}/{name}: no .eml files (run bench/gen_corpus.py)")
        total = sum(len(raw) for _, raw in files)
        times = []
        out_bytes = 0
        for _ in range(args.repeat):
            out_bytes = 0
            start = time.perf_counter()
            for _, raw in files:
                out_bytes += len(convert(raw))
            times.append(time.perf_counter() - start)
        best = min(times)
        results[name] = {
            "messages": len(files),
            "bytes": total,
            "best_s": best,
            "all_s": times,
            "mb_per_s": total / 1e6 / best,
            "ms_per_message": best * 1e3 / len(files),
            "json_bytes": out_bytes,
        }
        print(f"{name:7} {len(files):5} msg {total / 1e6:8.2f} MB  best {best:8.3f} s of {args.repeat}"
              f"  {total / 1e6 / best:8.2f} MB/s  {best * 1e3 / len(files):9.3f} ms/msg"
              f"  (all: {', '.join(f'{t:.3f}' for t in times)})", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({
            "python": sys.version.split()[0], "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
