#!/usr/bin/env python3
"""hf_check.py: lqa against Hugging Face transformers and peft (skips unless both import).

1. Loss and gradients: tiny LLaMA models made by transformers (random weights, fp32) with
   RoPE settings written in transformers 5.x form (rope_parameters) and 4.x form (rope_theta +
   rope_scaling): default theta 5e5, a linear factor, llama3 scaling. For each, `lqa-sft grad
   --train full --attn full` on a random batch against transformers' loss.backward() (on
   transformers 4.x, which cannot read rope_parameters, lqa's 5.x-form model is compared with
   transformers on the same model in 4.x form).
2. The adapter: a tiny lqa pipeline (ingest, tokenizer, shards, init, 5 LoRA+ steps at twice the
   model's context, so position interpolation is on) and PeftModel.from_pretrained(base,
   run/final) alone, base config given the adapter's interpolation as docs/TRAINING.md says:
   loss and LoRA / embedding / norm gradients against `lqa-sft grad --adapter`.
3. The model folder: AutoTokenizer on `lqa-sft init`'s folder adds BOS and not EOS.

Usage: bench/hf_check.py [--build build]   (prints one line per check and a summary line)
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

try:
    import torch
    import transformers
    import peft
    from safetensors.torch import load_file
except ImportError as e:  # the check needs both libraries
    print(f"SKIP: {e} (pip install torch transformers peft)")
    sys.exit(0)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HF5 = int(transformers.__version__.split(".")[0]) >= 5
rows = []


def run(*args):
    r = subprocess.run(args, capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(f"{' '.join(args)} failed:\n{r.stderr[-3000:]}")
    return r


def rope_fields(theta, kind, form):
    """config.json RoPE keys for kind (None, ("linear", f) or ("llama3", f, lo, hi, orig))."""
    params = {"rope_type": "default"}
    if kind and kind[0] == "linear":
        params = {"rope_type": "linear", "factor": kind[1]}
    elif kind:
        params = {"rope_type": "llama3", "factor": kind[1], "low_freq_factor": kind[2],
                  "high_freq_factor": kind[3], "original_max_position_embeddings": kind[4]}
    if form == 5:
        return {"rope_parameters": dict(params, rope_theta=theta)}
    return {"rope_theta": theta, "rope_scaling": None if not kind else params}


def make_model(d, seed, tie=False):
    torch.manual_seed(seed)
    cfg = transformers.LlamaConfig(vocab_size=97, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                                   num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                                   tie_word_embeddings=tie, rms_norm_eps=1e-5)
    m = transformers.LlamaForCausalLM(cfg).float()
    with torch.no_grad():  # larger q/k so that RoPE angles move the loss
        for n, p in m.named_parameters():
            p.mul_(8.0 if ("q_proj" in n or "k_proj" in n or "embed" in n) else 1.0)
    m.save_pretrained(d, safe_serialization=True)


def set_rope(d, theta, kind, form):
    p = os.path.join(d, "config.json")
    c = json.load(open(p))
    for k in ("rope_theta", "rope_scaling", "rope_parameters"):
        c.pop(k, None)
    c.update(rope_fields(theta, kind, form))
    json.dump(c, open(p, "w"), indent=2)


def batch(vocab, B, T, seed):
    g = torch.Generator().manual_seed(seed)
    tok = torch.randint(0, vocab, (B, T), generator=g)
    mask = (torch.rand(B, T, generator=g) < 0.7).long()
    mask[:, 0] = 0
    return tok, mask


def hf_loss_grads(model, tok, mask):
    labels = tok.masked_fill(mask == 0, -100)
    model.zero_grad()
    out = model(input_ids=tok, labels=labels)
    out.loss.backward()
    return out.loss.item()


def lqa_grad(build, d, tok, mask, extra, work):
    bj = os.path.join(work, "batch.json")
    json.dump({"tokens": tok.tolist(), "loss_mask": mask.tolist()}, open(bj, "w"))
    out = os.path.join(work, "grads.safetensors")
    run(os.path.join(build, "lqa-sft"), "grad", "--model", d, "--batch", bj, "-o", out, "--attn", "full",
        "--ctx", str(tok.shape[1]), "--threads", "2", *extra)
    return load_file(out)


def rel(a, b):
    return (a - b).abs().max().item() / max(b.abs().max().item(), 1e-30)


def check_config(build, work, name, theta, kind, form, tie=False):
    d = os.path.join(work, f"{name} {form}")
    make_model(d, 1, tie)
    set_rope(d, theta, kind, form)
    hf_dir = d
    if form == 5 and not HF5:  # 4.x cannot read rope_parameters: it gets the same model in its own form
        hf_dir = d + " as 4.x"
        make_model(hf_dir, 1, tie)
        set_rope(hf_dir, theta, kind, 4)
    model = transformers.AutoModelForCausalLM.from_pretrained(hf_dir, torch_dtype=torch.float32,
                                                              attn_implementation="eager")
    tok, mask = batch(97, 2, 48, 7)
    hl = hf_loss_grads(model, tok, mask)
    g = lqa_grad(build, d, tok, mask, ["--train", "full"], work)
    ll = g["loss"].reshape(-1)[0].item()
    worst = 0.0
    for n, p in model.named_parameters():
        if n in g and p.grad is not None:
            worst = max(worst, rel(g[n].float(), p.grad))
    ok = abs(ll - hl) <= 1e-5 * abs(hl) and worst < 1e-3
    label = "5.x rope_parameters" if form == 5 else "4.x rope_theta/rope_scaling"
    if hf_dir != d:
        label += " vs HF on the 4.x form"
    rows.append((f"{name} ({label})", hl, ll,
                 abs(ll - hl) / abs(hl), worst, ok))


def check_adapter(build, work, tie=False):
    b = lambda t: os.path.join(build, t)  # noqa: E731
    db, tokm, sh = os.path.join(work, "s.db"), os.path.join(work, "tok.model"), os.path.join(work, "shards")
    if not os.path.exists(sh):
        run(b("lqa-ingest"), "add", "--db", db, os.path.join(ROOT, "build", "corpus", "jargon"))
        run(b("lqa-build"), "tokenizer", "--db", db, "--vocab-size", "600", "-o", tokm)
        run(b("lqa-build"), "shards", "--db", db, "--tokenizer", tokm, "--kind", "lm", "--max-len", "256", "-o", sh)
    tag = "-tied" if tie else ""
    model, rundir = os.path.join(work, "base" + tag), os.path.join(work, "run" + tag)
    run(b("lqa-sft"), "init", "--preset", "tiny", "--ctx", "128", "--tokenizer", tokm, "-o", model,
        *(["--tie"] if tie else []))
    run(b("lqa-sft"), "train", "--model", model, "--data", sh, "--out", rundir, "--ctx", "256", "--steps", "5",
        "--lr", "0.01", "--threads", "2")
    final = os.path.join(rundir, "final")
    # docs/TRAINING.md's snippet
    from peft import PeftModel
    scale = json.load(open(os.path.join(final, "lqa_training.json")))["rope_scale"]
    config = transformers.AutoConfig.from_pretrained(model)
    if scale != 1:
        if getattr(config, "rope_parameters", None) is not None:  # transformers 5.x
            config.rope_parameters = dict(config.rope_parameters, rope_type="linear", factor=scale)
        else:
            config.rope_scaling = {"type": "linear", "factor": scale}
        config.max_position_embeddings = int(config.max_position_embeddings * scale)
    base = transformers.AutoModelForCausalLM.from_pretrained(model, config=config, torch_dtype=torch.float32,
                                                             attn_implementation="eager")
    pm = PeftModel.from_pretrained(base, final, is_trainable=True)
    # the trained embedding is the adapter's, not the base's
    st = load_file(os.path.join(final, "adapter_model.safetensors"))
    emb_ok = torch.equal(pm.get_input_embeddings().weight.detach(), st["base_model.model.model.embed_tokens.weight"])
    tok, mask = batch(600, 1, 256, 11)
    hl = hf_loss_grads(pm, tok, mask)
    g = lqa_grad(build, model, tok, mask, ["--adapter", final, "--train", "lora+"], work)
    ll = g["loss"].reshape(-1)[0].item()
    worst, n_cmp = 0.0, 0
    for n, p in pm.named_parameters():
        if p.grad is None:
            continue
        key = n.replace(".default", "").replace(".modules_to_save", "").replace("base_model.model.", "", 1)
        cand = [k for k in (key, n.replace(".default", "")) if k in g]
        if cand:
            worst, n_cmp = max(worst, rel(g[cand[0]].float(), p.grad)), n_cmp + 1
    ok = emb_ok and abs(ll - hl) <= 1e-5 * abs(hl) and worst < 1e-3 and n_cmp > 0
    rows.append((f"PeftModel.from_pretrained(base{tag}, run/final), rope x{scale:g}, {n_cmp} grads, embedding from "
                 f"adapter: {emb_ok}", hl, ll, abs(ll - hl) / abs(hl), worst, ok))
    # the merged model alone in transformers: the same loss as base + adapter
    merged = os.path.join(work, "merged" + tag)
    run(b("lqa-sft"), "merge", "--model", model, "--adapter", final, "-o", merged)
    mm = transformers.AutoModelForCausalLM.from_pretrained(merged, torch_dtype=torch.float32,
                                                           attn_implementation="eager")
    with torch.no_grad():
        ml = mm(input_ids=tok, labels=tok.masked_fill(mask == 0, -100)).loss.item()
    rows.append((f"lqa-sft merge{tag}, loaded by AutoModelForCausalLM alone, against the PEFT model", hl, ml,
                 abs(ml - hl) / abs(hl), 0.0, abs(ml - hl) <= 1e-5 * abs(hl)))
    if tie:
        return
    # the tokenizer folder: BOS added, EOS not
    try:
        t = transformers.AutoTokenizer.from_pretrained(model)
        ids = t("the quick brown fox")["input_ids"]
        ok = ids[0] == t.bos_token_id and ids[-1] != t.eos_token_id
        rows.append((f"AutoTokenizer ({type(t).__name__}) on init's folder: BOS first, no EOS: {ids[:3]}...", 0, 0, 0,
                     0, ok))
    except Exception as e:  # noqa: BLE001
        rows.append((f"AutoTokenizer on init's folder: {type(e).__name__}: {str(e)[:60]}", 0, 0, 0, 0, False))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    a = ap.parse_args()
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as work:
        for form in (5, 4):
            check_config(a.build, work, "theta 5e5", 5e5, None, form)
            check_config(a.build, work, "theta 5e5 linear x4", 5e5, ("linear", 4.0), form)
            check_config(a.build, work, "llama3 x8 (lo 1, hi 4, orig 32)", 5e5, ("llama3", 8.0, 1.0, 4.0, 32), form)
            check_config(a.build, work, "llama3 x8 tied", 1e4, ("llama3", 8.0, 1.0, 4.0, 16), form, tie=True)
        check_adapter(a.build, work)
        check_adapter(a.build, work, tie=True)
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, peft {peft.__version__}")
    print(f"{'check':<95} {'HF loss':>10} {'lqa loss':>10} {'rel diff':>9} {'max grad rel':>12}  ok")
    for name, hl, ll, d, g, ok in rows:
        print(f"{name:<95} {hl:>10.6f} {ll:>10.6f} {d:>9.1e} {g:>12.1e}  {'yes' if ok else 'NO'}")
    bad = sum(not r[-1] for r in rows)
    print(f"{len(rows) - bad} passed, {bad} failed")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
