/* verify.c: `lqa-build verify`: every shard, every checksum, every record decoded (and, with a
 * tokenizer, every record decoded back to text). */
#include <stdio.h>
#include <stdlib.h>

#include "dataset/build.h"
#include "dataset/shards.h"
#include "dataset/tokenizer.h"

long lqa_verify_dir(const char *dir, const char *tokenizer, lqa_err *err) {
    lqa_tokenizer *tok = NULL;
    if (tokenizer && !(tok = lqa_tok_load(tokenizer, err))) return -1;
    lqa_shards *d = lqa_shards_open(dir, tok ? lqa_tok_sha256(tok) : NULL, err);
    if (!d) {
        lqa_tok_free(tok);
        return -1;
    }
    long problems = 0;
    lqa_record rec = {0};
    for (uint64_t i = 0; i < lqa_shards_count(d); i++) {
        lqa_err e;
        if (lqa_shards_read(d, i, &rec, &e) != 0) {
            fprintf(stderr, "verify: %s\n", e.msg);
            problems++;
            continue;
        }
        char *text = NULL;
        if (tok && lqa_tok_decode(tok, rec.tokens, rec.n_tokens, &text, &e) != 0) {
            fprintf(stderr, "verify: %s: record %llu: %s\n", dir, (unsigned long long)i, e.msg);
            problems++;
        }
        free(text);
    }
    lqa_record_free(&rec);
    lqa_shards_close(d);
    lqa_tok_free(tok);
    return problems;
}
