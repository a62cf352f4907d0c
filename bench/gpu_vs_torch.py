#!/usr/bin/env python3
"""gpu_vs_torch.py: the PyTorch side of bench/gpu_vs_torch.sh. Times LoRA+ training steps of
Hugging Face transformers' LlamaForCausalLM + PEFT on one GPU, the way they are usually run:
random weights in bf16 (frozen), LoRA r 8 alpha 16 on q,k,v,o with the embedding and every norm
trainable (LoRA+), trainable tensors in fp32 with the forward under torch.autocast(bf16),
gradient checkpointing per layer (use_reentrant=False), AdamW (fused), SDPA attention
(FlashAttention-2 kernels inside PyTorch). Attention "full" is SDPA causal; "s2" is LongLoRA's
shifted sparse attention (groups of ctx/4, half the heads shifted by half a group, SDPA causal
inside each group: the reference code's roll form) registered as a transformers attention
function. No network: the model is built from a config, never downloaded.

One process per model: the timed configurations (ctx x attn) first, then (--probe) the longest
context that fits: one S2 step at each --probe-ctx in ascending order until the first
out-of-memory. Prints one JSON line per result on stdout:
  {"side": "torch", "model", "ctx", "attn", "ok", "tokens_per_s", "step_s", "peak_gib", "mfu", "error"}
MFU counts the same model FLOPs for both sides (mfu_flops_per_token below; lqa-sft's is
lqa_model_flops_per_token in model/flops.c), over the dense bf16 peak in PEAK_TFLOPS (which
gpu_vs_torch.sh sets from the GPU's name; without it no MFU). The script writes the table.

--dry-run prints the plan and the FLOP counts without importing torch (tested without a GPU)."""
import argparse
import json
import os
import sys
import time

# The shapes of lqa-sft's presets (model/presets.c) with LLaMA's 32000-token vocabulary.
MODELS = {
    "tinyllama-1.1b": dict(hidden_size=2048, intermediate_size=5632, num_hidden_layers=22,
                           num_attention_heads=32, num_key_value_heads=4, vocab_size=32000),
    "llama2-7b": dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                      num_attention_heads=32, num_key_value_heads=32, vocab_size=32000),
}
GROUP_RATIO = 0.25


def param_count(c):
    """Parameters that do matrix work per token: every linear of every layer and the lm_head (the
    embedding is a lookup). LoRA r 8 adds < 0.1 % and is left out."""
    d, f, L, H, KV = (c["hidden_size"], c["intermediate_size"], c["num_hidden_layers"],
                      c["num_attention_heads"], c["num_key_value_heads"])
    hd = d // H
    layer = d * H * hd + 2 * d * KV * hd + H * hd * d + 3 * d * f
    return L * layer + c["vocab_size"] * d


def mfu_flops_per_token(c, ctx, attn):
    """Model FLOPs per trained token, the usual MFU convention (PaLM's): 6 N for the matmuls
    (forward 2N, backward 4N; recompute not counted) plus the attention's score and value
    products, 6 L d T_seen for causal attention over T_seen keys on average x 2 (QK^T and PV) / 2
    (causal): full attention sees ctx keys, S2 a group of ctx/4."""
    seen = ctx if attn == "full" else ctx * GROUP_RATIO
    return 6 * param_count(c) + 6 * c["num_hidden_layers"] * c["hidden_size"] * seen


def peak_flops():
    tf = os.environ.get("PEAK_TFLOPS")
    return float(tf) * 1e12 if tf else None


def emit(**kw):
    print(json.dumps(kw), flush=True)


# ---- torch side (imported lazily: --dry-run needs no torch) ----

def s2_attention_factory(torch, F):
    def s2_attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
        # query [B, H, T, hd]; key/value [B, KV, T, hd]
        B, H, T, hd = query.shape
        rep = H // key.shape[1]
        if rep > 1:
            key = key.repeat_interleave(rep, dim=1)
            value = value.repeat_interleave(rep, dim=1)
        G = int(T * GROUP_RATIO)
        half = H // 2

        def shift(x, s):
            return torch.cat((x[:, :half], x[:, half:].roll(s, dims=2)), dim=1)

        def group(x):  # [B, H, T, hd] -> [B * T/G, H, G, hd]
            return x.view(B, H, T // G, G, hd).transpose(1, 2).reshape(B * (T // G), H, G, hd)

        q, k, v = (group(shift(x, -(G // 2))) for x in (query, key, value))
        o = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=scaling)
        o = o.view(B, T // G, H, G, hd).transpose(1, 2).reshape(B, H, T, hd)
        o = shift(o, G // 2)
        return o.transpose(1, 2).contiguous(), None

    return s2_attention


def build(model_name, max_ctx):
    import torch
    import torch.nn.functional as F
    import transformers
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    s2_ok = True
    try:
        from transformers import AttentionInterface
        AttentionInterface.register("s2_sdpa", s2_attention_factory(torch, F))
        try:  # newer transformers build masks per implementation: S2 needs none (causal inside groups)
            from transformers.masking_utils import AttentionMaskInterface, sdpa_mask
            AttentionMaskInterface.register("s2_sdpa", sdpa_mask)
        except ImportError:
            pass
    except ImportError:
        s2_ok = False  # transformers < 4.48: no attention registry
    cfg = LlamaConfig(**MODELS[model_name], max_position_embeddings=max_ctx, rope_theta=10000.0,
                      rms_norm_eps=1e-5, tie_word_embeddings=False, attn_implementation="sdpa")
    torch.manual_seed(0)
    prev = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    with torch.device("cuda"):
        model = LlamaForCausalLM(cfg)
    torch.set_default_dtype(prev)
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.config.use_cache = False
    lora = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"])
    model = get_peft_model(model, lora)
    for name, p in model.named_parameters():  # LoRA+: embedding and norms train too
        if "embed_tokens" in name or "norm" in name or "lora_" in name:
            p.requires_grad_(True)
            p.data = p.data.float()  # fp32 master weights for what trains
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-5, fused=True)
    return torch, transformers.__version__, model, opt, s2_ok


def step(torch, model, opt, ctx, attn):
    base = model.get_base_model()
    base.config._attn_implementation = "sdpa" if attn == "full" else "s2_sdpa"
    ids = torch.randint(0, base.config.vocab_size, (1, ctx), device="cuda")
    with torch.autocast("cuda", dtype=torch.bfloat16):
        loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    return loss


def run(args):
    import torch
    t_build = time.time()
    torch_, tv, model, opt, s2_ok = build(args.model, max(args.ctx + args.probe_ctx))
    gpu = torch.cuda.get_device_name(0)
    peak = peak_flops()
    c = MODELS[args.model]
    print(f"# torch {torch.__version__}, transformers {tv}, GPU {gpu}, model built in {time.time() - t_build:.1f}s",
          file=sys.stderr, flush=True)
    deadline = time.time() + args.budget

    def one(ctx, attn, steps, warmup):
        if attn == "s2" and not s2_ok:
            return dict(ok=False, error="transformers has no AttentionInterface (< 4.48): no S2")
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        try:
            for _ in range(warmup):
                step(torch, model, opt, ctx, attn)
            torch.cuda.synchronize()
            t0 = time.time()
            for _ in range(steps):
                step(torch, model, opt, ctx, attn)
            torch.cuda.synchronize()
            dt = (time.time() - t0) / steps
        except torch.cuda.OutOfMemoryError:
            opt.zero_grad(set_to_none=True)
            return dict(ok=False, error="out of memory")
        tps = ctx / dt
        mfu = mfu_flops_per_token(c, ctx, attn) * tps / peak if peak else None
        return dict(ok=True, tokens_per_s=round(tps, 1), step_s=round(dt, 3),
                    peak_gib=round(torch.cuda.max_memory_allocated() / 2**30, 2),
                    mfu=round(mfu, 4) if mfu is not None else None)

    for ctx in args.ctx:
        for attn in args.attn:
            if time.time() > deadline:
                emit(side="torch", model=args.model, ctx=ctx, attn=attn, ok=False, error="skipped: time budget")
                continue
            emit(side="torch", model=args.model, ctx=ctx, attn=attn, gpu=gpu, **one(ctx, attn, args.steps, 1))
    for ctx in sorted(args.probe_ctx):
        if time.time() > deadline:
            emit(side="torch", model=args.model, ctx=ctx, attn="s2", probe=True, ok=False, error="skipped: time budget")
            break
        r = one(ctx, "s2", 1, 0)
        emit(side="torch", model=args.model, ctx=ctx, attn="s2", probe=True, gpu=gpu, **r)
        if not r["ok"]:
            break


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", choices=sorted(MODELS), required=True)
    ap.add_argument("--ctx", type=lambda s: [int(x) for x in s.split(",")], default=[8192, 32768])
    ap.add_argument("--attn", type=lambda s: s.split(","), default=["full", "s2"])
    ap.add_argument("--steps", type=int, default=2, help="timed steps per configuration (after one warm-up)")
    ap.add_argument("--probe-ctx", type=lambda s: [int(x) for x in s.split(",") if x], default=[],
                    help="contexts to try, ascending, one S2 step each, until one does not fit")
    ap.add_argument("--budget", type=float, default=240, help="seconds; configurations past it are skipped")
    ap.add_argument("--dry-run", action="store_true")
    args = ap.parse_args()
    for ctx in args.ctx + args.probe_ctx:
        g = ctx * GROUP_RATIO
        if g != int(g) or int(g) % 2 or ctx % int(g):
            ap.error(f"ctx {ctx}: S2 needs ctx * {GROUP_RATIO} to be an even integer dividing ctx")
    if args.dry_run:
        c = MODELS[args.model]
        for ctx in args.ctx:
            for attn in args.attn:
                print(f"torch {args.model} ctx {ctx} {attn}: {args.steps} timed steps; "
                      f"{mfu_flops_per_token(c, ctx, attn) / 1e9:.2f} GFLOP/token for MFU")
        if args.probe_ctx:
            print(f"torch {args.model} longest context: one S2 step at {sorted(args.probe_ctx)} until out of memory")
        print(f"params doing matmul work: {param_count(c) / 1e9:.3f} G")
        return
    run(args)


if __name__ == "__main__":
    main()
