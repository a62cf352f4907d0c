/* ckpt_run.c: a training run's checkpoints: the run folder's check before a start or a
 * resume, saving (step-N written whole, `latest` switched atomically, old ones pruned) and
 * loading the one to resume from. What makes a checkpoint trustworthy (names, checksums,
 * state.json's values) is ckpt.c's; this file writes and reads the run's state through it. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/fileio.h"
#include "common/json.h"
#include "common/log.h"
#include "common/safetensors.h"
#include "trainer/ckpt.h"
#include "trainer/run.h"

int train_prepare_out_dir(train_run *r, lqa_err *err) {
    r->ckpt_dir = lqa_path_join(r->o->out_dir, "checkpoints");
    char *latest = lqa_path_join(r->ckpt_dir, "latest"), *newest = lqa_ckpt_newest(r->ckpt_dir);
    struct stat st;
    int has_run = lstat(latest, &st) == 0 || newest != NULL;
    free(latest);
    free(newest);
    if (has_run && !r->o->resume)
        return lqa_err_set(err, "%s already holds a run (checkpoints/latest); pass --resume to continue it or choose "
                           "another --out", r->o->out_dir);
    if (!has_run && r->o->resume)
        return lqa_err_set(err, "--resume: %s has no checkpoint (checkpoints/latest)", r->o->out_dir);
    /* what a killed run left beside its files (config.json.tmp.PID, metrics.jsonl.tmp.PID, ...) */
    static const char *const files[] = {"config.json", "metrics.jsonl", "final"};
    for (int i = 0; i < 3; i++) lqa_clean_stale_temps(r->o->out_dir, files[i]);
    if (lqa_mkdir_p(r->ckpt_dir, err)) return -1;
    lqa_clean_stale_temps(r->ckpt_dir, NULL); /* also when no save follows (a resume at the last step) */
    return 0;
}

static void u64_hex(uint64_t x, char out[17]) {
    snprintf(out, 17, "%016llx", (unsigned long long)x);
}

static uint64_t hex_u64(const char *s) {
    return s ? strtoull(s, NULL, 16) : 0;
}

/* A data position as JSON (u64 fields in hex: JSON numbers lose bits above 2^53). */
static json_t *iter_pos_json(const lqa_iter *it) {
    lqa_iter_pos p = lqa_iter_tell(it);
    char seed[17], epoch[17], dstep[17];
    u64_hex(p.seed, seed);
    u64_hex(p.epoch, epoch);
    u64_hex(p.step, dstep);
    json_t *j = json_pack("{s:s, s:s, s:s, s:i, s:i}", "seed", seed, "epoch", epoch, "step", dstep, "rank", p.rank,
                          "world", p.world);
    mallocCheck(j);
    return j;
}

static lqa_iter_pos iter_pos_from_json(const json_t *d) {
    lqa_iter_pos p = {hex_u64(lqa_json_str(d, "seed", NULL)), hex_u64(lqa_json_str(d, "epoch", NULL)),
                      hex_u64(lqa_json_str(d, "step", NULL)), (int)lqa_json_int(d, "rank", 0),
                      (int)lqa_json_int(d, "world", 1)};
    return p;
}

static json_t *rng_json(const lqa_rng *rng) {
    char h[4][17];
    for (int i = 0; i < 4; i++) u64_hex(rng->s[i], h[i]);
    json_t *j = json_pack("[s,s,s,s]", h[0], h[1], h[2], h[3]);
    mallocCheck(j);
    return j;
}

static int rng_from_json(const json_t *a, lqa_rng *rng) {
    if (!json_is_array(a) || json_array_size(a) != 4) return -1;
    for (int i = 0; i < 4; i++) rng->s[i] = hex_u64(json_string_value(json_array_get(a, (size_t)i)));
    return 0;
}

/* state.json: "data" is the first source's position (the single-source layout); with several
 * sources, "sources" holds every source's position and "mix_rng" the mixing RNG. */
static json_t *state_json(const train_run *r) {
    json_t *j = json_pack("{s:I, s:I, s:o, s:f}", "step", (json_int_t)r->step, "optim_t", (json_int_t)r->opt.t,
                          "data", iter_pos_json(&r->src[0].it), "elapsed", r->elapsed_before);
    mallocCheck(j);
    if (r->n_src > 1) {
        json_t *a = json_array();
        mallocCheck(a);
        for (int i = 0; i < r->n_src; i++) {
            json_t *p = iter_pos_json(&r->src[i].it);
            json_object_set_new(p, "dir", json_string(r->src[i].dir));
            json_array_append_new(a, p);
        }
        json_object_set_new(j, "sources", a);
        json_object_set_new(j, "mix_rng", rng_json(&r->mix_rng));
    }
    return j;
}

/* Restores every source's position and the mixing RNG from a state.json. */
static int load_data_state(train_run *r, const json_t *j, const char *path, lqa_err *err) {
    lqa_iter_pos p0 = iter_pos_from_json(json_object_get(j, "data"));
    if (r->n_src == 1) {
        if (json_object_get(j, "sources"))
            return lqa_err_set(err, "%s: the run mixed several --data dirs, this command gives one", path);
        return lqa_iter_seek(&r->src[0].it, &p0, err);
    }
    const json_t *a = json_object_get(j, "sources");
    if (!json_is_array(a) || (int)json_array_size(a) != r->n_src || rng_from_json(json_object_get(j, "mix_rng"), &r->mix_rng))
        return lqa_err_set(err, "%s: \"sources\" (%d expected) or \"mix_rng\" missing; the run was started with "
                           "other --data", path, r->n_src);
    for (int i = 0; i < r->n_src; i++) {
        const json_t *e = json_array_get(a, (size_t)i);
        const char *dir = lqa_json_str(e, "dir", "");
        if (!lqa_same_path(dir, r->src[i].dir))
            return lqa_err_set(err, "%s: source %d was %s, this command gives %s", path, i + 1, dir, r->src[i].dir);
        lqa_iter_pos p = iter_pos_from_json(e);
        if (lqa_iter_seek(&r->src[i].it, &p, err)) return lqa_err_prefix(err, "%s", r->src[i].dir);
    }
    return 0;
}

static int write_state_tensors(const char *path, lqa_optim *opt, lqa_err *err) {
    lqa_optim_to_host(opt); /* a device run's state comes down to the same file */
    int n = opt->n_groups;
    lqa_st_entry *e = lqa_calloc((size_t)(3 * n), sizeof *e);
    char **names = lqa_calloc((size_t)(2 * n), sizeof(char *));
    for (int i = 0; i < n; i++) {
        const lqa_optim_group *g = &opt->groups[i];
        size_t len = strlen(g->name) + 8;
        names[2 * i] = lqa_malloc(len);
        names[2 * i + 1] = lqa_malloc(len);
        snprintf(names[2 * i], len, "adam_m/%s", g->name);
        snprintf(names[2 * i + 1], len, "adam_v/%s", g->name);
        lqa_st_entry parts[3] = {{g->name, 1, {(int64_t)g->n}, g->h_param},
                                 {names[2 * i], 1, {(int64_t)g->n}, g->h_m},
                                 {names[2 * i + 1], 1, {(int64_t)g->n}, g->h_v}};
        memcpy(&e[3 * i], parts, sizeof parts);
    }
    int rc = lqa_st_write(path, e, 3 * n, LQA_ST_F32, NULL, err);
    for (int i = 0; i < 2 * n; i++) free(names[i]);
    free(names);
    free(e);
    return rc;
}

/* Removes a checkpoint directory. */
static void remove_checkpoint(const char *dir) {
    lqa_rm_tree(dir);
}

/* Keeps the newest keep checkpoints (0: all); always removes what killed saves left: temporary
 * folders of dead processes (step-N.tmp-PID, latest.tmp.PID) and the older step-N.tmp form. */
static void prune_checkpoints(const char *ckpt_dir, long newest, long every, int keep) {
    int stale = lqa_clean_stale_temps(ckpt_dir, NULL);
    DIR *d = opendir(ckpt_dir);
    if (!d) return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        long s;
        char tail[8];
        int n = sscanf(de->d_name, "step-%ld%7s", &s, tail);
        if (n == 2 && !strcmp(tail, ".tmp")) {
            char *p = lqa_path_join(ckpt_dir, de->d_name);
            if (lqa_rm_tree(p) == 0) stale++;
            free(p);
        }
        if (n != 1 || keep <= 0) continue;
        if (s <= newest - (long)keep * every) {
            char *p = lqa_path_join(ckpt_dir, de->d_name);
            remove_checkpoint(p);
            free(p);
        }
    }
    closedir(d);
    if (stale) log_info("%s: removed %d temporary folder(s) of interrupted saves", ckpt_dir, stale);
}

/* A checkpoint is built in step-N.tmp-PID and put in place whole (lqa_atomic_dir); state.json
 * records state.safetensors' size and digest and is sealed with its own checksum. Then `latest`
 * is replaced atomically; a run killed before that resumes from the newest complete folder. */
int train_ckpt_save(train_run *r, double elapsed, lqa_err *err) {
    char name[64];
    snprintf(name, sizeof name, "step-%08ld", r->step);
    char *final = lqa_path_join(r->ckpt_dir, name);
    lqa_atomic_dir ad;
    int rc = lqa_atomic_dir_begin(&ad, final, err);
    char *p = rc ? NULL : lqa_path_join(ad.tmp, "state.safetensors");
    if (!rc) rc = write_state_tensors(p, &r->opt, err);
    lqa_kill_point("checkpoint");
    uint64_t st_bytes = 0, st_xxh = 0;
    if (!rc) rc = lqa_ckpt_digest_file(p, &st_bytes, &st_xxh, err);
    free(p);
    if (!rc) {
        double saved = r->elapsed_before;
        r->elapsed_before = elapsed;
        json_t *j = state_json(r);
        r->elapsed_before = saved;
        lqa_ckpt_seal(j, st_bytes, st_xxh);
        p = lqa_path_join(ad.tmp, "state.json");
        rc = lqa_json_write_file(p, j, err);
        free(p);
        json_decref(j);
    }
    if (!rc) rc = lqa_atomic_dir_commit(&ad, err);
    else if (ad.tmp) lqa_atomic_dir_abort(&ad);
    if (!rc) {
        lqa_kill_point("latest");
        p = lqa_path_join(r->ckpt_dir, "latest");
        rc = lqa_write_file_atomic(p, name, strlen(name), err);
        free(p);
    }
    if (!rc) prune_checkpoints(r->ckpt_dir, r->step, r->o->save_every, r->o->keep_checkpoints);
    free(final);
    return rc;
}

static int load_state_tensors(const char *path, lqa_optim *opt, lqa_err *err) {
    lqa_st_reader rd;
    if (lqa_st_open(&rd, path, err)) return -1;
    int rc = 0;
    char name[160];
    lqa_optim_to_host(opt); /* host copies to read into (a device run uploads them below) */
    for (int i = 0; i < opt->n_groups && !rc; i++) {
        lqa_optim_group *g = &opt->groups[i];
        float *dst[3] = {g->h_param, g->h_m, g->h_v};
        const char *prefix[3] = {"", "adam_m/", "adam_v/"};
        for (int k = 0; k < 3 && !rc; k++) {
            snprintf(name, sizeof name, "%s%s", prefix[k], g->name);
            const lqa_st_tensor *t = lqa_st_find(&rd, name);
            if (!t || t->numel != g->n || t->dtype != LQA_ST_F32)
                rc = lqa_err_set(err, "%s: tensor %s is missing or has the wrong size (a checkpoint of another run?)",
                                 path, name);
            else lqa_st_to_f32(t, dst[k]);
        }
    }
    lqa_st_close(&rd);
    if (!rc) lqa_optim_to_device(opt);
    return rc;
}

/* The checkpoint to resume from: the one `latest` names, which must be a complete step-N folder
 * inside checkpoints/; without `latest` (a run killed between a checkpoint and its switch), the
 * newest complete one. Caller frees. */
static char *resume_checkpoint_name(const char *ckpt_dir, lqa_err *err) {
    char *latest = lqa_path_join(ckpt_dir, "latest"), *name = NULL;
    struct stat st;
    if (lstat(latest, &st) != 0) {
        name = lqa_ckpt_newest(ckpt_dir);
        if (name) log_warn("%s is missing (a run killed while switching it); resuming from the newest complete "
                           "checkpoint, %s", latest, name);
        else lqa_err_set(err, "--resume: %s has no complete checkpoint", ckpt_dir);
        free(latest);
        return name;
    }
    size_t n = 0;
    if (lqa_read_file(latest, &name, &n, err)) {
        free(latest);
        return NULL;
    }
    while (n && (name[n - 1] == '\n' || name[n - 1] == ' ')) name[--n] = '\0';
    long step;
    int rc = 0;
    if (lqa_ckpt_name_step(name, &step) || strlen(name) != n)
        rc = lqa_err_set(err, "%s: holds \"%.60s\", expected the name of a checkpoint folder (step-NNNNNNNN) "
                         "inside %s", latest, name, ckpt_dir);
    else if (!lqa_ckpt_is_complete(ckpt_dir, name))
        rc = lqa_err_set(err, "%s names %s, which is not a complete checkpoint folder (state.json and "
                         "state.safetensors)", latest, name);
    free(latest);
    if (rc) {
        free(name);
        return NULL;
    }
    return name;
}

int train_ckpt_load(train_run *r, lqa_err *err) {
    char *name = resume_checkpoint_name(r->ckpt_dir, err);
    if (!name) return -1;
    char *dir = lqa_path_join(r->ckpt_dir, name);
    free(name);
    char *sp = lqa_path_join(dir, "state.json"), *tp = lqa_path_join(dir, "state.safetensors");
    json_t *j = lqa_json_load_file(sp, err);
    int rc = j ? 0 : -1;
    uint64_t want_bytes = 0, want_xxh = 0, bytes, xxh;
    if (!rc) rc = lqa_ckpt_check_state(j, sp, r->o->steps, &want_bytes, &want_xxh, err);
    if (!rc) rc = lqa_ckpt_digest_file(tp, &bytes, &xxh, err);
    if (!rc && (bytes != want_bytes || xxh != want_xxh))
        rc = lqa_err_set(err, "%s: %llu bytes with XXH64 %016llx, state.json recorded %llu bytes with %016llx: the "
                         "file was damaged after it was written", tp, (unsigned long long)bytes,
                         (unsigned long long)xxh, (unsigned long long)want_bytes, (unsigned long long)want_xxh);
    if (!rc) rc = load_state_tensors(tp, &r->opt, err);
    if (!rc) {
        r->step = (long)lqa_json_int(j, "step", -1);
        r->opt.t = (long)lqa_json_int(j, "optim_t", -1);
        r->elapsed_before = lqa_json_num(j, "elapsed", 0);
        if (r->step < 0 || r->opt.t < 0) /* an old "rng" is ignored: nothing drew from it */
            rc = lqa_err_set(err, "%s: \"step\" or \"optim_t\" missing", sp);
        else rc = load_data_state(r, j, sp, err);
    }
    if (!rc) log_info("resuming from %s (step %ld)", dir, r->step);
    if (j) json_decref(j);
    free(sp);
    free(tp);
    free(dir);
    return rc;
}
