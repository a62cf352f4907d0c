/* infer.c: KV-cache inference over the trainer/model.h parameter layout, CPU, OpenBLAS GEMMs.
 * Tokens are processed in chunks of up to CHUNK rows: every projection of a chunk is one GEMM,
 * and attention of a chunk against the cache is two GEMMs per head (scores = Q K^T, out = P V)
 * with the causal mask applied in between. Decoding is the same path with one row, so a new
 * token costs O(context) in attention and O(1) elsewhere. */
#include "eval/infer.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "common/progress.h"

#define CHUNK 256
#define N_LORA_TARGETS 7   /* q, k, v, o, gate, up, down: the order of model.h's LoRA layout */

typedef struct layer_weights {
    const float *attn_norm, *mlp_norm;
    const float *w[N_LORA_TARGETS];                     /* q, k, v, o, gate, up, down */
    const float *lora_a[N_LORA_TARGETS], *lora_b[N_LORA_TARGETS];   /* NULL when not adapted */
} layer_weights;

struct lqa_infer {
    const lqa_model *m;
    lqa_config c;
    int max_len, len, threads, omp_threads;
    int hd, qdim, kvdim;
    int in_dim[N_LORA_TARGETS], out_dim[N_LORA_TARGETS];
    float lora_scale;
    double *inv_freq;                  /* RoPE theta^(-2j/hd), j < hd/2 */
    const float *embed, *final_norm, *lm_head;
    layer_weights *layers;
    float *kcache, *vcache;            /* [L][KV][max_len][hd]: each head's keys contiguous */
    float *x, *xn, *q, *k, *v, *att, *tmp, *gate, *up, *lora_t, *scores, *logits;
    double prefill_s, decode_s;
    long prefill_tok, decode_tok;
};

/* Points every weight at its place in m->params / m->lora, following model.h's layout, and
 * checks that the sizes add up to what the model holds. */
static void map_weights(lqa_infer *s) {
    const lqa_config *c = &s->c;
    const lqa_model *m = s->m;
    size_t D = (size_t)c->dim, F = (size_t)c->hidden_dim, V = (size_t)c->vocab_size;
    int in[N_LORA_TARGETS] = {c->dim, c->dim, c->dim, s->qdim, c->dim, c->dim, c->hidden_dim};
    int out[N_LORA_TARGETS] = {s->qdim, s->kvdim, s->kvdim, c->dim, c->hidden_dim, c->hidden_dim, c->dim};
    memcpy(s->in_dim, in, sizeof in);
    memcpy(s->out_dim, out, sizeof out);
    size_t off = 0, loff = 0;
    s->embed = m->params;
    off += V * D;
    s->layers = lqa_calloc((size_t)c->n_layers, sizeof(layer_weights));
    for (int l = 0; l < c->n_layers; l++) {
        layer_weights *lw = &s->layers[l];
        lw->attn_norm = m->params + off;
        off += D;
        for (int t = 0; t < 4; t++) {
            lw->w[t] = m->params + off;
            off += (size_t)in[t] * out[t];
        }
        lw->mlp_norm = m->params + off;
        off += D;
        for (int t = 4; t < 7; t++) {
            lw->w[t] = m->params + off;
            off += (size_t)in[t] * out[t];
        }
        for (int t = 0; t < N_LORA_TARGETS; t++) {
            if (!m->lora || !(m->lora_targets & (1 << t))) continue;
            lw->lora_a[t] = m->lora + loff;
            loff += (size_t)m->lora_rank * in[t];
            lw->lora_b[t] = m->lora + loff;
            loff += (size_t)out[t] * m->lora_rank;
        }
    }
    s->final_norm = m->params + off;
    off += D;
    s->lm_head = c->tie_embeddings ? s->embed : m->params + off;
    if (!c->tie_embeddings) off += V * D;
    (void)F;
    lqaCheck(off == m->n_params, "model holds %zu parameters, its config implies %zu", m->n_params, off);
    lqaCheck(!m->lora || loff == m->n_lora, "adapter holds %zu parameters, its config implies %zu", m->n_lora, loff);
    s->lora_scale = m->lora ? m->lora_alpha / (float)m->lora_rank : 0.0f;
}

lqa_infer *lqa_infer_new(const lqa_model *m, int max_len, int threads, lqa_err *err) {
    const lqa_config *c = &m->cfg;
    if (max_len <= 0) {
        lqa_err_set(err, "context length %d: expected a positive number of tokens", max_len);
        return NULL;
    }
    if (max_len > c->max_pos) {
        lqa_err_set(err, "context length %d is longer than the model supports (max_position_embeddings %d; "
                    "use a model trained or merged for a longer context)", max_len, c->max_pos);
        return NULL;
    }
    lqa_infer *s = lqa_calloc(1, sizeof *s);
    s->m = m;
    s->c = *c;
    s->max_len = max_len;
    s->threads = threads;
    s->omp_threads = threads > 0 ? threads : omp_get_max_threads();
    s->hd = c->dim / c->n_heads;
    s->qdim = s->hd * c->n_heads;
    s->kvdim = s->hd * c->n_kv_heads;
    map_weights(s);
    s->inv_freq = lqa_malloc(sizeof(double) * (size_t)(s->hd / 2 + 1));
    rope_spec rs = lqa_config_rope(c);
    rope_inv_freq(s->inv_freq, s->hd, &rs);
    size_t cache = (size_t)c->n_layers * max_len * s->kvdim;
    s->kcache = lqa_malloc(cache * sizeof(float));
    s->vcache = lqa_malloc(cache * sizeof(float));
    size_t wide = (size_t)(s->qdim > c->dim ? s->qdim : c->dim);
    s->x = lqa_malloc(CHUNK * (size_t)c->dim * sizeof(float));
    s->xn = lqa_malloc(CHUNK * wide * sizeof(float));
    s->q = lqa_malloc(CHUNK * (size_t)s->qdim * sizeof(float));
    s->k = lqa_malloc(CHUNK * (size_t)s->kvdim * sizeof(float));
    s->v = lqa_malloc(CHUNK * (size_t)s->kvdim * sizeof(float));
    s->att = lqa_malloc(CHUNK * (size_t)s->qdim * sizeof(float));
    s->tmp = lqa_malloc(CHUNK * wide * sizeof(float));
    s->gate = lqa_malloc(CHUNK * (size_t)c->hidden_dim * sizeof(float));
    s->up = lqa_malloc(CHUNK * (size_t)c->hidden_dim * sizeof(float));
    s->lora_t = lqa_malloc(CHUNK * (size_t)(m->lora_rank > 0 ? m->lora_rank : 1) * sizeof(float));
    s->scores = lqa_malloc(CHUNK * (size_t)max_len * sizeof(float));
    s->logits = lqa_malloc(CHUNK * (size_t)c->vocab_size * sizeof(float));
    return s;
}

void lqa_infer_free(lqa_infer *s) {
    if (!s) return;
    float *bufs[] = {s->kcache, s->vcache, s->x, s->xn, s->q, s->k, s->v, s->att, s->tmp, s->gate, s->up,
                     s->lora_t, s->scores, s->logits};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
    free(s->layers);
    free(s->inv_freq);
    free(s);
}

void lqa_infer_reset(lqa_infer *s) { s->len = 0; }
int lqa_infer_len(const lqa_infer *s) { return s->len; }

void lqa_infer_timing(const lqa_infer *s, double *prefill_s, long *prefill_tok, double *decode_s, long *decode_tok) {
    *prefill_s = s->prefill_s;
    *prefill_tok = s->prefill_tok;
    *decode_s = s->decode_s;
    *decode_tok = s->decode_tok;
}

int lqa_argmax(const float *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

/* y[n,out] = x[n,in] W^T (+ scale (x A^T) B^T when the target is adapted: LoRA kept unmerged). */
static void linear(lqa_infer *s, const layer_weights *lw, int t, const float *x, int n, float *y) {
    int in = s->in_dim[t], out = s->out_dim[t], r = s->m->lora_rank;
    if (n == 1)   /* decoding: a matrix-vector product (GEMM's M = 1 path is slower in OpenBLAS) */
        cblas_sgemv(CblasRowMajor, CblasNoTrans, out, in, 1.0f, lw->w[t], in, x, 1, 0.0f, y, 1);
    else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, out, in, 1.0f, x, in, lw->w[t], in, 0.0f, y, out);
    if (!lw->lora_a[t]) return;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, r, in, 1.0f, x, in, lw->lora_a[t], in, 0.0f, s->lora_t, r);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, out, r, s->lora_scale, s->lora_t, r, lw->lora_b[t], r,
                1.0f, y, out);
}

static void rmsnorm(const float *x, const float *w, int n, int dim, float eps, float *y) {
    for (int i = 0; i < n; i++) {
        const float *xi = x + (size_t)i * dim;
        double ss = 0;
        for (int j = 0; j < dim; j++) ss += (double)xi[j] * xi[j];
        float inv = 1.0f / sqrtf((float)(ss / dim) + eps);
        for (int j = 0; j < dim; j++) y[(size_t)i * dim + j] = xi[j] * inv * w[j];
    }
}

/* HF LLaMA rotary embedding (rotate_half: pairs i and i + hd/2), positions divided by the
 * linear rope_scaling factor (position interpolation). */
static void rope(float *x, int n, int n_heads, int hd, int pos0, const double *inv_freq, float scale) {
    int half = hd / 2;
    for (int i = 0; i < n; i++) {
        double p = (double)(pos0 + i) / scale;
        for (int j = 0; j < half; j++) {
            float cs = (float)cos(p * inv_freq[j]), sn = (float)sin(p * inv_freq[j]);
            for (int h = 0; h < n_heads; h++) {
                float *v = x + (size_t)i * n_heads * hd + (size_t)h * hd;
                float a = v[j], b = v[j + half];
                v[j] = a * cs - b * sn;
                v[j + half] = b * cs + a * sn;
            }
        }
    }
}

/* Causal attention of n new rows (positions pos0..pos0+n-1) against cache rows 0..pos0+n-1. */
static void attention(lqa_infer *s, int l, int n, int pos0) {
    int hd = s->hd, H = s->c.n_heads, group = H / s->c.n_kv_heads, kend = pos0 + n;
    const float *kc = s->kcache + (size_t)l * s->max_len * s->kvdim;   /* this layer's [KV][max_len][hd] */
    const float *vc = s->vcache + (size_t)l * s->max_len * s->kvdim;
    float scale = 1.0f / sqrtf((float)hd);
    for (int h = 0; h < H; h++) {
        int kvh = h / group;
        const float *kh = kc + (size_t)kvh * s->max_len * hd, *vh = vc + (size_t)kvh * s->max_len * hd;
        if (n == 1)
            cblas_sgemv(CblasRowMajor, CblasNoTrans, kend, hd, scale, kh, hd, s->q + (size_t)h * hd, 1, 0.0f,
                        s->scores, 1);
        else
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, kend, hd, scale, s->q + (size_t)h * hd, s->qdim,
                        kh, hd, 0.0f, s->scores, kend);
        /* threads only where the rows are many: waking a team costs more than a short softmax */
        #pragma omp parallel for schedule(static) num_threads(s->omp_threads) if ((long)n * kend > (1L << 16))
        for (int i = 0; i < n; i++) {
            float *row = s->scores + (size_t)i * kend;
            int last = pos0 + i;   /* row i may see keys 0..last */
            float mx = row[0];
            for (int j = 1; j <= last; j++) mx = row[j] > mx ? row[j] : mx;
            double sum = 0;
            for (int j = 0; j <= last; j++) {
                row[j] = expf(row[j] - mx);
                sum += row[j];
            }
            float inv = (float)(1.0 / sum);
            for (int j = 0; j <= last; j++) row[j] *= inv;
            for (int j = last + 1; j < kend; j++) row[j] = 0.0f;
        }
        if (n == 1)
            cblas_sgemv(CblasRowMajor, CblasTrans, kend, hd, 1.0f, vh, hd, s->scores, 1, 0.0f, s->att + (size_t)h * hd, 1);
        else
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, hd, kend, 1.0f, s->scores, kend, vh, hd, 0.0f,
                        s->att + (size_t)h * hd, s->qdim);
    }
}

/* Appends the chunk's keys and values (rows [n][KV*hd]) to the head-major cache. */
static void store_kv(lqa_infer *s, int l, int n, int pos0) {
    int hd = s->hd;
    for (int kvh = 0; kvh < s->c.n_kv_heads; kvh++) {
        size_t base = (((size_t)l * s->c.n_kv_heads + kvh) * s->max_len + pos0) * hd;
        for (int i = 0; i < n; i++) {
            memcpy(s->kcache + base + (size_t)i * hd, s->k + (size_t)i * s->kvdim + (size_t)kvh * hd, hd * sizeof(float));
            memcpy(s->vcache + base + (size_t)i * hd, s->v + (size_t)i * s->kvdim + (size_t)kvh * hd, hd * sizeof(float));
        }
    }
}

/* One chunk of n <= CHUNK tokens through every layer; logits of all its rows into s->logits. */
static void forward_chunk(lqa_infer *s, const int32_t *tokens, int n) {
    const lqa_config *c = &s->c;
    int D = c->dim, F = c->hidden_dim, pos0 = s->len;
    for (int i = 0; i < n; i++) memcpy(s->x + (size_t)i * D, s->embed + (size_t)tokens[i] * D, D * sizeof(float));
    for (int l = 0; l < c->n_layers; l++) {
        const layer_weights *lw = &s->layers[l];
        rmsnorm(s->x, lw->attn_norm, n, D, c->rms_eps, s->xn);
        linear(s, lw, 0, s->xn, n, s->q);
        linear(s, lw, 1, s->xn, n, s->k);
        linear(s, lw, 2, s->xn, n, s->v);
        rope(s->q, n, c->n_heads, s->hd, pos0, s->inv_freq, c->rope_scale);
        rope(s->k, n, c->n_kv_heads, s->hd, pos0, s->inv_freq, c->rope_scale);
        store_kv(s, l, n, pos0);
        attention(s, l, n, pos0);
        linear(s, lw, 3, s->att, n, s->tmp);
        for (size_t i = 0; i < (size_t)n * D; i++) s->x[i] += s->tmp[i];
        rmsnorm(s->x, lw->mlp_norm, n, D, c->rms_eps, s->xn);
        linear(s, lw, 4, s->xn, n, s->gate);
        linear(s, lw, 5, s->xn, n, s->up);
        for (size_t i = 0; i < (size_t)n * F; i++) {
            float g = s->gate[i];
            s->gate[i] = g / (1.0f + expf(-g)) * s->up[i];   /* SwiGLU: silu(gate) * up */
        }
        linear(s, lw, 6, s->gate, n, s->tmp);
        for (size_t i = 0; i < (size_t)n * D; i++) s->x[i] += s->tmp[i];
    }
    rmsnorm(s->x, s->final_norm, n, D, c->rms_eps, s->xn);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, c->vocab_size, D, 1.0f, s->xn, D, s->lm_head, D, 0.0f,
                s->logits, c->vocab_size);
    s->len += n;
}

static int check_tokens(const lqa_infer *s, const int32_t *tokens, int n, lqa_err *err) {
    if (s->len + n > s->max_len)
        return lqa_err_set(err, "sequence of %d tokens is longer than the evaluation context of %d tokens",
                           s->len + n, s->max_len);
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= s->c.vocab_size)
            return lqa_err_set(err, "token %d at position %d is outside the vocabulary [0, %d)", tokens[i], i,
                               s->c.vocab_size);
    return 0;
}

int lqa_infer_feed(lqa_infer *s, const int32_t *tokens, int n, float *logits_all, float *logits_last, lqa_err *err) {
    if (check_tokens(s, tokens, n, err)) return -1;
    if (s->threads > 0) openblas_set_num_threads(s->threads);
    double t0 = lqa_now();
    size_t V = (size_t)s->c.vocab_size;
    for (int c0 = 0; c0 < n; c0 += CHUNK) {
        int nc = n - c0 < CHUNK ? n - c0 : CHUNK;
        forward_chunk(s, tokens + c0, nc);
        if (logits_all) memcpy(logits_all + (size_t)c0 * V, s->logits, (size_t)nc * V * sizeof(float));
        if (logits_last && c0 + nc == n) memcpy(logits_last, s->logits + (size_t)(nc - 1) * V, V * sizeof(float));
    }
    double dt = lqa_now() - t0;
    if (n == 1) {
        s->decode_s += dt;
        s->decode_tok += 1;
    } else {
        s->prefill_s += dt;
        s->prefill_tok += n;
    }
    return 0;
}

int lqa_infer_generate(lqa_infer *s, const int32_t *prompt, int n_prompt, int max_new, int eos_id, int32_t *out,
                       lqa_err *err) {
    size_t V = (size_t)s->c.vocab_size;
    float *logits = lqa_malloc(V * sizeof(float));
    lqa_infer_reset(s);
    int rc = lqa_infer_feed(s, prompt, n_prompt, NULL, logits, err), n_out = 0;
    while (rc == 0 && n_out < max_new) {
        int32_t next = lqa_argmax(logits, (int)V);
        out[n_out++] = next;
        if (next == eos_id || n_out == max_new) break;
        if (s->len >= s->max_len) break;   /* context full: stop as at the length limit */
        rc = lqa_infer_feed(s, &next, 1, NULL, logits, err);
    }
    free(logits);
    return rc == 0 ? n_out : -1;
}

/* -log softmax(row)[target], in double. */
static double token_nll(const float *row, int V, int target) {
    float mx = row[0];
    for (int j = 1; j < V; j++) mx = row[j] > mx ? row[j] : mx;
    double sum = 0;
    for (int j = 0; j < V; j++) sum += exp((double)row[j] - mx);
    return log(sum) + mx - row[target];
}

int lqa_infer_nll(lqa_infer *s, const int32_t *tokens, int n, int from, double *nll, lqa_err *err) {
    lqa_infer_reset(s);
    if (check_tokens(s, tokens, n, err)) return -1;
    if (s->threads > 0) openblas_set_num_threads(s->threads);
    double t0 = lqa_now(), total = 0;
    int V = s->c.vocab_size;
    if (from < 1) from = 1;   /* token 0 has no prefix to be predicted from */
    for (int c0 = 0; c0 < n - 1; c0 += CHUNK) {
        int nc = n - 1 - c0 < CHUNK ? n - 1 - c0 : CHUNK;   /* the last token predicts nothing */
        forward_chunk(s, tokens + c0, nc);
        for (int i = 0; i < nc; i++) {
            int target = c0 + i + 1;
            if (target >= from) total += token_nll(s->logits + (size_t)i * V, V, tokens[target]);
        }
    }
    s->prefill_s += lqa_now() - t0;
    s->prefill_tok += n - 1;
    *nll = total;
    return 0;
}
