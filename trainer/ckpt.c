/* ckpt.c: checkpoint names, completeness, checksums and state.json validation. See ckpt.h. */
#include "trainer/ckpt.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "common/fileio.h"
#include "common/json.h"

int lqa_ckpt_name_step(const char *name, long *step) {
    if (strncmp(name, "step-", 5) != 0) return -1;
    size_t n = strlen(name + 5);
    if (n < 8 || n > 18) return -1;
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)name[5 + i])) return -1;
    *step = strtol(name + 5, NULL, 10);
    return 0;
}

static int is_regular(const char *dir, const char *name) {
    char *p = lqa_path_join(dir, name);
    struct stat st;
    int ok = lstat(p, &st) == 0 && S_ISREG(st.st_mode);
    free(p);
    return ok;
}

int lqa_ckpt_is_complete(const char *ckpt_dir, const char *name) {
    long step;
    if (lqa_ckpt_name_step(name, &step)) return 0;
    char *p = lqa_path_join(ckpt_dir, name);
    struct stat st;
    int ok = lstat(p, &st) == 0 && S_ISDIR(st.st_mode) && is_regular(p, "state.json") &&
             is_regular(p, "state.safetensors");
    free(p);
    return ok;
}

char *lqa_ckpt_newest(const char *ckpt_dir) {
    DIR *d = opendir(ckpt_dir);
    if (!d) return NULL;
    char *best = NULL;
    long best_step = -1, s;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (lqa_ckpt_name_step(de->d_name, &s) || s <= best_step || !lqa_ckpt_is_complete(ckpt_dir, de->d_name))
            continue;
        free(best);
        best = lqa_strdup(de->d_name);
        best_step = s;
    }
    closedir(d);
    return best;
}

int lqa_ckpt_digest_file(const char *path, uint64_t *bytes, uint64_t *xxh, lqa_err *err) {
    int fd = lqa_open_regular(path, err);
    if (fd < 0) return -1;
    XXH64_state_t *st = XXH64_createState();
    mallocCheck(st);
    XXH64_reset(st, 0);
    enum { CHUNK = 1 << 20 };
    char *buf = lqa_malloc(CHUNK);
    uint64_t total = 0;
    int rc = 0;
    for (;;) {
        ssize_t got = read(fd, buf, CHUNK);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) {
            rc = lqa_err_set(err, "%s: read error: %s", path, strerror(errno));
            break;
        }
        if (got == 0) break;
        XXH64_update(st, buf, (size_t)got);
        total += (uint64_t)got;
    }
    *bytes = total;
    *xxh = XXH64_digest(st);
    XXH64_freeState(st);
    free(buf);
    close(fd);
    return rc;
}

static void hex16(uint64_t x, char out[17]) {
    snprintf(out, 17, "%016llx", (unsigned long long)x);
}

/* 16 lower- or upper-case hex digits, nothing else. */
static int is_hex16(const json_t *v, uint64_t *out) {
    const char *s = json_string_value(v);
    if (!s || strlen(s) != 16) return 0;
    for (int i = 0; i < 16; i++)
        if (!isxdigit((unsigned char)s[i])) return 0;
    if (out) *out = strtoull(s, NULL, 16);
    return 1;
}

static uint64_t content_checksum(const json_t *state) {
    json_t *copy = json_deep_copy(state);
    mallocCheck(copy);
    json_object_del(copy, "checksum");
    /* the precision lqa_json_write_file uses, so a real read back prints the same */
    char *text = json_dumps(copy, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(10));
    mallocCheck(text);
    uint64_t h = XXH64(text, strlen(text), 0x636b7074);
    free(text);
    json_decref(copy);
    return h;
}

void lqa_ckpt_seal(json_t *state, uint64_t st_bytes, uint64_t st_xxh) {
    char h[17];
    hex16(st_xxh, h);
    json_t *f = json_pack("{s:{s:I, s:s}}", "state.safetensors", "bytes", (json_int_t)st_bytes, "xxh64", h);
    mallocCheck(f);
    json_object_set_new(state, "files", f);
    hex16(content_checksum(state), h);
    json_object_set_new(state, "checksum", json_string(h));
}

static int check_rng(const json_t *a) {
    if (!json_is_array(a) || json_array_size(a) != 4) return 0;
    uint64_t any = 0, x;
    for (size_t i = 0; i < 4; i++) {
        if (!is_hex16(json_array_get(a, i), &x)) return 0;
        any |= x;
    }
    return any != 0; /* xoshiro's all-zero state never leaves zero */
}

static int check_pos(const json_t *p) {
    const json_t *rank = json_object_get(p, "rank"), *world = json_object_get(p, "world");
    return json_is_object(p) && is_hex16(json_object_get(p, "seed"), NULL) &&
           is_hex16(json_object_get(p, "epoch"), NULL) && is_hex16(json_object_get(p, "step"), NULL) &&
           json_is_integer(rank) && json_is_integer(world) && json_integer_value(world) >= 1 &&
           json_integer_value(world) <= (1 << 20) && json_integer_value(rank) >= 0 &&
           json_integer_value(rank) < json_integer_value(world);
}

int lqa_ckpt_check_state(const json_t *state, const char *path, long max_step, uint64_t *st_bytes, uint64_t *st_xxh,
                         lqa_err *err) {
    if (!json_is_object(state)) return lqa_err_set(err, "%s: not a JSON object", path);
    uint64_t want;
    if (!is_hex16(json_object_get(state, "checksum"), &want))
        return lqa_err_set(err, "%s: no \"checksum\" (a checkpoint written before checkpoints were checksummed, "
                           "or a damaged one); cannot resume from it", path);
    if (content_checksum(state) != want)
        return lqa_err_set(err, "%s: checksum mismatch: the file was changed or damaged after it was written", path);
    const json_t *step = json_object_get(state, "step"), *t = json_object_get(state, "optim_t"),
                 *el = json_object_get(state, "elapsed");
    if (!json_is_integer(step) || json_integer_value(step) < 1)
        return lqa_err_set(err, "%s: \"step\" must be an integer >= 1", path);
    if (json_integer_value(step) > max_step)
        return lqa_err_set(err, "%s: \"step\" is %lld, beyond --steps %ld; resume with --steps %lld or more", path,
                           (long long)json_integer_value(step), max_step, (long long)json_integer_value(step));
    if (!json_is_integer(t) || json_integer_value(t) < 0 || json_integer_value(t) > json_integer_value(step))
        return lqa_err_set(err, "%s: \"optim_t\" must be an integer in 0..step", path);
    if (!json_is_number(el) || !isfinite(json_number_value(el)) || json_number_value(el) < 0)
        return lqa_err_set(err, "%s: \"elapsed\" must be a finite number of seconds >= 0", path);
    /* "rng": written before 2026-12 (a generator the loop never drew from); still checked when present */
    if (json_object_get(state, "rng") && !check_rng(json_object_get(state, "rng")))
        return lqa_err_set(err, "%s: \"rng\" must be 4 non-zero-together strings of 16 hex digits", path);
    if (!check_pos(json_object_get(state, "data")))
        return lqa_err_set(err, "%s: \"data\" must hold seed, epoch and step (16 hex digits each) and 0 <= rank < "
                           "world", path);
    const json_t *src = json_object_get(state, "sources");
    if (src) {
        if (!json_is_array(src) || json_array_size(src) < 2 || json_array_size(src) > 4096)
            return lqa_err_set(err, "%s: \"sources\" must be an array of 2 or more data positions", path);
        for (size_t i = 0; i < json_array_size(src); i++) {
            const json_t *e = json_array_get(src, i);
            if (!check_pos(e) || !json_is_string(json_object_get(e, "dir")))
                return lqa_err_set(err, "%s: \"sources\"[%zu] must be a data position with a \"dir\"", path, i);
        }
        if (!check_rng(json_object_get(state, "mix_rng")))
            return lqa_err_set(err, "%s: \"mix_rng\" must be 4 strings of 16 hex digits", path);
    }
    const json_t *f = json_object_get(json_object_get(state, "files"), "state.safetensors");
    const json_t *b = json_object_get(f, "bytes");
    if (!json_is_integer(b) || json_integer_value(b) < 0 || !is_hex16(json_object_get(f, "xxh64"), st_xxh))
        return lqa_err_set(err, "%s: \"files\" must record state.safetensors' bytes and xxh64", path);
    *st_bytes = (uint64_t)json_integer_value(b);
    return 0;
}
