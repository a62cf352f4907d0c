#!/usr/bin/env python3
"""train_summary.py: turns the JSON lines of bench/train.sh into the Markdown of bench/RESULTS.md
("Train: speed and memory"). Usage: train_summary.py RESULTS.jsonl THREADS. Speeds are given
from the mean step time and from the best step time (the best is less exposed to other load on
a shared machine)."""
import datetime
import json
import os
import subprocess
import sys

rows = [json.loads(l) for l in open(sys.argv[1])]
threads = sys.argv[2]
ours = [r for r in rows if "impl" not in r]
s2, full, mem = ours[0], ours[1], ours[2:]
torch = {r["attn"]: r for r in rows if "impl" in r}
cpu = subprocess.run(["sh", "-c", "lscpu | sed -n 's/^Model name: *//p'"], capture_output=True, text=True).stdout.strip()


def best_tps(r):
    return r["ctx"] * r.get("micro_batch", 1) / r["step_s_best"]


print(f"Machine: {cpu}, {threads} threads, {datetime.date.today()}, "
      f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}. The machine was shared with other")
print("engineers' builds and tests while this ran: absolute numbers are noisy, ratios less so.\n")
print(f"Model: `lqa-sft init --preset demo` ({s2['params_m']:.1f} M parameters, vocab 8000), LoRA+ (r 8, q,k,v,o),")
print("gradient checkpointing, micro-batch 1, one step = forward + backward + AdamW, random tokens.\n")
print("| attention | ctx | tokens/s (mean step) | tokens/s (best step) | GFLOP/step | attention GFLOP/step | GFLOP/s (mean) | GFLOP/s (best) |")
print("|---|---|---|---|---|---|---|---|")
for r in (s2, full):
    print(f"| {r['attn']} | {r['ctx']} | {r['tokens_per_s']:.0f} | {best_tps(r):.0f} | {r['gflop_per_step']:.1f} | "
          f"{r['attn_gflop_per_step']:.1f} | {r['gflops']:.1f} | {r['gflop_per_step'] / r['step_s_best']:.1f} |")
flop = full["gflop_per_step"] / s2["gflop_per_step"]
attn = full["attn_gflop_per_step"] / s2["attn_gflop_per_step"]
print(f"\nS2-Attn / full speed-up: **{s2['tokens_per_s'] / full['tokens_per_s']:.2f}x** (mean steps), "
      f"**{best_tps(s2) / best_tps(full):.2f}x** (best steps); whole-step FLOP ratio {flop:.2f}x "
      f"(attention alone {attn:.2f}x).")
sq, lay = s2["sgemm_square_gflops"], s2["sgemm_layer_gflops"]
print(f"OpenBLAS sgemm in the same process and threads: {sq:.1f} GFLOP/s at 2048^3, {lay:.1f} GFLOP/s at the "
      f"model's MLP shape ({s2['ctx']}x688x256).")
for name, r in (("S2", s2), ("full", full)):
    mean, best = r["gflops"], r["gflop_per_step"] / r["step_s_best"]
    print(f"End to end, {name}: {mean:.1f} GFLOP/s mean, {best:.1f} best = {100 * mean / sq:.0f}% / "
          f"{100 * best / sq:.0f}% of square sgemm.")
print("\nPeak RSS of one process doing one S2-Attn training step (model, LoRA, gradients, optimizer, activations):\n")
print("| ctx | peak RSS MiB | MiB per 1k tokens over the 2k run | tokens/s |")
print("|---|---|---|---|")
base = mem[0]
for r in mem:
    slope = "" if r is base else f"{(r['peak_rss_mib'] - base['peak_rss_mib']) / ((r['ctx'] - base['ctx']) / 1024):.1f}"
    print(f"| {r['ctx']} | {r['peak_rss_mib']:.0f} | {slope} | {r['tokens_per_s']:.0f} |")
if torch:
    print("\nPyTorch (Debian python3-torch, same model, LoRA+, checkpointing, same threads, same run):\n")
    print("| attention | PyTorch tokens/s (mean / best) | lqa-sft tokens/s (mean / best) | lqa-sft / PyTorch (mean / best) |")
    print("|---|---|---|---|")
    for attn, r in (("full", full), ("s2", s2)):
        if attn in torch:
            t = torch[attn]
            tb = t["ctx"] / t["step_s_best"]
            print(f"| {attn} | {t['tokens_per_s']:.0f} / {tb:.0f} | {r['tokens_per_s']:.0f} / {best_tps(r):.0f} | "
                  f"**{r['tokens_per_s'] / t['tokens_per_s']:.2f}x** / **{best_tps(r) / tb:.2f}x** |")
    print(f"\n({next(iter(torch.values()))['impl']}; its attention builds the masked score matrix, LongLoRA's roll "
          "form for S2.)")
else:
    print("\nPyTorch: not importable on this machine, no comparison.")
