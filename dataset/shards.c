/* shards.c: shard file writer and validating reader (format in shards.h and docs/FORMATS.md).
 * All integers are little-endian; helpers below write them byte by byte. */
#include "dataset/shards.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "common/fileio.h"
#include "common/hash.h"

/* Fuzzing builds (tests/fuzz, the libFuzzer convention) accept bad checksums so the fuzzer can
 * reach the parsers behind them; every other check still runs. */
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
#define CHECKSUM_BAD(have, want) ((void)(have), (void)(want), 0)
#else
#define CHECKSUM_BAD(have, want) ((have) != (want))
#endif

/* ---- little-endian helpers ---- */
static void put_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void put_u64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t get_u32(const uint8_t *p) {
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}
static uint64_t get_u64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

const char *lqa_shard_kind_name(uint32_t kind) {
    return kind == LQA_KIND_SFT ? "sft" : kind == LQA_KIND_LM ? "lm" : "?";
}

void lqa_record_free(lqa_record *r) {
    free(r->tokens);
    free(r->loss_mask);
    free(r->segment_ids);
    free(r->segments);
    free(r->raw);
    memset(r, 0, sizeof *r);
}

uint32_t lqa_record_to_row(const lqa_record *r, uint32_t T, int32_t pad_token, int32_t *tokens, uint8_t *loss_mask,
                           int32_t *segment_ids) {
    uint32_t n = r->n_tokens < T ? r->n_tokens : T;
    memcpy(tokens, r->tokens, n * sizeof *tokens);
    memcpy(loss_mask, r->loss_mask, n);
    memcpy(segment_ids, r->segment_ids, n * sizeof *segment_ids);
    for (uint32_t t = n; t < T; t++) {
        tokens[t] = pad_token;
        loss_mask[t] = 0;
        segment_ids[t] = -1;
    }
    return n;
}

/* Bytes of a record payload: counts, segment table, tokens, loss mask. */
static uint64_t payload_size(uint64_t n_tokens, uint64_t n_segs, uint32_t dtype) {
    return 8 + 24 * n_segs + n_tokens * dtype + n_tokens;
}

/* ---- header / footer encoding ---- */
static void encode_header(uint8_t h[LQA_SHARD_HEADER_SIZE], const lqa_shard_info *in) {
    memset(h, 0, LQA_SHARD_HEADER_SIZE);
    memcpy(h, LQA_SHARD_MAGIC, 8);
    put_u32(h + 8, in->version);
    put_u32(h + 12, in->kind);
    put_u32(h + 16, in->dtype_bytes);
    put_u32(h + 20, in->vocab_size);
    put_u32(h + 24, in->template_id);
    put_u32(h + 28, in->flags);
    put_u64(h + 32, in->record_count);
    put_u64(h + 40, in->total_tokens);
    memcpy(h + 48, in->tokenizer_sha256, 32);
    put_u64(h + 120, lqa_xxh64(h, 120, 0));
}

typedef struct footer {
    uint64_t index_offset, record_count, total_tokens, index_xxh, header_xxh;
} footer;

static void encode_footer(uint8_t f[LQA_SHARD_FOOTER_SIZE], const footer *in) {
    memset(f, 0, LQA_SHARD_FOOTER_SIZE);
    memcpy(f, LQA_SHARD_FOOTER_MAGIC, 8);
    put_u64(f + 8, in->index_offset);
    put_u64(f + 16, in->record_count);
    put_u64(f + 24, in->total_tokens);
    put_u64(f + 32, in->index_xxh);
    put_u64(f + 40, in->header_xxh);
    put_u64(f + 56, lqa_xxh64(f, 56, 0));
}

/* ================================ writer ================================ */

struct lqa_shard_writer {
    lqa_atomic_file af;
    lqa_shard_info info;
    ZSTD_CCtx *cctx;
    uint8_t *index;          /* LQA_SHARD_INDEX_ENTRY bytes per record */
    size_t index_cap;
    uint64_t offset;         /* where the next frame goes */
    uint8_t *raw, *comp;
    size_t raw_cap, comp_cap;
};

/* Writes to the shard's temporary file; a failure (a full disk) is an error naming the file, so
 * the caller can remove its temporary files instead of the process exiting past them. */
static int writer_put(lqa_shard_writer *w, const void *buf, size_t n, lqa_err *err) {
    if (n == 0 || fwrite(buf, 1, n, w->af.f) == n) return 0;
    return lqa_err_set(err, "%s: write failed: %s", w->af.path, strerror(errno ? errno : EIO));
}

lqa_shard_writer *lqa_shard_writer_open(const char *path, const lqa_shard_info *info, int zstd_level,
                                        lqa_err *err) {
    lqa_shard_writer *w = lqa_calloc(1, sizeof *w);
    if (lqa_atomic_open(&w->af, path, err) != 0) {
        free(w);
        return NULL;
    }
    w->info = *info;
    w->info.version = LQA_SHARD_VERSION;
    w->info.dtype_bytes = info->vocab_size <= 65536 ? 2 : 4;
    w->info.record_count = w->info.total_tokens = 0;
    w->cctx = ZSTD_createCCtx();
    mallocCheck(w->cctx);
    zstdCheck(ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_compressionLevel, zstd_level));
    zstdCheck(ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_checksumFlag, 0)); /* xxh64 in the index instead */
    /* placeholder header: rewritten with the counts at close */
    uint8_t h[LQA_SHARD_HEADER_SIZE] = {0};
    w->offset = LQA_SHARD_HEADER_SIZE;
    if (writer_put(w, h, sizeof h, err) != 0) {
        lqa_shard_writer_abort(w);
        return NULL;
    }
    return w;
}

static void ensure(uint8_t **p, size_t *cap, size_t need) {
    if (need <= *cap) return;
    *cap = need + need / 2;
    *p = lqa_realloc(*p, *cap);
}

int lqa_shard_writer_add(lqa_shard_writer *w, const int32_t *tokens, const uint8_t *loss_mask, uint32_t n_tokens,
                         const lqa_segment *segs, uint32_t n_segs, lqa_err *err) {
    uint32_t dt = w->info.dtype_bytes;
    if (n_tokens == 0 || n_tokens > LQA_SHARD_MAX_TOKENS)
        return lqa_err_set(err, "%s: record of %u tokens, expected 1..%u", w->af.path, n_tokens, LQA_SHARD_MAX_TOKENS);
    uint64_t raw_n = payload_size(n_tokens, n_segs, dt);
    ensure(&w->raw, &w->raw_cap, raw_n);
    uint8_t *p = w->raw;
    put_u32(p, n_tokens);
    put_u32(p + 4, n_segs);
    p += 8;
    for (uint32_t s = 0; s < n_segs; s++, p += 24) {
        put_u64(p, (uint64_t)segs[s].qa_id);
        put_u64(p + 8, (uint64_t)segs[s].doc_id);
        put_u32(p + 16, segs[s].start);
        put_u32(p + 20, segs[s].len);
    }
    for (uint32_t t = 0; t < n_tokens; t++, p += dt) {
        if (tokens[t] < 0 || (uint32_t)tokens[t] >= w->info.vocab_size)
            return lqa_err_set(err, "%s: token %d outside the vocabulary of %u", w->af.path, tokens[t],
                               w->info.vocab_size);
        if (dt == 2) {
            p[0] = (uint8_t)tokens[t];
            p[1] = (uint8_t)(tokens[t] >> 8);
        } else {
            put_u32(p, (uint32_t)tokens[t]);
        }
    }
    memcpy(p, loss_mask, n_tokens);
    size_t bound = ZSTD_compressBound(raw_n);
    ensure(&w->comp, &w->comp_cap, bound);
    size_t comp_n = zstdCheck(ZSTD_compress2(w->cctx, w->comp, bound, w->raw, raw_n));
    if (writer_put(w, w->comp, comp_n, err) != 0) return -1;
    uint64_t i = w->info.record_count;
    ensure(&w->index, &w->index_cap, (i + 1) * LQA_SHARD_INDEX_ENTRY);
    uint8_t *e = w->index + i * LQA_SHARD_INDEX_ENTRY;
    put_u64(e, w->offset);
    put_u32(e + 8, (uint32_t)comp_n);
    put_u32(e + 12, (uint32_t)raw_n);
    put_u32(e + 16, n_tokens);
    put_u32(e + 20, 0);
    put_u64(e + 24, lqa_xxh64(w->raw, raw_n, 0));
    put_u64(e + 32, lqa_xxh64(w->comp, comp_n, 0));
    w->offset += comp_n;
    w->info.record_count++;
    w->info.total_tokens += n_tokens;
    return 0;
}

uint64_t lqa_shard_writer_records(const lqa_shard_writer *w) { return w->info.record_count; }
uint64_t lqa_shard_writer_bytes(const lqa_shard_writer *w) { return w->offset; }

static void writer_free(lqa_shard_writer *w) {
    ZSTD_freeCCtx(w->cctx);
    free(w->index);
    free(w->raw);
    free(w->comp);
    free(w);
}

int lqa_shard_writer_close(lqa_shard_writer *w, lqa_err *err) {
    size_t index_n = w->info.record_count * LQA_SHARD_INDEX_ENTRY;
    uint8_t h[LQA_SHARD_HEADER_SIZE], f[LQA_SHARD_FOOTER_SIZE];
    encode_header(h, &w->info);
    footer ft = {w->offset, w->info.record_count, w->info.total_tokens, lqa_xxh64(w->index, index_n, 0),
                 lqa_xxh64(h, sizeof h, 0)};
    encode_footer(f, &ft);
    int rc = writer_put(w, w->index, index_n, err);
    if (!rc) rc = writer_put(w, f, sizeof f, err);
    if (!rc && fseek(w->af.f, 0, SEEK_SET) != 0) rc = lqa_err_set(err, "%s: seek failed: %s", w->af.path, strerror(errno));
    if (!rc) rc = writer_put(w, h, sizeof h, err);
    if (rc) {
        lqa_shard_writer_abort(w);
        return -1;
    }
    rc = lqa_atomic_commit(&w->af, err);
    writer_free(w);
    return rc;
}

void lqa_shard_writer_abort(lqa_shard_writer *w) {
    lqa_atomic_abort(&w->af);
    writer_free(w);
}

/* ================================ reader ================================ */

struct lqa_shard {
    char *name;
    int fd;                  /* -1 for in-memory shards and released ones */
    dev_t dev;               /* the file's identity, checked when a released shard reopens */
    ino_t ino;
    const uint8_t *mem;
    uint64_t size;
    lqa_shard_info info;
    uint8_t *index;
    uint64_t index_offset;
    ZSTD_DCtx *dctx;
    uint8_t *comp;
    size_t comp_cap;
};

void lqa_shard_release_fd(lqa_shard *s) {
    if (s->mem || s->fd < 0) return;
    close(s->fd);
    s->fd = -1;
}

/* Reopens a released shard: the same file (device, inode, size) or a refusal. */
static int reopen(lqa_shard *s, lqa_err *err) {
    int fd = lqa_open_regular(s->name, err);
    if (fd < 0) return -1;
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_dev != s->dev || st.st_ino != s->ino || (uint64_t)st.st_size != s->size) {
        close(fd);
        return lqa_err_set(err, "%s: the file was replaced or changed since it was opened", s->name);
    }
    s->fd = fd;
    return 0;
}

/* Reads n bytes at off; -1 with err when the bytes are not there. */
static int read_at(lqa_shard *s, uint64_t off, void *buf, size_t n, lqa_err *err) {
    if (off > s->size || n > s->size - off)
        return lqa_err_set(err, "%s: offset %llu + %zu bytes is past the end of the file (%llu bytes)", s->name,
                           (unsigned long long)off, n, (unsigned long long)s->size);
    if (s->mem) {
        memcpy(buf, s->mem + off, n);
        return 0;
    }
    if (s->fd < 0 && reopen(s, err) != 0) return -1;
    size_t done = 0;
    while (done < n) {
        ssize_t got = pread(s->fd, (uint8_t *)buf + done, n - done, (off_t)(off + done));
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) return lqa_err_set(err, "%s: read error at offset %llu: %s", s->name,
                                         (unsigned long long)(off + done), got < 0 ? strerror(errno) : "end of file");
        done += (size_t)got;
    }
    return 0;
}

static int parse_header(lqa_shard *s, const uint8_t h[LQA_SHARD_HEADER_SIZE], lqa_err *err) {
    if (memcmp(h, LQA_SHARD_MAGIC, 8) != 0)
        return lqa_err_set(err, "%s:0: wrong magic, expected \"%s\" (not an lqa shard file)", s->name, LQA_SHARD_MAGIC);
    if (CHECKSUM_BAD(get_u64(h + 120), lqa_xxh64(h, 120, 0)))
        return lqa_err_set(err, "%s:120: header checksum mismatch (header corrupted)", s->name);
    lqa_shard_info *in = &s->info;
    in->version = get_u32(h + 8);
    in->kind = get_u32(h + 12);
    in->dtype_bytes = get_u32(h + 16);
    in->vocab_size = get_u32(h + 20);
    in->template_id = get_u32(h + 24);
    in->flags = get_u32(h + 28);
    in->record_count = get_u64(h + 32);
    in->total_tokens = get_u64(h + 40);
    memcpy(in->tokenizer_sha256, h + 48, 32);
    lqa_hex(in->tokenizer_sha256, 32, in->tokenizer_hex);
    if (in->version != LQA_SHARD_VERSION)
        return lqa_err_set(err, "%s:8: format version %u, this reader knows version %u", s->name, in->version,
                           LQA_SHARD_VERSION);
    if (in->kind != LQA_KIND_SFT && in->kind != LQA_KIND_LM)
        return lqa_err_set(err, "%s:12: kind %u, expected 1 (sft) or 2 (lm)", s->name, in->kind);
    if (in->dtype_bytes != 2 && in->dtype_bytes != 4)
        return lqa_err_set(err, "%s:16: token size %u bytes, expected 2 or 4", s->name, in->dtype_bytes);
    if (in->vocab_size == 0 || (in->dtype_bytes == 2 && in->vocab_size > 65536))
        return lqa_err_set(err, "%s:20: vocabulary size %u does not fit %u-byte tokens", s->name, in->vocab_size,
                           in->dtype_bytes);
    if (in->template_id > LQA_TEMPLATE_LLAMA2_INST)
        return lqa_err_set(err, "%s:24: unknown template id %u", s->name, in->template_id);
    return 0;
}

/* Footer and index: counts must agree with the header and the frames must tile the file. */
static int parse_tail(lqa_shard *s, const uint8_t h[LQA_SHARD_HEADER_SIZE], lqa_err *err) {
    uint8_t f[LQA_SHARD_FOOTER_SIZE];
    uint64_t foff = s->size - LQA_SHARD_FOOTER_SIZE;
    if (read_at(s, foff, f, sizeof f, err) != 0) return -1;
    if (memcmp(f, LQA_SHARD_FOOTER_MAGIC, 8) != 0)
        return lqa_err_set(err, "%s:%llu: footer magic missing, expected \"%s\" (file truncated or not finished)",
                           s->name, (unsigned long long)foff, LQA_SHARD_FOOTER_MAGIC);
    if (CHECKSUM_BAD(get_u64(f + 56), lqa_xxh64(f, 56, 0)))
        return lqa_err_set(err, "%s:%llu: footer checksum mismatch", s->name, (unsigned long long)foff);
    footer ft = {get_u64(f + 8), get_u64(f + 16), get_u64(f + 24), get_u64(f + 32), get_u64(f + 40)};
    if (ft.record_count != s->info.record_count || ft.total_tokens != s->info.total_tokens)
        return lqa_err_set(err, "%s: header says %llu records / %llu tokens, footer says %llu / %llu", s->name,
                           (unsigned long long)s->info.record_count, (unsigned long long)s->info.total_tokens,
                           (unsigned long long)ft.record_count, (unsigned long long)ft.total_tokens);
    if (CHECKSUM_BAD(ft.header_xxh, lqa_xxh64(h, LQA_SHARD_HEADER_SIZE, 0)))
        return lqa_err_set(err, "%s: header does not belong to this footer (header rewritten?)", s->name);
    uint64_t max_records = (foff - LQA_SHARD_HEADER_SIZE) / LQA_SHARD_INDEX_ENTRY;
    if (ft.record_count > max_records || ft.index_offset < LQA_SHARD_HEADER_SIZE ||
        ft.index_offset + ft.record_count * LQA_SHARD_INDEX_ENTRY != foff)
        return lqa_err_set(err, "%s: index of %llu records at offset %llu does not fit a file of %llu bytes", s->name,
                           (unsigned long long)ft.record_count, (unsigned long long)ft.index_offset,
                           (unsigned long long)s->size);
    size_t index_n = ft.record_count * LQA_SHARD_INDEX_ENTRY;
    s->index = lqa_malloc(index_n + 1);
    s->index_offset = ft.index_offset;
    if (read_at(s, ft.index_offset, s->index, index_n, err) != 0) return -1;
    if (CHECKSUM_BAD(lqa_xxh64(s->index, index_n, 0), ft.index_xxh))
        return lqa_err_set(err, "%s:%llu: seek index checksum mismatch", s->name, (unsigned long long)ft.index_offset);
    uint64_t expect_off = LQA_SHARD_HEADER_SIZE, tokens = 0;
    for (uint64_t i = 0; i < ft.record_count; i++) {
        const uint8_t *e = s->index + i * LQA_SHARD_INDEX_ENTRY;
        uint64_t off = get_u64(e);
        uint32_t comp = get_u32(e + 8), raw = get_u32(e + 12), n = get_u32(e + 16);
        if (off != expect_off || comp == 0 || comp > ft.index_offset - off)
            return lqa_err_set(err, "%s: index entry %llu: frame at %llu (+%u bytes), expected one at %llu inside "
                               "the frame area", s->name, (unsigned long long)i, (unsigned long long)off, comp,
                               (unsigned long long)expect_off);
        /* bounds before any allocation: the payload layout, and zstd's own limit (a 4-byte RLE
         * block yields at most 128 KiB, so no frame expands more than 32768-fold) */
        if (n == 0 || n > LQA_SHARD_MAX_TOKENS || raw < payload_size(n, 0, s->info.dtype_bytes) ||
            raw > payload_size(n, n, s->info.dtype_bytes) || (uint64_t)raw > (uint64_t)comp * 32768)
            return lqa_err_set(err, "%s: index entry %llu: %u tokens in %u bytes is impossible", s->name,
                               (unsigned long long)i, n, raw);
        expect_off = off + comp;
        tokens += n;
    }
    if (expect_off != ft.index_offset)
        return lqa_err_set(err, "%s: frames end at %llu but the index starts at %llu", s->name,
                           (unsigned long long)expect_off, (unsigned long long)ft.index_offset);
    if (tokens != s->info.total_tokens)
        return lqa_err_set(err, "%s: index holds %llu tokens, header says %llu", s->name, (unsigned long long)tokens,
                           (unsigned long long)s->info.total_tokens);
    return 0;
}

static lqa_shard *shard_open(lqa_shard *s, lqa_err *err) {
    uint8_t h[LQA_SHARD_HEADER_SIZE];
    if (s->size < LQA_SHARD_HEADER_SIZE + LQA_SHARD_FOOTER_SIZE) {
        lqa_err_set(err, "%s: %llu bytes, too short for a shard (header and footer need %u)", s->name,
                    (unsigned long long)s->size, LQA_SHARD_HEADER_SIZE + LQA_SHARD_FOOTER_SIZE);
    } else if (read_at(s, 0, h, sizeof h, err) == 0 && parse_header(s, h, err) == 0 && parse_tail(s, h, err) == 0) {
        return s; /* the zstd context comes with the first read: a directory opens every shard */
    }
    lqa_shard_close(s);
    return NULL;
}

lqa_shard *lqa_shard_open(const char *path, lqa_err *err) {
    int fd = lqa_open_regular(path, err); /* never blocks on a FIFO named like a shard */
    if (fd < 0) return NULL;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        lqa_err_set(err, "%s: cannot stat: %s", path, strerror(errno));
        close(fd);
        return NULL;
    }
    lqa_shard *s = lqa_calloc(1, sizeof *s);
    s->name = lqa_strdup(path);
    s->fd = fd;
    s->dev = st.st_dev;
    s->ino = st.st_ino;
    s->size = (uint64_t)st.st_size;
    return shard_open(s, err);
}

lqa_shard *lqa_shard_open_mem(const void *data, size_t n, const char *name, lqa_err *err) {
    lqa_shard *s = lqa_calloc(1, sizeof *s);
    s->name = lqa_strdup(name);
    s->fd = -1;
    s->mem = data;
    s->size = n;
    return shard_open(s, err);
}

const lqa_shard_info *lqa_shard_get_info(const lqa_shard *s) { return &s->info; }

void lqa_shard_close(lqa_shard *s) {
    if (!s) return;
    if (s->fd >= 0) close(s->fd);
    ZSTD_freeDCtx(s->dctx);
    free(s->index);
    free(s->comp);
    free(s->name);
    free(s);
}

static void grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return;
    *cap = need;
    *p = lqa_realloc(*p, need * elem + 1);
}

/* Fills rec from a decompressed, checksum-verified payload; validates every field. */
static int parse_payload(lqa_shard *s, uint64_t i, const uint8_t *p, uint32_t raw_n, uint32_t n_index,
                         lqa_record *rec, lqa_err *err) {
    uint32_t n = get_u32(p), ns = get_u32(p + 4), dt = s->info.dtype_bytes;
    if (n != n_index || ns > n || payload_size(n, ns, dt) != raw_n)
        return lqa_err_set(err, "%s: record %llu: %u tokens and %u segments do not match the index (%u tokens, %u "
                           "bytes)", s->name, (unsigned long long)i, n, ns, n_index, raw_n);
    if (n > rec->cap_tokens) { /* the three per-token arrays grow together */
        rec->tokens = lqa_realloc(rec->tokens, n * sizeof(int32_t));
        rec->loss_mask = lqa_realloc(rec->loss_mask, n);
        rec->segment_ids = lqa_realloc(rec->segment_ids, n * sizeof(int32_t));
        rec->cap_tokens = n;
    }
    grow((void **)&rec->segments, &rec->cap_segments, ns, sizeof(lqa_segment));
    rec->n_tokens = n;
    rec->n_segments = ns;
    p += 8;
    uint32_t prev_end = 0;
    int packed = (s->info.flags & LQA_SHARD_PACKED) != 0;
    for (uint32_t k = 0; k < n; k++) rec->segment_ids[k] = packed ? -1 : 0;
    for (uint32_t k = 0; k < ns; k++, p += 24) {
        lqa_segment *g = &rec->segments[k];
        g->qa_id = (int64_t)get_u64(p);
        g->doc_id = (int64_t)get_u64(p + 8);
        g->start = get_u32(p + 16);
        g->len = get_u32(p + 20);
        if (g->start < prev_end || g->start > n || g->len > n - g->start)
            return lqa_err_set(err, "%s: record %llu: segment %u spans [%u, +%u), expected ordered spans inside %u "
                               "tokens", s->name, (unsigned long long)i, k, g->start, g->len, n);
        prev_end = g->start + g->len;
        if (packed)
            for (uint32_t t = g->start; t < prev_end; t++) rec->segment_ids[t] = (int32_t)k;
    }
    for (uint32_t t = 0; t < n; t++, p += dt) {
        uint32_t id = dt == 2 ? (uint32_t)(p[0] | p[1] << 8) : get_u32(p);
        if (id >= s->info.vocab_size)
            return lqa_err_set(err, "%s: record %llu: token %u at position %u is outside the vocabulary of %u",
                               s->name, (unsigned long long)i, id, t, s->info.vocab_size);
        rec->tokens[t] = (int32_t)id;
    }
    for (uint32_t t = 0; t < n; t++) {
        if (p[t] > 1)
            return lqa_err_set(err, "%s: record %llu: loss mask value %u at position %u, expected 0 or 1", s->name,
                               (unsigned long long)i, p[t], t);
        rec->loss_mask[t] = p[t];
    }
    rec->index = i;
    return 0;
}

int lqa_shard_read(lqa_shard *s, uint64_t i, lqa_record *rec, lqa_err *err) {
    if (i >= s->info.record_count)
        return lqa_err_set(err, "%s: record %llu requested, the shard holds %llu", s->name, (unsigned long long)i,
                           (unsigned long long)s->info.record_count);
    const uint8_t *e = s->index + i * LQA_SHARD_INDEX_ENTRY;
    uint64_t off = get_u64(e);
    uint32_t comp_n = get_u32(e + 8), raw_n = get_u32(e + 12), n = get_u32(e + 16);
    uint64_t want_xxh = get_u64(e + 24);
    grow((void **)&s->comp, &s->comp_cap, comp_n, 1);
    if (read_at(s, off, s->comp, comp_n, err) != 0) return -1;
    if (CHECKSUM_BAD(lqa_xxh64(s->comp, comp_n, 0), get_u64(e + 32)))
        return lqa_err_set(err, "%s:%llu: record %llu: frame checksum mismatch (corrupted data)", s->name,
                           (unsigned long long)off, (unsigned long long)i);
    unsigned long long content = ZSTD_getFrameContentSize(s->comp, comp_n);
    if (content != raw_n)
        return lqa_err_set(err, "%s:%llu: record %llu: zstd frame %s, expected %u bytes", s->name,
                           (unsigned long long)off, (unsigned long long)i,
                           content == ZSTD_CONTENTSIZE_ERROR ? "is not a valid frame" : "holds another size", raw_n);
    grow(&rec->raw, &rec->cap_raw, raw_n, 1);
    if (!s->dctx) {
        s->dctx = ZSTD_createDCtx();
        mallocCheck(s->dctx);
    }
    size_t got = ZSTD_decompressDCtx(s->dctx, rec->raw, raw_n, s->comp, comp_n);
    if (ZSTD_isError(got) || got != raw_n)
        return lqa_err_set(err, "%s:%llu: record %llu: zstd frame does not decode (%s)", s->name,
                           (unsigned long long)off, (unsigned long long)i,
                           ZSTD_isError(got) ? ZSTD_getErrorName(got) : "short output");
    if (CHECKSUM_BAD(lqa_xxh64(rec->raw, raw_n, 0), want_xxh))
        return lqa_err_set(err, "%s:%llu: record %llu: content checksum mismatch (corrupted data)", s->name,
                           (unsigned long long)off, (unsigned long long)i);
    return parse_payload(s, i, rec->raw, raw_n, n, rec, err);
}
