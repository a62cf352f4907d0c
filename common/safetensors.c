/* safetensors.c: safetensors reading (mmap + header validation), writing (single file, sharded
 * with an index) and the fp32 <-> F16/BF16 conversions. See safetensors.h. */
#include "common/safetensors.h"

#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fileio.h"
#include "common/json.h"

/* A header larger than this is not a tensor index but a corrupt or hostile file. */
#define ST_MAX_HEADER (100u << 20)

/* ---- dtypes and conversions ---------------------------------------------------------------- */

static const char *const DTYPE_NAMES[] = {"F32", "F16", "BF16"};

const char *lqa_st_dtype_name(lqa_st_dtype d) {
    return (unsigned)d < 3 ? DTYPE_NAMES[d] : NULL;
}

int lqa_st_dtype_parse(const char *s, lqa_st_dtype *d) {
    for (int i = 0; i < 3; i++) {
        if (!strcmp(s, DTYPE_NAMES[i])) {
            *d = (lqa_st_dtype)i;
            return 0;
        }
    }
    return -1;
}

size_t lqa_st_dtype_size(lqa_st_dtype d) {
    return d == LQA_ST_F32 ? 4 : 2;
}

static uint32_t f32_bits(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    return x;
}

static float bits_f32(uint32_t x) {
    float f;
    memcpy(&f, &x, 4);
    return f;
}

uint16_t lqa_f32_to_f16(float f) {
    uint32_t x = f32_bits(f);
    uint32_t sign = (x >> 16) & 0x8000, exp = (x >> 23) & 0xff, mant = x & 0x7fffff;
    if (exp == 0xff) return (uint16_t)(sign | 0x7c00 | (mant ? 0x200 | (mant >> 13) : 0));
    int e = (int)exp - 127 + 15;
    if (e >= 31) return (uint16_t)(sign | 0x7c00);
    if (e <= 0) {
        /* half subnormal: value = m * 2^-24 with m = (1.mant) >> (14 - e) */
        if (e < -10) return (uint16_t)sign;
        mant |= 0x800000;
        int shift = 14 - e;
        uint32_t h = mant >> shift, rem = mant & ((1u << shift) - 1), mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (h & 1))) h++;
        return (uint16_t)(sign | h);
    }
    uint32_t h = ((uint32_t)e << 10) | (mant >> 13), rem = mant & 0x1fff;
    /* a carry out of the mantissa correctly bumps the exponent (up to infinity) */
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++;
    return (uint16_t)(sign | h);
}

float lqa_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ff, x;
    if (exp == 0) {
        if (mant == 0) {
            x = sign;
        } else {
            int e = -1;
            do {
                e++;
                mant <<= 1;
            } while (!(mant & 0x400));
            x = sign | ((uint32_t)(127 - 15 - e) << 23) | ((mant & 0x3ff) << 13);
        }
    } else if (exp == 31) {
        x = sign | 0x7f800000 | (mant << 13);
    } else {
        x = sign | ((exp + 112) << 23) | (mant << 13);
    }
    return bits_f32(x);
}

uint16_t lqa_f32_to_bf16(float f) {
    uint32_t x = f32_bits(f);
    if ((x & 0x7f800000) == 0x7f800000 && (x & 0x7fffff)) return (uint16_t)((x >> 16) | 0x40);
    x += 0x7fff + ((x >> 16) & 1);
    return (uint16_t)(x >> 16);
}

float lqa_bf16_to_f32(uint16_t h) {
    return bits_f32((uint32_t)h << 16);
}

/* ---- reading ------------------------------------------------------------------------------ */

static void reader_reset(lqa_st_reader *r) {
    memset(r, 0, sizeof *r);
}

void lqa_st_close(lqa_st_reader *r) {
    for (int i = 0; i < r->n_files; i++) {
        if (r->files[i].mapped) munmap(r->files[i].base, r->files[i].size);
        free(r->files[i].path);
    }
    for (int i = 0; i < r->n_tensors; i++) free(r->tensors[i].name);
    free(r->files);
    free(r->tensors);
    if (r->metadata) json_decref(r->metadata);
    reader_reset(r);
}

static int map_file(lqa_st_map *m, const char *path, lqa_err *err) {
    m->path = lqa_strdup(path);
    int fd = lqa_open_regular(path, err);
    if (fd < 0) return -1;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return lqa_err_set(err, "%s: cannot stat: %s", path, strerror(e));
    }
    if (st.st_size < 8) {
        close(fd);
        return lqa_err_set(err, "%s: %lld bytes, expected at least the 8-byte header length of a safetensors file",
                           path, (long long)st.st_size);
    }
    m->size = (size_t)st.st_size;
    void *p = mmap(NULL, m->size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (p == MAP_FAILED) return lqa_err_set(err, "%s: cannot mmap: %s", path, strerror(e));
    m->base = p;
    m->mapped = 1;
    return 0;
}

static int parse_shape(const char *path, const char *name, json_t *shape, lqa_st_tensor *t, lqa_err *err) {
    if (!json_is_array(shape) || json_array_size(shape) > LQA_ST_MAX_DIMS)
        return lqa_err_set(err, "%s: header: tensor '%s': \"shape\" is not an array of at most %d integers", path,
                           name, LQA_ST_MAX_DIMS);
    t->ndim = (int)json_array_size(shape);
    t->numel = 1;
    for (int d = 0; d < t->ndim; d++) {
        json_t *v = json_array_get(shape, (size_t)d);
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > (1LL << 40))
            return lqa_err_set(err, "%s: header: tensor '%s': shape[%d] is not a non-negative integer", path, name, d);
        t->shape[d] = json_integer_value(v);
        if (__builtin_mul_overflow(t->numel, (size_t)t->shape[d], &t->numel))
            return lqa_err_set(err, "%s: header: tensor '%s': the element count of its shape overflows", path, name);
    }
    return 0;
}

/* Validates one header entry against the data section [data, data + data_len). */
static int parse_entry(const char *path, const char *name, json_t *v, const uint8_t *data, size_t data_len,
                       lqa_st_tensor *t, lqa_err *err) {
    if (!json_is_object(v)) return lqa_err_set(err, "%s: header: tensor '%s' is not an object", path, name);
    const char *dt = lqa_json_str(v, "dtype", NULL);
    if (!dt) return lqa_err_set(err, "%s: header: tensor '%s' has no \"dtype\"", path, name);
    if (lqa_st_dtype_parse(dt, &t->dtype))
        return lqa_err_set(err, "%s: header: tensor '%s' has dtype %s, expected F32, F16 or BF16", path, name, dt);
    if (parse_shape(path, name, json_object_get(v, "shape"), t, err)) return -1;
    json_t *off = json_object_get(v, "data_offsets");
    if (!json_is_array(off) || json_array_size(off) != 2 || !json_is_integer(json_array_get(off, 0)) ||
        !json_is_integer(json_array_get(off, 1)))
        return lqa_err_set(err, "%s: header: tensor '%s': \"data_offsets\" is not [begin, end]", path, name);
    long long b = json_integer_value(json_array_get(off, 0)), e = json_integer_value(json_array_get(off, 1));
    if (b < 0 || e < b || (size_t)e > data_len)
        return lqa_err_set(err, "%s: header: tensor '%s': data_offsets [%lld, %lld] outside the %zu data bytes",
                           path, name, b, e, data_len);
    size_t want;
    if (__builtin_mul_overflow(t->numel, lqa_st_dtype_size(t->dtype), &want))
        return lqa_err_set(err, "%s: header: tensor '%s': the byte count of its shape overflows", path, name);
    if ((size_t)(e - b) != want)
        return lqa_err_set(err, "%s: header: tensor '%s': %lld data bytes, expected %zu for its shape and dtype",
                           path, name, e - b, want);
    t->data = data + b;
    t->nbytes = want;
    t->name = lqa_strdup(name);
    return 0;
}

static int by_offset(const void *a, const void *b) {
    const lqa_st_tensor *x = *(const lqa_st_tensor *const *)a, *y = *(const lqa_st_tensor *const *)b;
    return x->data < y->data ? -1 : x->data > y->data ? 1 : strcmp(x->name, y->name);
}

/* No two tensors of one file may share a byte (one would be read from another's data). */
static int check_overlaps(const char *path, lqa_st_tensor *t, int n, lqa_err *err) {
    if (n < 2) return 0;
    const lqa_st_tensor **s = lqa_malloc(sizeof *s * (size_t)n);
    int k = 0;
    for (int i = 0; i < n; i++)
        if (t[i].nbytes) s[k++] = &t[i];
    qsort(s, (size_t)k, sizeof *s, by_offset);
    int rc = 0;
    for (int i = 1; i < k && !rc; i++)
        if ((const uint8_t *)s[i]->data < (const uint8_t *)s[i - 1]->data + s[i - 1]->nbytes)
            rc = lqa_err_set(err, "%s: header: tensors '%s' and '%s' overlap in data_offsets (each tensor needs its "
                             "own bytes)", path, s[i - 1]->name, s[i]->name);
    free(s);
    return rc;
}

/* Parses the header of mapped file index fi and appends its tensors to r. */
static int read_header(lqa_st_reader *r, int fi, lqa_err *err) {
    const lqa_st_map *m = &r->files[fi];
    const uint8_t *p = m->base;
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | p[i];
    if (hlen > ST_MAX_HEADER || hlen > m->size - 8)
        return lqa_err_set(err, "%s: header length %llu does not fit the %zu-byte file (not a safetensors file?)",
                           m->path, (unsigned long long)hlen, m->size);
    json_error_t je;
    json_t *h = json_loadb((const char *)p + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &je);
    if (!h) return lqa_err_set(err, "%s: header JSON invalid at column %d: %s", m->path, je.column, je.text);
    if (!json_is_object(h)) {
        json_decref(h);
        return lqa_err_set(err, "%s: header is not a JSON object", m->path);
    }
    const uint8_t *data = p + 8 + hlen;
    size_t data_len = m->size - 8 - (size_t)hlen;
    r->tensors = lqa_realloc(r->tensors, sizeof(lqa_st_tensor) * (r->n_tensors + json_object_size(h)));
    int first = r->n_tensors;
    const char *key;
    json_t *v;
    json_object_foreach(h, key, v) {
        if (!strcmp(key, "__metadata__")) {
            if (!r->metadata && json_is_object(v)) r->metadata = json_incref(v);
            continue;
        }
        lqa_st_tensor *t = &r->tensors[r->n_tensors];
        memset(t, 0, sizeof *t);
        t->file = fi;
        if (parse_entry(m->path, key, v, data, data_len, t, err)) {
            json_decref(h);
            return -1;
        }
        r->n_tensors++;
    }
    json_decref(h);
    return check_overlaps(m->path, r->tensors + first, r->n_tensors - first, err);
}

static int add_file(lqa_st_reader *r, const char *path, lqa_err *err) {
    r->files = lqa_realloc(r->files, sizeof(lqa_st_map) * (r->n_files + 1));
    memset(&r->files[r->n_files], 0, sizeof(lqa_st_map));
    r->n_files++;
    if (map_file(&r->files[r->n_files - 1], path, err)) return -1;
    return read_header(r, r->n_files - 1, err);
}

int lqa_st_open(lqa_st_reader *r, const char *path, lqa_err *err) {
    reader_reset(r);
    if (add_file(r, path, err)) {
        lqa_st_close(r);
        return -1;
    }
    return 0;
}

int lqa_st_open_mem(lqa_st_reader *r, const void *data, size_t n, const char *name, lqa_err *err) {
    reader_reset(r);
    r->files = lqa_calloc(1, sizeof(lqa_st_map));
    r->n_files = 1;
    r->files[0].path = lqa_strdup(name);
    r->files[0].base = (void *)data;
    r->files[0].size = n;
    int rc = n < 8 ? lqa_err_set(err, "%s: %zu bytes, expected at least the 8-byte header length of a safetensors "
                                 "file", name, n)
                   : read_header(r, 0, err);
    if (rc) lqa_st_close(r);
    return rc;
}

static char *dir_of(const char *path) {
    const char *slash = strrchr(path, '/');
    return slash ? lqa_strndup(path, (size_t)(slash - path)) : lqa_strdup(".");
}

/* Every tensor the index maps must be in the file it names. */
static int check_weight_map(const lqa_st_reader *r, const char *index_path, json_t *wm, lqa_err *err) {
    const char *name;
    json_t *v;
    json_object_foreach(wm, name, v) {
        const lqa_st_tensor *t = lqa_st_find(r, name);
        const char *fname = json_string_value(v);
        const char *slash = t ? strrchr(r->files[t->file].path, '/') : NULL;
        const char *actual = t ? (slash ? slash + 1 : r->files[t->file].path) : NULL;
        if (!t || strcmp(actual, fname))
            return lqa_err_set(err, "%s: weight_map says '%s' is in %s, but that file does not hold it", index_path,
                               name, fname);
    }
    return 0;
}

int lqa_st_open_index(lqa_st_reader *r, const char *index_path, lqa_err *err) {
    reader_reset(r);
    json_t *idx = lqa_json_load_file(index_path, err);
    if (!idx) return -1;
    json_t *wm = json_object_get(idx, "weight_map");
    int rc = 0;
    if (!json_is_object(wm)) rc = lqa_err_set(err, "%s: no \"weight_map\" object", index_path);
    char *dir = dir_of(index_path);
    const char *name;
    json_t *v;
    json_object_foreach(wm, name, v) {
        if (rc) break;
        const char *fname = json_string_value(v);
        if (!fname || strchr(fname, '/')) {
            rc = lqa_err_set(err, "%s: weight_map['%s'] is not a file name in the same directory", index_path, name);
            break;
        }
        char *path = lqa_path_join(dir, fname);
        int seen = 0;
        for (int i = 0; i < r->n_files; i++) seen |= !strcmp(r->files[i].path, path);
        if (!seen) rc = add_file(r, path, err);
        free(path);
    }
    if (!rc) rc = check_weight_map(r, index_path, wm, err);
    free(dir);
    json_decref(idx);
    if (rc) lqa_st_close(r);
    return rc;
}

int lqa_st_open_dir(lqa_st_reader *r, const char *dir, lqa_err *err) {
    char *index = lqa_path_join(dir, "model.safetensors.index.json");
    char *single = lqa_path_join(dir, "model.safetensors");
    int rc;
    if (lqa_path_exists(index)) rc = lqa_st_open_index(r, index, err);
    else if (lqa_path_exists(single)) rc = lqa_st_open(r, single, err);
    else {
        reader_reset(r);
        rc = lqa_err_set(err, "%s: no model.safetensors or model.safetensors.index.json", dir);
    }
    free(index);
    free(single);
    return rc;
}

const lqa_st_tensor *lqa_st_find(const lqa_st_reader *r, const char *name) {
    for (int i = 0; i < r->n_tensors; i++)
        if (!strcmp(r->tensors[i].name, name)) return &r->tensors[i];
    return NULL;
}

void lqa_st_to_f32(const lqa_st_tensor *t, float *out) {
    if (t->dtype == LQA_ST_F32) {
        memcpy(out, t->data, t->nbytes);
        return;
    }
    const uint8_t *p = t->data;
    for (size_t i = 0; i < t->numel; i++) {
        uint16_t h = (uint16_t)(p[2 * i] | (p[2 * i + 1] << 8));
        out[i] = t->dtype == LQA_ST_F16 ? lqa_f16_to_f32(h) : lqa_bf16_to_f32(h);
    }
}

/* ---- writing ------------------------------------------------------------------------------ */

static size_t entry_numel(const lqa_st_entry *e) {
    size_t n = 1;
    for (int d = 0; d < e->ndim; d++) n *= (size_t)e->shape[d];
    return n;
}

static char *build_header(const lqa_st_entry *e, int n, lqa_st_dtype dtype, const json_t *metadata, size_t *len) {
    json_t *h = json_object();
    json_t *meta = metadata ? json_deep_copy(metadata) : json_object();
    if (!json_object_get(meta, "format")) json_object_set_new(meta, "format", json_string("pt"));
    json_object_set_new(h, "__metadata__", meta);
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        json_t *shape = json_array();
        for (int d = 0; d < e[i].ndim; d++) json_array_append_new(shape, json_integer(e[i].shape[d]));
        size_t bytes = entry_numel(&e[i]) * lqa_st_dtype_size(dtype);
        json_t *t = json_pack("{s:s, s:o, s:[I,I]}", "dtype", lqa_st_dtype_name(dtype), "shape", shape,
                              "data_offsets", (json_int_t)off, (json_int_t)(off + bytes));
        mallocCheck(t);
        json_object_set_new(h, e[i].name, t);
        off += bytes;
    }
    char *text = json_dumps(h, JSON_COMPACT | JSON_PRESERVE_ORDER);
    mallocCheck(text);
    json_decref(h);
    /* pad with spaces so the data section starts 8-byte aligned, as the reference writer does */
    size_t l = strlen(text), padded = (l + 7) & ~(size_t)7;
    text = lqa_realloc(text, padded + 1);
    memset(text + l, ' ', padded - l);
    text[padded] = '\0';
    *len = padded;
    return text;
}

static int write_tensor_data(FILE *f, const lqa_st_entry *e, lqa_st_dtype dtype) {
    size_t numel = entry_numel(e);
    if (dtype == LQA_ST_F32) return numel && fwrite(e->data, 4, numel, f) != numel ? -1 : 0;
    enum { CHUNK = 1 << 16 };
    uint8_t *buf = lqa_malloc(2 * CHUNK);
    int rc = 0;
    for (size_t s = 0; s < numel && !rc; s += CHUNK) {
        size_t k = numel - s < CHUNK ? numel - s : CHUNK;
        for (size_t i = 0; i < k; i++) {
            uint16_t h = dtype == LQA_ST_F16 ? lqa_f32_to_f16(e->data[s + i]) : lqa_f32_to_bf16(e->data[s + i]);
            buf[2 * i] = (uint8_t)(h & 0xff);
            buf[2 * i + 1] = (uint8_t)(h >> 8);
        }
        if (fwrite(buf, 2, k, f) != k) rc = -1;
    }
    free(buf);
    return rc;
}

int lqa_st_write(const char *path, const lqa_st_entry *e, int n, lqa_st_dtype dtype, const json_t *metadata,
                 lqa_err *err) {
    size_t hlen;
    char *header = build_header(e, n, dtype, metadata, &hlen);
    lqa_atomic_file af;
    if (lqa_atomic_open(&af, path, err)) {
        free(header);
        return -1;
    }
    uint8_t len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (uint8_t)((uint64_t)hlen >> (8 * i));
    int bad = fwrite(len8, 1, 8, af.f) != 8 || fwrite(header, 1, hlen, af.f) != hlen;
    for (int i = 0; i < n && !bad; i++) bad = write_tensor_data(af.f, &e[i], dtype);
    free(header);
    if (bad) {
        int en = errno;
        lqa_atomic_abort(&af);
        return lqa_err_set(err, "%s: write failed: %s", path, strerror(en));
    }
    return lqa_atomic_commit(&af, err);
}

/* Removes the files of the layout not being written now, so a reader never mixes two saves. */
static void remove_stale(const char *dir, const char *prefix, int keep_single) {
    char name[1024], pattern[300];
    snprintf(name, sizeof name, "%s/%s.safetensors%s", dir, prefix, keep_single ? ".index.json" : "");
    unlink(name);
    snprintf(pattern, sizeof pattern, "%s-[0-9][0-9][0-9][0-9][0-9]-of-[0-9][0-9][0-9][0-9][0-9].safetensors",
             prefix);
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (fnmatch(pattern, de->d_name, 0) != 0) continue;
        snprintf(name, sizeof name, "%s/%s", dir, de->d_name);
        unlink(name);
    }
    closedir(d);
}

int lqa_st_write_dir(const char *dir, const char *prefix, const lqa_st_entry *e, int n, lqa_st_dtype dtype,
                     size_t max_shard_bytes, lqa_err *err) {
    if (lqa_mkdir_p(dir, err)) return -1;
    /* greedy split in order: a new shard when the next tensor would overflow this one */
    int *shard_of = lqa_malloc(sizeof(int) * (n ? n : 1));
    int n_shards = 0;
    size_t cur = 0, total = 0;
    for (int i = 0; i < n; i++) {
        size_t b = entry_numel(&e[i]) * lqa_st_dtype_size(dtype);
        if (n_shards == 0 || (max_shard_bytes && cur > 0 && cur + b > max_shard_bytes)) {
            n_shards++;
            cur = 0;
        }
        shard_of[i] = n_shards - 1;
        cur += b;
        total += b;
    }
    int rc = 0;
    char path[1024];
    if (n_shards <= 1) {
        remove_stale(dir, prefix, 1);
        snprintf(path, sizeof path, "%s/%s.safetensors", dir, prefix);
        rc = lqa_st_write(path, e, n, dtype, NULL, err);
        free(shard_of);
        return rc;
    }
    remove_stale(dir, prefix, 0);
    json_t *wm = json_object();
    for (int s = 0, first = 0; s < n_shards && !rc; s++) {
        int last = first;
        while (last < n && shard_of[last] == s) last++;
        char fname[256];
        snprintf(fname, sizeof fname, "%s-%05d-of-%05d.safetensors", prefix, s + 1, n_shards);
        snprintf(path, sizeof path, "%s/%s", dir, fname);
        rc = lqa_st_write(path, e + first, last - first, dtype, NULL, err);
        for (int i = first; i < last; i++) json_object_set_new(wm, e[i].name, json_string(fname));
        first = last;
    }
    if (!rc) {
        json_t *idx = json_pack("{s:{s:I}, s:O}", "metadata", "total_size", (json_int_t)total, "weight_map", wm);
        mallocCheck(idx);
        snprintf(path, sizeof path, "%s/%s.safetensors.index.json", dir, prefix);
        rc = lqa_json_write_file(path, idx, err);
        json_decref(idx);
    }
    json_decref(wm);
    free(shard_of);
    return rc;
}
