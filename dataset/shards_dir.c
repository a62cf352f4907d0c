/* shards_dir.c: a shard directory (manifest.json + shard files) as one record sequence, the
 * tokenizer check, and the deterministic shuffled iterator split across data-parallel ranks. */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/fileio.h"
#include "common/hash.h"
#include "common/json.h"
#include "common/rng.h"
#include "dataset/shards.h"

struct lqa_shards {
    char *dir;
    json_t *manifest;
    int n_files;
    lqa_shard **files;
    uint64_t *first; /* global index of each file's first record; first[n_files] = total */
    int open_file;   /* the one shard holding a file descriptor, -1 if none */
    lqa_shard_info info;
};

static int check_against_manifest(lqa_shards *d, int i, const json_t *entry, lqa_err *err) {
    const lqa_shard_info *in = lqa_shard_get_info(d->files[i]);
    const char *file = lqa_json_str(entry, "file", "?");
    long long want_records = lqa_json_int(entry, "records", -1), want_tokens = lqa_json_int(entry, "tokens", -1);
    if (want_records != (long long)in->record_count || want_tokens != (long long)in->total_tokens)
        return lqa_err_set(err, "%s/%s: holds %llu records / %llu tokens, manifest.json says %lld / %lld", d->dir, file,
                           (unsigned long long)in->record_count, (unsigned long long)in->total_tokens, want_records,
                           want_tokens);
    if (i > 0) {
        const lqa_shard_info *a = &d->info;
        if (in->kind != a->kind || in->vocab_size != a->vocab_size || in->flags != a->flags ||
            in->template_id != a->template_id || memcmp(in->tokenizer_sha256, a->tokenizer_sha256, 32) != 0)
            return lqa_err_set(err, "%s/%s: kind, vocabulary, template or tokenizer differ from the first shard", d->dir,
                               file);
    }
    return 0;
}

/* Each shard listed once (by name and by file: a hard link is the same shard). */
static int check_listed_once(lqa_shards *d, const json_t *list, int i, const char *file, struct stat *ids,
                             lqa_err *err) {
    for (int k = 0; k < i; k++) {
        if (!strcmp(file, lqa_json_str(json_array_get(list, (size_t)k), "file", "")))
            return lqa_err_set(err, "%s/manifest.json: shards[%d] and shards[%d] both list %s", d->dir, k, i, file);
        if (ids[k].st_ino == ids[i].st_ino && ids[k].st_dev == ids[i].st_dev)
            return lqa_err_set(err, "%s/manifest.json: shards[%d] and shards[%d] are the same file (%s)", d->dir, k, i,
                               file);
    }
    return 0;
}

/* Every shard file of the directory is listed: a manifest that lost entries (or an empty list
 * beside shard files) would silently train on part of the data. */
static int check_unlisted(lqa_shards *d, const json_t *list, lqa_err *err) {
    DIR *dir = opendir(d->dir);
    if (!dir) return 0;
    int rc = 0;
    struct dirent *de;
    while (!rc && (de = readdir(dir)) != NULL) {
        size_t n = strlen(de->d_name);
        if (n < 5 || strcmp(de->d_name + n - 5, ".lqas") != 0) continue;
        int listed = 0;
        for (size_t k = 0; k < json_array_size(list) && !listed; k++)
            listed = !strcmp(de->d_name, lqa_json_str(json_array_get(list, k), "file", ""));
        if (!listed)
            rc = lqa_err_set(err, "%s: shard file %s is not listed in manifest.json (%zu listed); the manifest does not "
                             "describe this directory", d->dir, de->d_name, json_array_size(list));
    }
    closedir(dir);
    return rc;
}

static int open_files(lqa_shards *d, const json_t *list, lqa_err *err) {
    d->n_files = (int)json_array_size(list);
    d->files = lqa_calloc((size_t)d->n_files + 1, sizeof *d->files);
    d->first = lqa_calloc((size_t)d->n_files + 1, sizeof *d->first);
    struct stat *ids = lqa_calloc((size_t)d->n_files + 1, sizeof *ids);
    int rc = 0;
    for (int i = 0; i < d->n_files && !rc; i++) {
        const json_t *entry = json_array_get(list, (size_t)i);
        const char *file = lqa_json_str(entry, "file", NULL);
        if (!file || !file[0] || strchr(file, '/')) {
            rc = lqa_err_set(err, "%s/manifest.json: shards[%d].file missing or not a plain file name", d->dir, i);
            break;
        }
        char *path = lqa_path_join(d->dir, file);
        d->files[i] = lqa_shard_open(path, err);
        if (d->files[i] && stat(path, &ids[i]) != 0) memset(&ids[i], 0, sizeof ids[i]);
        free(path);
        if (!d->files[i] || check_listed_once(d, list, i, file, ids, err)) {
            rc = -1;
            break;
        }
        lqa_shard_release_fd(d->files[i]); /* reopened by the reads; one open at a time */
        if (i == 0) d->info = *lqa_shard_get_info(d->files[0]);
        if (check_against_manifest(d, i, entry, err) != 0) rc = -1;
        d->first[i + 1] = d->first[i] + lqa_shard_get_info(d->files[i])->record_count;
    }
    free(ids);
    if (rc || check_unlisted(d, list, err)) return -1;
    d->info.record_count = d->first[d->n_files];
    d->info.total_tokens = 0;
    for (int i = 0; i < d->n_files; i++) d->info.total_tokens += lqa_shard_get_info(d->files[i])->total_tokens;
    return 0;
}

static int check_tokenizer(lqa_shards *d, const char *want, lqa_err *err) {
    const char *have = lqa_json_str(json_object_get(d->manifest, "tokenizer"), "sha256", "");
    if (d->n_files > 0 && strcmp(have, d->info.tokenizer_hex) != 0)
        return lqa_err_set(err, "%s: manifest.json names tokenizer %s but the shards were built with %s", d->dir, have,
                           d->info.tokenizer_hex);
    if (want && strcmp(want, have) != 0)
        return lqa_err_set(err, "%s: built with tokenizer sha256 %s, but the model's tokenizer is %s; rebuild the "
                           "shards with this tokenizer (lqa-build shards --tokenizer ...)", d->dir, have, want);
    return 0;
}

/* What the manifest says about the data (where it says it) must be what the shards hold. */
static int check_manifest_fields(lqa_shards *d, lqa_err *err) {
    const json_t *m = d->manifest;
    const lqa_shard_info *in = &d->info;
    const char *kind = lqa_json_str(m, "kind", NULL);
    if (kind && strcmp(kind, "sft") && strcmp(kind, "lm"))
        return lqa_err_set(err, "%s/manifest.json: \"kind\" is \"%s\", expected \"sft\" or \"lm\"", d->dir, kind);
    if (json_object_get(m, "tokens") && lqa_json_int(m, "tokens", -1) != (long long)in->total_tokens)
        return lqa_err_set(err, "%s/manifest.json: \"tokens\" is %lld, the shards hold %llu", d->dir,
                           lqa_json_int(m, "tokens", -1), (unsigned long long)in->total_tokens);
    if (d->n_files == 0) return 0; /* nothing to contradict */
    if (kind && strcmp(kind, lqa_shard_kind_name(in->kind)))
        return lqa_err_set(err, "%s/manifest.json: \"kind\" is \"%s\", the shards are %s", d->dir, kind,
                           lqa_shard_kind_name(in->kind));
    const char *dtype = lqa_json_str(m, "dtype", NULL), *want_dtype = in->dtype_bytes == 2 ? "uint16" : "uint32";
    if (dtype && strcmp(dtype, want_dtype))
        return lqa_err_set(err, "%s/manifest.json: \"dtype\" is \"%s\", the shards store %s tokens", d->dir, dtype,
                           want_dtype);
    const json_t *tok = json_object_get(m, "tokenizer"), *vocab = json_object_get(tok, "vocab_size");
    if (vocab && (!json_is_integer(vocab) || json_integer_value(vocab) != (json_int_t)in->vocab_size))
        return lqa_err_set(err, "%s/manifest.json: tokenizer \"vocab_size\" is %lld, the shards say %u", d->dir,
                           (long long)lqa_json_int(tok, "vocab_size", -1), in->vocab_size);
    const json_t *packed = json_object_get(m, "packed");
    if (packed && (!json_is_boolean(packed) || json_is_true(packed) != ((in->flags & LQA_SHARD_PACKED) != 0)))
        return lqa_err_set(err, "%s/manifest.json: \"packed\" contradicts the shards (%s)", d->dir,
                           in->flags & LQA_SHARD_PACKED ? "packed" : "not packed");
    const char *tmpl = lqa_json_str(m, "template", NULL),
               *want_tmpl = in->template_id == LQA_TEMPLATE_LLAMA2_INST ? "llama2-inst" : "none";
    if (tmpl && strcmp(tmpl, want_tmpl))
        return lqa_err_set(err, "%s/manifest.json: \"template\" is \"%s\", the shards use %s", d->dir, tmpl, want_tmpl);
    return 0;
}

lqa_shards *lqa_shards_open(const char *dir, const char *tokenizer_sha256, lqa_err *err) {
    char *mpath = lqa_path_join(dir, "manifest.json"), *text = NULL;
    size_t n;
    lqa_shards *d = NULL;
    if (lqa_read_file(mpath, &text, &n, err) == 0) d = lqa_shards_open_manifest(dir, text, n, tokenizer_sha256, err);
    free(text);
    free(mpath);
    return d;
}

lqa_shards *lqa_shards_open_manifest(const char *dir, const char *manifest, size_t n, const char *tokenizer_sha256,
                                     lqa_err *err) {
    lqa_shards *d = lqa_calloc(1, sizeof *d);
    d->dir = lqa_strdup(dir);
    d->open_file = -1;
    char *mpath = lqa_path_join(dir, "manifest.json");
    d->manifest = lqa_json_load_buffer(manifest, n, mpath, err);
    free(mpath);
    int ok = d->manifest != NULL;
    if (ok && (strcmp(lqa_json_str(d->manifest, "format", ""), "lqa-shards") != 0 ||
               lqa_json_int(d->manifest, "version", 0) != LQA_SHARD_VERSION)) {
        lqa_err_set(err, "%s/manifest.json: expected \"format\": \"lqa-shards\" and \"version\": %u", dir,
                    LQA_SHARD_VERSION);
        ok = 0;
    }
    const json_t *list = ok ? json_object_get(d->manifest, "shards") : NULL;
    if (ok && !json_is_array(list)) {
        lqa_err_set(err, "%s/manifest.json: \"shards\" missing or not an array", dir);
        ok = 0;
    }
    if (ok) ok = open_files(d, list, err) == 0 && check_tokenizer(d, tokenizer_sha256, err) == 0;
    if (ok && lqa_json_int(d->manifest, "records", -1) != (long long)d->info.record_count) {
        lqa_err_set(err, "%s/manifest.json: \"records\" is %lld, the shards hold %llu", dir,
                    lqa_json_int(d->manifest, "records", -1), (unsigned long long)d->info.record_count);
        ok = 0;
    }
    if (ok) ok = check_manifest_fields(d, err) == 0;
    if (!ok) {
        lqa_shards_close(d);
        return NULL;
    }
    return d;
}

uint64_t lqa_shards_count(const lqa_shards *d) { return d->info.record_count; }
const lqa_shard_info *lqa_shards_get_info(const lqa_shards *d) { return &d->info; }
const json_t *lqa_shards_manifest(const lqa_shards *d) { return d->manifest; }
int lqa_shards_n_files(const lqa_shards *d) { return d->n_files; }

lqa_shard *lqa_shards_file(lqa_shards *d, int i, uint64_t *first_record) {
    if (first_record) *first_record = d->first[i];
    return d->files[i];
}

int lqa_shards_read(lqa_shards *d, uint64_t i, lqa_record *rec, lqa_err *err) {
    if (i >= d->info.record_count)
        return lqa_err_set(err, "%s: record %llu requested, the directory holds %llu", d->dir, (unsigned long long)i,
                           (unsigned long long)d->info.record_count);
    int lo = 0, hi = d->n_files - 1; /* the file whose range holds i */
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (d->first[mid] <= i) lo = mid;
        else hi = mid - 1;
    }
    if (d->open_file != lo && d->open_file >= 0) lqa_shard_release_fd(d->files[d->open_file]);
    d->open_file = lo;
    if (lqa_shard_read(d->files[lo], i - d->first[lo], rec, err) != 0) return -1;
    rec->index = i;
    return 0;
}

void lqa_shards_close(lqa_shards *d) {
    if (!d) return;
    for (int i = 0; i < d->n_files; i++) lqa_shard_close(d->files[i]);
    free(d->files);
    free(d->first);
    if (d->manifest) json_decref(d->manifest);
    free(d->dir);
    free(d);
}

/* ---- iterator ---- */

static void make_perm(lqa_iter *it, uint64_t epoch) {
    uint64_t key[2] = {it->pos.seed, epoch};
    lqa_rng r;
    lqa_rng_seed(&r, lqa_xxh64(key, sizeof key, 0x6c71612d73687264ull));
    for (uint64_t i = 0; i < it->n; i++) it->perm[i] = (uint32_t)i;
    lqa_rng_shuffle_u32(&r, it->perm, it->n);
    it->perm_epoch = epoch;
}

int lqa_iter_init(lqa_iter *it, lqa_shards *d, uint64_t seed, int rank, int world, lqa_err *err) {
    memset(it, 0, sizeof *it);
    if (world < 1 || rank < 0 || rank >= world)
        return lqa_err_set(err, "data-parallel rank %d of %d: expected 0 <= rank < world", rank, world);
    it->d = d;
    it->n = lqa_shards_count(d);
    if (it->n > UINT32_MAX) return lqa_err_set(err, "%llu records: over the iterator's 2^32 limit", (unsigned long long)it->n);
    it->per_rank = it->n / (uint64_t)world;
    if (it->per_rank == 0)
        return lqa_err_set(err, "%llu records cannot feed %d ranks (each needs at least one)",
                           (unsigned long long)it->n, world);
    it->pos = (lqa_iter_pos){seed, 0, 0, rank, world};
    it->perm = lqa_malloc(it->n * sizeof *it->perm);
    make_perm(it, 0);
    return 0;
}

int lqa_iter_next(lqa_iter *it, lqa_record *rec, lqa_err *err) {
    if (it->pos.step >= it->per_rank) {
        it->pos.epoch++;
        it->pos.step = 0;
    }
    if (it->perm_epoch != it->pos.epoch) make_perm(it, it->pos.epoch);
    uint64_t at = it->pos.step * (uint64_t)it->pos.world + (uint64_t)it->pos.rank;
    it->pos.step++;
    return lqa_shards_read(it->d, it->perm[at], rec, err);
}

lqa_iter_pos lqa_iter_tell(const lqa_iter *it) { return it->pos; }

int lqa_iter_seek(lqa_iter *it, const lqa_iter_pos *pos, lqa_err *err) {
    if (pos->seed != it->pos.seed || pos->world != it->pos.world || pos->rank != it->pos.rank)
        return lqa_err_set(err, "saved data position is for seed %llu, rank %d of %d; this run has seed %llu, rank %d "
                           "of %d", (unsigned long long)pos->seed, pos->rank, pos->world,
                           (unsigned long long)it->pos.seed, it->pos.rank, it->pos.world);
    if (pos->step > it->per_rank)
        return lqa_err_set(err, "saved data position step %llu is past the %llu records per epoch of this data",
                           (unsigned long long)pos->step, (unsigned long long)it->per_rank);
    it->pos = *pos;
    return 0;
}

void lqa_iter_free(lqa_iter *it) {
    free(it->perm);
    memset(it, 0, sizeof *it);
}
