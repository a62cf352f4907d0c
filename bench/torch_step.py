#!/usr/bin/env python3
"""torch_step.py: the reference timing for bench/train.sh. Builds the same LLaMA model as an
lqa-sft model directory's config.json in plain PyTorch (RMSNorm, RoPE with linear scaling,
SwiGLU, GQA, LoRA on q,k,v,o with embedding and norms trainable = LoRA+, per-layer gradient
checkpointing), and times training steps (forward + backward + AdamW) on random tokens on the
given number of threads. Attention: full causal (softmax over a masked score matrix, as PyTorch
1.13 has no fused attention) or S2 (groups of ctx/4, half the heads shifted, as LongLoRA's
reference code does it). Prints one JSON line. Weights are random: only the time matters."""
import argparse
import json
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint


class RMSNorm(nn.Module):
    def __init__(self, d, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class LoRALinear(nn.Module):
    def __init__(self, d_in, d_out, r, alpha, lora):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(d_out, d_in) * 0.02, requires_grad=False)
        self.lora = lora
        if lora:
            self.A = nn.Parameter(torch.randn(r, d_in) / math.sqrt(d_in))
            self.B = nn.Parameter(torch.zeros(d_out, r))
            self.scale = alpha / r

    def forward(self, x):
        y = F.linear(x, self.weight)
        if self.lora:
            y = y + F.linear(F.linear(x, self.A), self.B) * self.scale
        return y


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


class Layer(nn.Module):
    def __init__(self, c, r, alpha, attn):
        super().__init__()
        d, H, KV = c["hidden_size"], c["num_attention_heads"], c["num_key_value_heads"]
        hd, f = d // H, c["intermediate_size"]
        self.H, self.KV, self.hd, self.attn = H, KV, hd, attn
        self.ln1 = RMSNorm(d, c["rms_norm_eps"])
        self.ln2 = RMSNorm(d, c["rms_norm_eps"])
        self.q = LoRALinear(d, H * hd, r, alpha, True)
        self.k = LoRALinear(d, KV * hd, r, alpha, True)
        self.v = LoRALinear(d, KV * hd, r, alpha, True)
        self.o = LoRALinear(H * hd, d, r, alpha, True)
        self.gate = LoRALinear(d, f, r, alpha, False)
        self.up = LoRALinear(d, f, r, alpha, False)
        self.down = LoRALinear(f, d, r, alpha, False)

    def attention(self, q, k, v):
        # q [B, H, T, hd], k/v [B, H, T, hd] (kv heads already repeated)
        B, H, T, hd = q.shape
        if self.attn == "s2":
            G = T // 4
            # LongLoRA's reference: shift half the heads by G/2, then attend within groups
            def shift(x):
                return torch.cat((x[:, : H // 2], x[:, H // 2:].roll(-G // 2, dims=2)), dim=1)
            q, k, v = shift(q), shift(k), shift(v)
            q = q.reshape(B, H, T // G, G, hd)
            k = k.reshape(B, H, T // G, G, hd)
            v = v.reshape(B, H, T // G, G, hd)
            n = G
        else:
            n = T
        mask = torch.full((n, n), float("-inf")).triu(1)
        s = q @ k.transpose(-1, -2) / math.sqrt(hd) + mask
        out = torch.softmax(s, dim=-1) @ v
        if self.attn == "s2":
            out = out.reshape(B, H, T, hd)
            out = torch.cat((out[:, : H // 2], out[:, H // 2:].roll(G // 2, dims=2)), dim=1)
        return out

    def forward(self, x, cos, sin):
        B, T, _ = x.shape
        h = self.ln1(x)
        q = self.q(h).view(B, T, self.H, self.hd).transpose(1, 2)
        k = self.k(h).view(B, T, self.KV, self.hd).transpose(1, 2)
        v = self.v(h).view(B, T, self.KV, self.hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        if self.KV != self.H:
            k = k.repeat_interleave(self.H // self.KV, dim=1)
            v = v.repeat_interleave(self.H // self.KV, dim=1)
        a = self.attention(q, k, v).transpose(1, 2).reshape(B, T, self.H * self.hd)
        x = x + self.o(a)
        h = self.ln2(x)
        return x + self.down(F.silu(self.gate(h)) * self.up(h))


class Model(nn.Module):
    def __init__(self, c, r, alpha, attn):
        super().__init__()
        self.embed = nn.Embedding(c["vocab_size"], c["hidden_size"])
        nn.init.normal_(self.embed.weight, std=0.02)
        self.layers = nn.ModuleList(Layer(c, r, alpha, attn) for _ in range(c["num_hidden_layers"]))
        self.norm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])
        self.head = nn.Parameter(torch.randn(c["vocab_size"], c["hidden_size"]) * 0.02, requires_grad=False)
        self.c = c

    def forward(self, tok, scale):
        T = tok.shape[1]
        hd = self.c["hidden_size"] // self.c["num_attention_heads"]
        inv = 1.0 / (self.c.get("rope_theta", 10000.0) ** (torch.arange(0, hd, 2).float() / hd))
        ang = torch.outer(torch.arange(T).float() / scale, inv)
        ang = torch.cat((ang, ang), dim=-1)
        cos, sin = ang.cos(), ang.sin()
        x = self.embed(tok)
        for layer in self.layers:
            x = checkpoint(layer, x, cos, sin)
        logits = F.linear(self.norm(x), self.head)
        return F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), tok[:, 1:].reshape(-1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--ctx", type=int, required=True)
    ap.add_argument("--attn", default="full", choices=["full", "s2"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=3)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    c = json.load(open(a.model + "/config.json"))
    c.setdefault("num_key_value_heads", c["num_attention_heads"])
    scale = max(1.0, a.ctx / c["max_position_embeddings"])
    m = Model(c, 8, 16, a.attn)
    opt = torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=2e-5, weight_decay=0.0)
    tok = torch.randint(0, c["vocab_size"], (1, a.ctx))
    times = []
    for s in range(a.steps + 1):
        t = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = m(tok, scale)
        loss.backward()
        opt.step()
        if s:
            times.append(time.perf_counter() - t)
    mean = sum(times) / len(times)
    print(json.dumps({"impl": "pytorch " + torch.__version__, "ctx": a.ctx, "attn": a.attn, "threads": a.threads,
                      "step_s_mean": mean, "step_s_best": min(times), "tokens_per_s": a.ctx / mean,
                      "loss": float(loss)}))


if __name__ == "__main__":
    main()
