/* hash.c: SHA-256 via nettle, XXH64 via libxxhash. */
#include "common/hash.h"

#include <errno.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <string.h>
#include <xxhash.h>

void lqa_sha256(const void *data, size_t n, uint8_t out[LQA_SHA256_SIZE]) {
    struct sha256_ctx ctx;
    sha256_init(&ctx);
    sha256_update(&ctx, n, data);
    sha256_digest(&ctx, LQA_SHA256_SIZE, out);
}

int lqa_sha256_file(const char *path, uint8_t out[LQA_SHA256_SIZE], lqa_err *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return lqa_err_set(err, "%s: cannot open: %s", path, strerror(errno));
    struct sha256_ctx ctx;
    sha256_init(&ctx);
    uint8_t buf[1 << 16];
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, f)) > 0) sha256_update(&ctx, got, buf);
    int bad = ferror(f);
    fclose(f);
    if (bad) return lqa_err_set(err, "%s: read error", path);
    sha256_digest(&ctx, LQA_SHA256_SIZE, out);
    return 0;
}

void lqa_hex(const uint8_t *bytes, size_t n, char *out) {
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 15];
    }
    out[2 * n] = '\0';
}

uint64_t lqa_xxh64(const void *data, size_t n, uint64_t seed) { return XXH64(data, n, seed); }
