#!/usr/bin/env bash
# scripts/render_report.sh: renders an lqa-eval report.html to PNG in headless Chromium (Debian's
# `chromium` package), with the network disabled, so a person can look at the page as a
# browser draws it. Without REPORT_DIR, makes a sample report from random results first.
#   scripts/render_report.sh [REPORT_DIR] [OUT.png]
set -euo pipefail
BUILD=${BUILD:-build}
command -v chromium >/dev/null || { echo "render_report.sh: needs Debian's chromium (apt-get install chromium)" >&2; exit 2; }
dir=${1:-}
if [ -z "$dir" ]; then
    dir=$(mktemp -d)
    python3 - "$dir" <<'PY'
import json, random, sys
random.seed()
d = sys.argv[1]
for i, name in enumerate(["base", "lora", "longlora"]):
    lengths, depths = [1024, 2048, 4096, 8192], [0, 0.25, 0.5, 0.75, 1]
    strength = [0.2, 0.5, 0.9][i]
    cells = []
    for L in lengths:
        for dp in depths:
            ok = sum(random.random() < strength * (1.2 - L / 8192) for _ in range(5))
            cells.append({"length": L, "depth": dp, "trials": 5, "correct": ok, "accuracy": ok / 5, "sample": ""})
    points = [{"length": L, "tokens": 10000, "nll": 1, "ppl": 12 - i * 1.5 - (i * 0.8 + 0.2) * k + (2 - i) * 0.4 * k * k}
              for k, L in enumerate(lengths)]
    kinds = {k: {"n": 10, "em": random.random() * strength, "f1": random.random() * 0.3 + strength * 0.6,
                 "contained": strength} for k in ["section", "table", "definition", "multihop", "summary"]}
    by_len = {b: {"n": 8, "em": strength * f, "f1": strength * f + 0.05, "contained": strength * f + 0.1}
              for b, f in [("<=1024", 1), ("<=2048", 0.9), ("<=4096", 0.8), ("<=8192", 0.7), (">8192", 0.4)]}
    r = {"schema": "lqa-eval-results/1", "created": "2026-01-01T00:00:00Z", "host": "sample",
         "model": {"name": name, "dir": "models/base", "adapter": None if i == 0 else f"runs/{name}/final",
                   "config": {"dim": 256, "n_layers": 4}},
         "settings": {"ctx": 8192, "lengths": lengths, "trials": 5, "stride": 256},
         "tasks": {"qa": {"settings": {"split": "test"}, "n": 50, "em": strength * 0.5, "f1": strength * 0.7,
                          "contained": strength * 0.8, "by_kind": kinds, "by_length": by_len, "items": []},
                   "passkey": {"settings": {"filler": "paper", "trials": 5, "lengths": lengths, "depths": depths},
                               "accuracy": sum(c["accuracy"] for c in cells) / len(cells), "prompts": 100, "cells": cells},
                   "ppl": {"settings": {"split": "test", "stride": 256}, "documents": 3, "points": points}},
         "timing": {"wall_s": 100.0}}
    json.dump(r, open(f"{d}/{name}.json", "w"), indent=1)
PY
    "$BUILD/lqa-eval" report "$dir/base.json" "$dir/lora.json" "$dir/longlora.json" -o "$dir/report"
    dir="$dir/report"
fi
out=${2:-$dir/report.png}
html=$(realpath "$dir/report.html")
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
# --no-sandbox: CI containers run as root; the page has no scripts and the network is off
chromium --headless --no-sandbox --disable-gpu --user-data-dir="$profile" --proxy-server='127.0.0.1:9' \
    --proxy-bypass-list='<-loopback>' --hide-scrollbars --window-size=1200,4200 \
    --screenshot="$out" "file://$html" >/dev/null 2>&1
[ -s "$out" ] || { echo "render_report.sh: chromium wrote no image" >&2; exit 1; }
echo "$out"
