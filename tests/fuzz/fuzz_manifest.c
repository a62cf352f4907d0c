/* fuzz_manifest.c: libFuzzer target for shard manifests (dataset/shards_dir.c): the input is
 * the manifest.json of a folder holding two valid shards, given from memory to
 * lqa_shards_open_manifest (what lqa_shards_open calls once it has read the file; writing the
 * file per input cost a disk flush and made the target ~100x slower), which either refuses it
 * cleanly or returns a directory whose every record reads. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/fileio.h"
#include "dataset/shards.h"

static char g_dir[256];

static void write_shard(const char *name, uint64_t seed) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    lqa_shard_info info = {0};
    info.kind = LQA_KIND_LM;
    info.vocab_size = 100;
    lqa_err err;
    lqa_shard_writer *w = lqa_shard_writer_open(path, &info, 1, &err);
    if (!w) abort();
    int32_t tok[8];
    uint8_t mask[8];
    for (int r = 0; r < 3; r++) {
        for (int t = 0; t < 8; t++) tok[t] = (int32_t)((seed + (uint64_t)(r * 8 + t) * 7) % 100), mask[t] = 1;
        if (lqa_shard_writer_add(w, tok, mask, 8, NULL, 0, &err)) abort();
    }
    if (lqa_shard_writer_close(w, &err)) abort();
}

static void remove_dir(void) {
    char path[512];
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/shard-0000%d.lqas", g_dir, i);
        unlink(path);
    }
    rmdir(g_dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    snprintf(g_dir, sizeof g_dir, "/tmp/fuzz-manifest-%ld", (long)getpid());
    lqa_err err;
    if (lqa_mkdir_p(g_dir, &err)) abort();
    write_shard("shard-00000.lqas", 1);
    write_shard("shard-00001.lqas", 2);
    atexit(remove_dir);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    lqa_err err;
    lqa_shards *d = lqa_shards_open_manifest(g_dir, (const char *)data, size, NULL, &err);
    if (!d) return 0;
    lqa_record rec = {0};
    for (uint64_t i = 0; i < lqa_shards_count(d); i++)
        if (lqa_shards_read(d, i, &rec, &err)) __builtin_trap(); /* valid shards: every record reads */
    if (lqa_shards_count(d) != 6) __builtin_trap();              /* both shards, each once */
    lqa_record_free(&rec);
    lqa_shards_close(d);
    return 0;
}
