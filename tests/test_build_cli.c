/* test_build_cli.c: lqa-build end to end on a fixture store: tokenizer training (byte-identical
 * twice), sft round trip (decoded tokens = rendered template, masked span = answer, evidence
 * kept when cut), thread-count independence, lm blocks, lm documents packed whole, sft packing,
 * verify/inspect/stats, and corruption and bad input through the CLI. */
#include "tests/testutil.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "common/fileio.h"
#include "common/hash.h"
#include "common/json.h"
#include "dataset/build.h"
#include "dataset/shards.h"
#include "dataset/tokenizer.h"
#include "store/store.h"
#include "tests/test_shards_util.h"

static char g_db[512], g_tok[512], g_dir[512];
static const char *g_tool;
static uint64_t g_seed;

static int setup(void **state) {
    g_seed = lqa_test_seed();
    const char *tmp = lqa_test_tmpdir();
    g_tool = lqa_test_tool("lqa-build");
    snprintf(g_db, sizeof g_db, "%s", fixture_store(tmp, "fx.db", g_seed, 12, 3, 40, 4));
    snprintf(g_tok, sizeof g_tok, "%s/tok.model", tmp);
    snprintf(g_dir, sizeof g_dir, "%s", tmp);
    lqa_buf out = {0};
    int rc = lqa_test_run(&out, "%s tokenizer --db %s --vocab-size 800 --seed 7 -o %s", g_tool, g_db, g_tok);
    if (rc != 0) fprintf(stderr, "tokenizer training failed: %s\n", out.data);
    lqa_buf_free(&out);
    return rc;
}

static char *path_in(const char *name) { return lqa_path_join(g_dir, name); }

static int build(const char *out_name, const char *extra) {
    char *out = path_in(out_name);
    lqa_buf log = {0};
    int rc = lqa_test_run(&log, "%s shards --db %s --tokenizer %s -o %s %s", g_tool, g_db, g_tok, out, extra);
    if (rc != 0) fprintf(stderr, "lqa-build shards %s: %s\n", extra, log.data);
    lqa_buf_free(&log);
    free(out);
    return rc;
}

static void test_tokenizer_cli_is_deterministic(void **state) {
    char *again = path_in("tok-again.model");
    assert_int_equal(lqa_test_run(NULL, "%s tokenizer --db %s --vocab-size 800 --seed 7 -o %s", g_tool, g_db, again), 0);
    assert_int_equal(lqa_test_run(NULL, "cmp %s %s", g_tok, again), 0);
    lqa_err err;
    lqa_tokenizer *t = lqa_tok_load(g_tok, &err);
    assert_non_null(t);
    assert_int_equal(lqa_tok_pad_id(t), -1);
    assert_int_equal(lqa_tok_bos_id(t), 1);
    lqa_tok_free(t);
    lqa_buf out = {0};
    assert_int_equal(lqa_test_run(&out, "%s tokenizer --db %s/none.db --vocab-size 800 -o %s", g_tool, g_dir, again), 1);
    assert_non_null(strstr(out.data, "none.db"));
    lqa_buf_free(&out);
    free(again);
}

typedef struct qa_ref {
    int64_t id, doc_id;
    char *question, *answer;
    size_t ev_start, ev_end;
} qa_ref;

typedef struct refs {
    qa_ref q[256];
    int n;
} refs;

static int keep_qa(const lqa_store_qa *qa, void *ctx) {
    refs *r = ctx;
    r->q[r->n++] = (qa_ref){qa->id, qa->doc_id, strdup(qa->question), strdup(qa->answer), qa->ev_start, qa->ev_end};
    return 0;
}

/* Checks one sft record against its QA pair: template, mask, answer, evidence. Returns 1 when
 * the document was cut. */
static int check_sft_record(lqa_tokenizer *t, lqa_store *st, const lqa_record *rec, uint32_t start, uint32_t n,
                            const refs *rf, int max_len) {
    const int32_t *tok = rec->tokens + start;
    const uint8_t *mask = rec->loss_mask + start;
    assert_true(n <= (uint32_t)max_len);
    assert_int_equal(tok[0], lqa_tok_bos_id(t));
    assert_int_equal(tok[n - 1], lqa_tok_eos_id(t));
    uint32_t first = 0;
    while (first < n && !mask[first]) first++;
    assert_true(first > 1 && first < n);
    for (uint32_t k = first; k < n; k++) assert_int_equal(mask[k], 1); /* answer + EOS, nothing else */
    const qa_ref *q = NULL;
    for (int i = 0; i < rf->n; i++)
        if (rf->q[i].id == rec->segments[0].qa_id) q = &rf->q[i];
    for (uint32_t s = 0; s < rec->n_segments; s++)
        if (rec->segments[s].start == start)
            for (int i = 0; i < rf->n; i++)
                if (rf->q[i].id == rec->segments[s].qa_id) q = &rf->q[i];
    assert_non_null(q);
    lqa_err err;
    char *answer, *all;
    assert_int_equal(lqa_tok_decode(t, tok + first, n - 1 - first, &answer, &err), 0);
    assert_string_equal(answer, q->answer);
    assert_int_equal(lqa_tok_decode(t, tok + 1, n - 2, &all, &err), 0);
    /* "[INST]" HEAD doc-window MID question "[/INST]" " " answer (the space: the answer's dummy prefix) */
    const char *head = "[INST]" LQA_PROMPT_HEAD;
    assert_memory_equal(all, head, strlen(head));
    lqa_buf tail = {0};
    lqa_buf_printf(&tail, "%s%s[/INST] %s", LQA_PROMPT_MID, q->question, q->answer);
    size_t n_all = strlen(all);
    assert_true(n_all >= strlen(head) + tail.len);
    assert_string_equal(all + n_all - tail.len, tail.data);
    size_t w_len = n_all - tail.len - strlen(head);
    char *window = strndup(all + strlen(head), w_len);
    lqa_store_doc doc;
    assert_int_equal(lqa_store_get_doc(st, q->doc_id, &doc, &err), 0);
    const char *at = strstr(doc.text, window);
    assert_non_null(at); /* the window is a piece of the document */
    if (q->ev_end > q->ev_start) { /* and holds the whole evidence span */
        size_t wa = (size_t)(at - doc.text);
        assert_true(wa <= q->ev_start && wa + w_len >= q->ev_end);
    }
    int cut = w_len < doc.text_len;
    lqa_store_doc_free(&doc);
    free(window), free(answer), free(all);
    lqa_buf_free(&tail);
    return cut;
}

static void load_refs(lqa_store *st, refs *rf) {
    lqa_err err;
    rf->n = 0;
    assert_int_equal(lqa_store_each_qa(st, NULL, NULL, keep_qa, rf, &err), 0);
}

static void free_refs(refs *rf) {
    for (int i = 0; i < rf->n; i++) free(rf->q[i].question), free(rf->q[i].answer);
}

static void test_sft_round_trip(void **state) {
    int max_len = 400 + (int)(g_seed % 600);
    char extra[128];
    snprintf(extra, sizeof extra, "--kind sft --max-len %d --split all --shard-records 5", max_len);
    assert_int_equal(build("sft", extra), 0);
    lqa_err err;
    lqa_tokenizer *t = lqa_tok_load(g_tok, &err);
    char *dir = path_in("sft");
    lqa_shards *d = lqa_shards_open(dir, lqa_tok_sha256(t), &err);
    assert_non_null(d);
    assert_true(lqa_shards_n_files(d) > 1);
    lqa_store *st = lqa_store_open(g_db, 0, &err);
    refs *rf = calloc(1, sizeof *rf);
    load_refs(st, rf);
    lqa_record rec = {0};
    uint64_t cut = 0;
    for (uint64_t i = 0; i < lqa_shards_count(d); i++) {
        assert_int_equal(lqa_shards_read(d, i, &rec, &err), 0);
        assert_int_equal(rec.n_segments, 1);
        cut += (uint64_t)check_sft_record(t, st, &rec, 0, rec.n_tokens, rf, max_len);
    }
    const json_t *m = lqa_shards_manifest(d);
    assert_int_equal(lqa_json_int(m, "truncated", -1), (long long)cut);
    assert_true(cut > 0); /* the fixture's long documents do not fit */
    assert_int_equal(lqa_json_int(m, "records", 0) + lqa_json_int(m, "dropped", 0), rf->n);
    lqa_record_free(&rec);
    free_refs(rf);
    free(rf);
    lqa_store_close(st);
    lqa_shards_close(d);
    lqa_tok_free(t);
    free(dir);
}

static void test_too_long_records_dropped_and_counted(void **state) {
    /* a budget that the prompt, question and answer alone nearly fill: some records cannot keep
     * their evidence and are dropped; the rest still hold their whole answer */
    int max_len = 70 + (int)(g_seed % 30);
    char extra[128];
    snprintf(extra, sizeof extra, "--kind sft --max-len %d --split all", max_len);
    assert_int_equal(build("tiny", extra), 0);
    lqa_err err;
    char *dir = path_in("tiny");
    lqa_shards *d = lqa_shards_open(dir, NULL, &err);
    assert_non_null(d);
    const json_t *m = lqa_shards_manifest(d);
    long long dropped = lqa_json_int(m, "dropped", -1);
    const json_t *why = json_object_get(m, "dropped_reasons");
    assert_true(dropped > 0);
    assert_int_equal(dropped, lqa_json_int(why, "question_and_answer_too_long", 0) +
                                  lqa_json_int(why, "evidence_too_long", 0) + lqa_json_int(why, "unreadable", 0) +
                                  lqa_json_int(why, "anchor_and_evidence_too_far", 0));
    lqa_store *st = lqa_store_open(g_db, 0, &err);
    refs *rf = calloc(1, sizeof *rf);
    load_refs(st, rf);
    assert_int_equal(lqa_json_int(m, "records", 0) + dropped, rf->n);
    lqa_tokenizer *t = lqa_tok_load(g_tok, &err);
    lqa_record rec = {0};
    for (uint64_t i = 0; i < lqa_shards_count(d); i++) {
        assert_int_equal(lqa_shards_read(d, i, &rec, &err), 0);
        check_sft_record(t, st, &rec, 0, rec.n_tokens, rf, max_len);
    }
    lqa_record_free(&rec);
    lqa_tok_free(t);
    free_refs(rf);
    free(rf);
    lqa_store_close(st);
    lqa_shards_close(d);
    free(dir);
}

/* Paragraph starts of text (after each "\n\n"), at most cap. */
static int para_starts(const char *text, size_t *at, int cap) {
    int n = 0;
    at[n++] = 0;
    for (const char *p = text; (p = strstr(p, "\n\n")) && n < cap; p += 2) at[n++] = (size_t)(p + 2 - text);
    return n;
}

/* The sft window keeps a pair's anchor (the place its question quotes) with its evidence: a pair
 * whose anchor lies in the evidence's paragraph is always kept, with both spans in the window;
 * one whose anchor lies tens of thousands of bytes away cannot fit --max-len and is dropped
 * and counted as such. */
static void test_sft_keeps_anchor_with_evidence(void **state) {
    lqa_rng r;
    lqa_rng_seed(&r, g_seed + 31);
    char db[600];
    snprintf(db, sizeof db, "%s/anchor.db", g_dir);
    lqa_err err;
    lqa_store *s = lqa_store_open(db, 1, &err);
    assert_non_null(s);
    int64_t src = lqa_store_source(s, "fixture");
    int near_ids[64], n_near = 0, n_far = 0;
    int64_t near_qa[64];
    for (int d = 0; d < 3; d++) {
        char *text = fixture_doc(&r, 250);
        size_t len = strlen(text), at[400];
        int np = para_starts(text, at, 400);
        assert_true(np > 240);
        uint8_t h[32];
        char hex[65];
        lqa_sha256(text, len, h);
        lqa_hex(h, 32, hex);
        lqa_store_begin(s);
        lqa_store_doc_in in = {src, hex, "doc", "txt", "doc.txt", "train", text, len, 0, 0};
        int64_t id = lqa_store_add_doc(s, &in);
        for (int q = 0; q < 6; q++) {
            int pe = 1 + (int)lqa_rng_below(&r, 40), far = q % 2;
            size_t es = at[pe], ee = at[pe + 1] - 2; /* evidence: one paragraph */
            size_t ans_end = es + 8;
            while (ans_end < ee && text[ans_end] != ' ') ans_end++;
            char *answer = lqa_strndup(text + es, ans_end - es);
            size_t as, ae;
            if (far) { /* a paragraph 200 paragraphs on: ~50 KB away */
                int pa = pe + 200;
                as = at[pa], ae = at[pa] + 10;
            } else { /* a few words inside the evidence's paragraph */
                as = es + (ee - es) / 2, ae = as + 6;
            }
            char question[160];
            snprintf(question, sizeof question, "Which words open paragraph %d (anchored %s), number %d?", pe,
                     far ? "far" : "near", q);
            lqa_store_qa_in qa = {.doc_id = id, .question = question, .answer = answer, .kind = "order",
                                  .generator = "fixture", .ev_start = es, .ev_end = ee, .doc_len = len,
                                  .anchor_start = as, .anchor_end = ae};
            int64_t qid = lqa_store_add_qa(s, &qa);
            assert_true(qid > 0);
            if (far) n_far++;
            else near_qa[n_near] = qid, near_ids[n_near++] = 0;
            free(answer);
        }
        lqa_store_commit(s);
        free(text);
    }
    lqa_store_close(s);
    char *out = path_in("anchored");
    lqa_buf log = {0};
    int rc = lqa_test_run(&log, "%s shards --db %s --tokenizer %s -o %s --kind sft --max-len 600 --split all", g_tool,
                          db, g_tok, out);
    if (rc) fprintf(stderr, "%s\n", log.data);
    assert_int_equal(rc, 0);
    lqa_buf_free(&log);
    lqa_tokenizer *t = lqa_tok_load(g_tok, &err);
    lqa_shards *sh = lqa_shards_open(out, lqa_tok_sha256(t), &err);
    assert_non_null(sh);
    lqa_store *st = lqa_store_open(db, 0, &err);
    lqa_record rec = {0};
    for (uint64_t i = 0; i < lqa_shards_count(sh); i++) {
        assert_int_equal(lqa_shards_read(sh, i, &rec, &err), 0);
        int64_t qid = rec.segments[0].qa_id;
        int k = -1;
        for (int j = 0; j < n_near; j++)
            if (near_qa[j] == qid) k = j;
        assert_true(k >= 0); /* only near pairs are written */
        near_ids[k]++;
        /* the window, decoded: it holds the anchor's and the evidence's text */
        char *all;
        assert_int_equal(lqa_tok_decode(t, rec.tokens + 1, rec.n_tokens - 2, &all, &err), 0);
        lqa_store_qa got = {0};
        sqlite3_stmt *q;
        assert_int_equal(sqlite3_prepare_v2(lqa_store_db(st), "SELECT doc_id, ev_start, ev_end, anchor_start, anchor_end"
                                            " FROM qa WHERE id = ?", -1, &q, NULL), SQLITE_OK);
        sqlite3_bind_int64(q, 1, qid);
        assert_int_equal(sqlite3_step(q), SQLITE_ROW);
        got.doc_id = sqlite3_column_int64(q, 0);
        got.ev_start = (size_t)sqlite3_column_int64(q, 1), got.ev_end = (size_t)sqlite3_column_int64(q, 2);
        got.anchor_start = (size_t)sqlite3_column_int64(q, 3), got.anchor_end = (size_t)sqlite3_column_int64(q, 4);
        sqlite3_finalize(q);
        lqa_store_doc doc;
        assert_int_equal(lqa_store_get_doc(st, got.doc_id, &doc, &err), 0);
        char *ev = lqa_strndup(doc.text + got.ev_start, got.ev_end - got.ev_start);
        char *an = lqa_strndup(doc.text + got.anchor_start, got.anchor_end - got.anchor_start);
        assert_non_null(strstr(all, ev));
        assert_non_null(strstr(all, an));
        free(ev), free(an), free(all);
        lqa_store_doc_free(&doc);
    }
    for (int j = 0; j < n_near; j++) assert_int_equal(near_ids[j], 1); /* every near pair, once */
    const json_t *m = lqa_shards_manifest(sh);
    const json_t *why = json_object_get(m, "dropped_reasons"), *anc = json_object_get(m, "anchors");
    assert_int_equal(lqa_json_int(why, "anchor_and_evidence_too_far", -1), n_far);
    assert_int_equal(lqa_json_int(m, "dropped", -1), n_far);
    assert_int_equal(lqa_json_int(anc, "records_with_anchor", -1), n_near);
    assert_int_equal(lqa_json_int(anc, "records_keeping_anchor_and_evidence", -1), n_near);
    lqa_record_free(&rec);
    lqa_shards_close(sh);
    lqa_store_close(st);
    lqa_tok_free(t);
    free(out);
}

static void compare_dirs(const char *a, const char *b) {
    char *pa = path_in(a), *pb = path_in(b);
    lqa_buf out = {0};
    int rc = lqa_test_run(&out, "diff -r %s %s", pa, pb);
    if (rc) fprintf(stderr, "%s\n", out.data);
    assert_int_equal(rc, 0);
    assert_int_equal(lqa_test_run(NULL, "ls %s/shard-00000.lqas", pa), 0); /* not two empty dirs */
    lqa_buf_free(&out);
    free(pa), free(pb);
}

static void test_same_bytes_whatever_the_threads(void **state) {
    assert_int_equal(build("t1", "--kind sft --max-len 700 --split all --threads 1 --shard-records 7"), 0);
    assert_int_equal(build("t2", "--kind sft --max-len 700 --split all --threads 2 --shard-records 7"), 0);
    compare_dirs("t1", "t2");
    assert_int_equal(build("l1", "--kind lm --max-len 300 --threads 1"), 0);
    assert_int_equal(build("l2", "--kind lm --max-len 300 --threads 2"), 0);
    compare_dirs("l1", "l2");
}

typedef struct doc_ids {
    int64_t id[64];
    int n;
} doc_ids;

static int keep_doc(const lqa_store_doc *doc, void *ctx) {
    doc_ids *d = ctx;
    d->id[d->n++] = doc->id;
    return 0;
}

static void test_lm_blocks(void **state) {
    int max_len = 128 + (int)(g_seed % 256);
    char extra[128];
    snprintf(extra, sizeof extra, "--kind lm --max-len %d --split train", max_len);
    assert_int_equal(build("lm", extra), 0);
    lqa_err err;
    lqa_tokenizer *t = lqa_tok_load(g_tok, &err);
    char *dir = path_in("lm");
    lqa_shards *d = lqa_shards_open(dir, lqa_tok_sha256(t), &err);
    assert_non_null(d);
    assert_int_equal(lqa_shards_get_info(d)->kind, LQA_KIND_LM);
    /* the expected stream: each train document's tokens then EOS, in id order */
    lqa_store *st = lqa_store_open(g_db, 0, &err);
    doc_ids ids = {0};
    assert_int_equal(lqa_store_each_doc(st, "train", keep_doc, &ids, &err), 0);
    lqa_buf want = {0};
    for (int i = 0; i < ids.n; i++) {
        lqa_store_doc doc;
        assert_int_equal(lqa_store_get_doc(st, ids.id[i], &doc, &err), 0);
        int32_t *tok;
        size_t n;
        assert_int_equal(lqa_tok_encode_whole(t, doc.text, doc.text_len, &tok, &n, &err), 0); /* plain sentencepiece */
        lqa_buf_append(&want, tok, n * sizeof *tok);
        int32_t eos = lqa_tok_eos_id(t);
        lqa_buf_append(&want, &eos, sizeof eos);
        free(tok);
        lqa_store_doc_free(&doc);
    }
    size_t want_n = want.len / sizeof(int32_t);
    uint64_t blocks = lqa_shards_count(d);
    assert_int_equal(blocks, want_n / (size_t)max_len); /* the partial last block is left out */
    assert_int_equal(lqa_json_int(lqa_shards_manifest(d), "dropped_tail_tokens", -1), (long long)(want_n % max_len));
    lqa_record rec = {0};
    for (uint64_t b = 0; b < blocks; b++) {
        assert_int_equal(lqa_shards_read(d, b, &rec, &err), 0);
        assert_int_equal(rec.n_tokens, max_len);
        assert_memory_equal(rec.tokens, (int32_t *)want.data + b * (size_t)max_len, (size_t)max_len * sizeof(int32_t));
        assert_int_equal(rec.loss_mask[0], 0);
        for (int k = 1; k < max_len; k++) assert_int_equal(rec.loss_mask[k], 1);
        for (int k = 0; k < max_len; k++) assert_int_equal(rec.segment_ids[k], 0); /* one attention span */
    }
    lqa_record_free(&rec);
    lqa_buf_free(&want);
    lqa_store_close(st);
    lqa_shards_close(d);
    lqa_tok_free(t);
    free(dir);
}

/* lm --pack: every train document (then EOS) whole and in id order, each in segments of its
 * own, several to a sequence of at most max_len (greedy), a document cut into max_len pieces
 * only when it is longer than that; nothing is left out; a segment's first token is no target. */
static void test_lm_pack_keeps_documents_whole(void **state) {
    lqa_err err;
    lqa_tokenizer *t = lqa_tok_load(g_tok, &err);
    lqa_store *st = lqa_store_open(g_db, 0, &err);
    doc_ids ids = {0};
    assert_int_equal(lqa_store_each_doc(st, "train", keep_doc, &ids, &err), 0);
    /* each document's tokens then EOS; max_len one less than the longest, so it is cut */
    int32_t **toks = calloc((size_t)ids.n, sizeof *toks);
    size_t *lens = calloc((size_t)ids.n, sizeof *lens), longest = 0, shortest = SIZE_MAX, second = SIZE_MAX;
    for (int i = 0; i < ids.n; i++) {
        lqa_store_doc doc;
        assert_int_equal(lqa_store_get_doc(st, ids.id[i], &doc, &err), 0);
        assert_int_equal(lqa_tok_encode_whole(t, doc.text, doc.text_len, &toks[i], &lens[i], &err), 0);
        toks[i] = realloc(toks[i], (lens[i] + 1) * sizeof **toks);
        toks[i][lens[i]++] = lqa_tok_eos_id(t);
        if (lens[i] > longest) longest = lens[i];
        if (lens[i] < shortest) second = shortest, shortest = lens[i];
        else if (lens[i] < second) second = lens[i];
        lqa_store_doc_free(&doc);
    }
    int max_len = (int)longest - 1;
    char extra[128];
    snprintf(extra, sizeof extra, "--kind lm --max-len %d --split train --pack", max_len);
    assert_int_equal(build("lmpack", extra), 0);
    char *dir = path_in("lmpack");
    lqa_shards *d = lqa_shards_open(dir, lqa_tok_sha256(t), &err);
    assert_non_null(d);
    assert_true(lqa_shards_get_info(d)->flags & LQA_SHARD_PACKED);
    assert_int_equal(lqa_json_int(lqa_shards_manifest(d), "dropped_tail_tokens", -1), 0);
    lqa_record rec = {0};
    uint64_t r = 0;
    uint32_t s = 0;
    int shared = 0;
    assert_int_equal(lqa_shards_read(d, 0, &rec, &err), 0);
    for (int i = 0; i < ids.n; i++) {
        for (size_t at = 0; at < lens[i];) {
            if (s == rec.n_segments) { /* the next record: closed only because this piece did not fit */
                uint32_t fill = rec.n_tokens;
                assert_int_equal(lqa_shards_read(d, ++r, &rec, &err), 0);
                s = 0;
                assert_true(fill + rec.segments[0].len > (uint32_t)max_len);
            }
            const lqa_segment *g = &rec.segments[s];
            size_t want = lens[i] - at < (size_t)max_len ? lens[i] - at : (size_t)max_len;
            assert_int_equal(g->doc_id, ids.id[i]);
            assert_int_equal(g->len, want);
            assert_memory_equal(rec.tokens + g->start, toks[i] + at, want * sizeof **toks);
            assert_int_equal(rec.loss_mask[g->start], 0);
            for (uint32_t k = g->start; k < g->start + g->len; k++) {
                assert_int_equal(rec.segment_ids[k], (int32_t)s);
                if (k > g->start) assert_int_equal(rec.loss_mask[k], 1);
            }
            shared += rec.n_segments > 1;
            assert_true(rec.n_tokens <= (uint32_t)max_len);
            at += want;
            s++;
        }
    }
    assert_int_equal(s, rec.n_segments);
    assert_int_equal(r + 1, lqa_shards_count(d)); /* every token accounted for, no record left */
    if (shortest + second <= (size_t)max_len) assert_true(shared > 0);
    for (int i = 0; i < ids.n; i++) free(toks[i]);
    free(toks);
    free(lens);
    lqa_record_free(&rec);
    lqa_store_close(st);
    lqa_shards_close(d);
    lqa_tok_free(t);
    free(dir);
}

static void test_pack_keeps_records_apart(void **state) {
    assert_int_equal(build("unpacked", "--kind sft --max-len 1500 --split all"), 0);
    assert_int_equal(build("packed", "--kind sft --max-len 1500 --split all --pack"), 0);
    lqa_err err;
    lqa_tokenizer *t = lqa_tok_load(g_tok, &err);
    char *du = path_in("unpacked"), *dp = path_in("packed");
    lqa_shards *u = lqa_shards_open(du, NULL, &err), *p = lqa_shards_open(dp, NULL, &err);
    assert_non_null(u);
    assert_non_null(p);
    assert_true(lqa_shards_get_info(p)->flags & LQA_SHARD_PACKED);
    /* greedy packing in record order: a sequence is closed when the next record does not fit */
    uint64_t want_packs = 0, fill = 0;
    lqa_record one = {0};
    for (uint64_t i = 0; i < lqa_shards_count(u); i++) {
        assert_int_equal(lqa_shards_read(u, i, &one, &err), 0);
        if (i == 0 || fill + one.n_tokens > 1500) want_packs++, fill = 0;
        fill += one.n_tokens;
    }
    assert_int_equal(lqa_shards_count(p), want_packs);
    lqa_store *st = lqa_store_open(g_db, 0, &err);
    refs *rf = calloc(1, sizeof *rf);
    load_refs(st, rf);
    lqa_record rec = {0};
    uint64_t next_unpacked = 0;
    for (uint64_t i = 0; i < lqa_shards_count(p); i++) {
        assert_int_equal(lqa_shards_read(p, i, &rec, &err), 0);
        assert_true(rec.n_tokens <= 1500);
        uint32_t covered = 0;
        for (uint32_t s = 0; s < rec.n_segments; s++) {
            const lqa_segment *g = &rec.segments[s];
            assert_int_equal(g->start, covered); /* segments tile the sequence */
            covered += g->len;
            for (uint32_t k = g->start; k < g->start + g->len; k++) assert_int_equal(rec.segment_ids[k], (int32_t)s);
            check_sft_record(t, st, &rec, g->start, g->len, rf, 1500);
            /* the same tokens as the unpacked record, in the same order */
            assert_int_equal(lqa_shards_read(u, next_unpacked++, &one, &err), 0);
            assert_int_equal(one.n_tokens, g->len);
            assert_memory_equal(one.tokens, rec.tokens + g->start, g->len * sizeof(int32_t));
        }
        assert_int_equal(covered, rec.n_tokens);
    }
    assert_int_equal(next_unpacked, lqa_shards_count(u));
    lqa_record_free(&rec);
    lqa_record_free(&one);
    free_refs(rf);
    free(rf);
    lqa_store_close(st);
    lqa_shards_close(u);
    lqa_shards_close(p);
    lqa_tok_free(t);
    free(du), free(dp);
}

static void test_verify_inspect_stats_and_damage(void **state) {
    assert_int_equal(build("v", "--kind sft --max-len 800 --split all"), 0);
    char *dir = path_in("v");
    lqa_buf out = {0};
    assert_int_equal(lqa_test_run(&out, "%s verify %s --tokenizer %s", g_tool, dir, g_tok), 0);
    /* the round trip against the store holds; against another store with other text it does not */
    assert_int_equal(lqa_test_run(&out, "%s verify %s --tokenizer %s --db %s", g_tool, dir, g_tok, g_db), 0);
    char other_db[1100];
    snprintf(other_db, sizeof other_db, "%s", fixture_store(g_dir, "other.db", g_seed + 5, 12, 3, 10, 4));
    lqa_buf_clear(&out);
    assert_int_equal(lqa_test_run(&out, "%s verify %s --tokenizer %s --db %s", g_tool, dir, g_tok, other_db), 1);
    assert_non_null(strstr(out.data, "qa "));
    lqa_buf_clear(&out);
    assert_int_equal(lqa_test_run(&out, "%s inspect %s --record 0", g_tool, dir), 0);
    lqa_err err;
    lqa_shards *d = lqa_shards_open(dir, NULL, &err);
    lqa_record rec = {0};
    assert_int_equal(lqa_shards_read(d, 0, &rec, &err), 0);
    lqa_store *st = lqa_store_open(g_db, 0, &err);
    refs *rf = calloc(1, sizeof *rf);
    load_refs(st, rf);
    for (int i = 0; i < rf->n; i++)
        if (rf->q[i].id == rec.segments[0].qa_id) {
            lqa_buf want = {0};
            lqa_buf_printf(&want, "<<< %s>>>", rf->q[i].answer); /* the dummy-prefix space decodes inside */
            if (!strstr(out.data, want.data)) {
                lqa_buf_clear(&want);
                lqa_buf_printf(&want, "<<<%s>>>", rf->q[i].answer);
            }
            assert_non_null(strstr(out.data, want.data));
            lqa_buf_free(&want);
        }
    long long records = (long long)lqa_shards_count(d);
    lqa_shards_close(d);
    lqa_record_free(&rec);
    free_refs(rf);
    free(rf);
    lqa_store_close(st);
    lqa_buf_clear(&out);
    assert_int_equal(lqa_test_run(&out, "%s stats %s", g_tool, dir), 0);
    char want[64];
    snprintf(want, sizeof want, "records %lld,", records);
    assert_non_null(strstr(out.data, want));
    /* damage: a flipped byte inside the frames, then a truncated shard, then another tokenizer */
    lqa_rng r;
    lqa_rng_seed(&r, g_seed + 9);
    char *shard = lqa_path_join(dir, "shard-00000.lqas");
    char *data;
    size_t len;
    assert_int_equal(lqa_read_file(shard, &data, &len, &err), 0);
    size_t at = LQA_SHARD_HEADER_SIZE + lqa_rng_below(&r, len / 2);
    char flip = (char)(1 + lqa_rng_below(&r, 255));
    data[at] ^= flip;
    lqa_test_write(shard, data, len);
    lqa_buf_clear(&out);
    assert_int_equal(lqa_test_run(&out, "%s verify %s", g_tool, dir), 1);
    assert_non_null(strstr(out.data, "shard-00000.lqas"));
    assert_non_null(strstr(out.data, "checksum"));
    data[at] ^= flip; /* undone; now truncated: the original length minus a random tail */
    lqa_test_write(shard, data, len - 1 - lqa_rng_below(&r, len / 2));
    lqa_buf_clear(&out);
    assert_int_equal(lqa_test_run(&out, "%s verify %s", g_tool, dir), 1);
    assert_non_null(strstr(out.data, "shard-00000.lqas"));
    lqa_buf_clear(&out);
    assert_int_equal(lqa_test_run(&out, "%s inspect %s --record 0", g_tool, dir), 1);
    /* wrong magic */
    memcpy(data, "LQASHRD9", 8);
    lqa_test_write(shard, data, len);
    lqa_buf_clear(&out);
    assert_int_equal(lqa_test_run(&out, "%s verify %s", g_tool, dir), 1);
    assert_non_null(strstr(out.data, "wrong magic"));
    /* a header that lies about the record count (its own checksum made to match) */
    memcpy(data, LQA_SHARD_MAGIC, 8);
    uint64_t lie = (uint64_t)records + 1 + lqa_rng_below(&r, 1000);
    memcpy(data + 32, &lie, 8);
    uint64_t x = lqa_xxh64(data, 120, 0);
    memcpy(data + 120, &x, 8);
    lqa_test_write(shard, data, len);
    lqa_buf_clear(&out);
    assert_int_equal(lqa_test_run(&out, "%s verify %s", g_tool, dir), 1);
    assert_non_null(strstr(out.data, "header says"));
    free(data);
    char *other = path_in("other.model");
    fixture_tokenizer(g_dir, "other.model", g_seed + 1, 500);
    assert_int_equal(build("v2", "--kind sft --max-len 800 --split all"), 0);
    char *dir2 = path_in("v2");
    lqa_buf_clear(&out);
    assert_int_equal(lqa_test_run(&out, "%s verify %s --tokenizer %s", g_tool, dir2, other), 1);
    assert_non_null(strstr(out.data, "tokenizer"));
    lqa_buf_free(&out);
    free(shard), free(dir), free(dir2), free(other);
}

static void test_bad_input(void **state) {
    lqa_buf out = {0};
    char *dir = path_in("bad");
    assert_int_equal(lqa_test_run(&out, "%s shards --db %s/nope.db --tokenizer %s --kind sft --max-len 100 -o %s",
                                  g_tool, g_dir, g_tok, dir), 1);
    assert_non_null(strstr(out.data, "nope.db"));
    assert_false(lqa_path_exists(dir));
    assert_int_equal(lqa_test_run(NULL, "%s shards --db %s --tokenizer %s --kind chat --max-len 100 -o %s", g_tool,
                                  g_db, g_tok, dir), 2);
    /* an existing directory that is not a shard directory is never replaced */
    char *keep = lqa_path_join(dir, "precious.txt");
    lqa_test_write(keep, "x", 1);
    lqa_buf_clear(&out);
    assert_int_equal(lqa_test_run(&out, "%s shards --db %s --tokenizer %s --kind sft --max-len 500 -o %s", g_tool,
                                  g_db, g_tok, dir), 1);
    assert_non_null(strstr(out.data, "refusing"));
    assert_true(lqa_path_exists(keep));
    lqa_buf_clear(&out);
    assert_int_equal(lqa_test_run(&out, "%s verify %s", g_tool, dir), 1);
    assert_non_null(strstr(out.data, "manifest.json"));
    const char *cmds[] = {"tokenizer", "shards", "verify", "inspect", "stats"};
    for (int i = 0; i < 5; i++) {
        lqa_buf_clear(&out);
        assert_int_equal(lqa_test_run(&out, "%s %s --help", g_tool, cmds[i]), 0);
        assert_non_null(strstr(out.data, "usage: lqa-build"));
    }
    lqa_buf_free(&out);
    free(keep), free(dir);
}

/* A value holding a newline cannot forge an "error:" line: getopt's refusals, unknown commands
 * and the folders named in messages are printed escaped. */
static void test_newline_in_argument_escaped(void **state) {
    static const char *const cases[] = {
        "tokenizer --%s",
        "shards --%s",
        "verify --%s",
        "verify %s",
        "%s",
    };
    lqa_test_cli_not_forged("lqa-build", cases, sizeof cases / sizeof *cases);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tokenizer_cli_is_deterministic),
        cmocka_unit_test(test_newline_in_argument_escaped),
        cmocka_unit_test(test_sft_round_trip),
        cmocka_unit_test(test_too_long_records_dropped_and_counted),
        cmocka_unit_test(test_sft_keeps_anchor_with_evidence),
        cmocka_unit_test(test_same_bytes_whatever_the_threads),
        cmocka_unit_test(test_lm_blocks),
        cmocka_unit_test(test_lm_pack_keeps_documents_whole),
        cmocka_unit_test(test_pack_keeps_records_apart),
        cmocka_unit_test(test_verify_inspect_stats_and_damage),
        cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
