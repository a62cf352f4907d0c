/* test_eval_cli.c: lqa-eval run end to end on a small random model and a store made by
 * lqa-ingest: results.json with every task and its settings, an adapter applied unmerged, and
 * the clear errors the issue asks for: a missing adapter file, an adapter made for another base
 * model, a context longer than the model supports, an empty split. `--device cuda --dtype fp32` on
 * the CPU emulator ($LQA_BUILD/cuda-emu/lqa-eval) gives the CPU's passkey answers and perplexities;
 * `--dtype bf16` (cuda's default) evaluates an adapter trained by the emulated `lqa-sft --dtype bf16`
 * within 1% of the CPU's fp32 perplexity, runs qa and passkey, and is refused on the CPU. */
#include "tests/testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/fileio.h"
#include "common/json.h"
#include "common/rng.h"
#include "dataset/build.h"
#include "dataset/shards.h"
#include "dataset/tokenizer.h"
#include "eval/tasks.h"
#include "store/store.h"
#include "model/adapter.h"
#include "model/hfdir.h"

static const char *g_dir;
static char *g_tok, *g_model, *g_model_other, *g_adapter, *g_adapter_other, *g_db, *g_empty_db;
static char *g_model16, *g_adapter16; /* the bf16 tests' (bf16_fixture) */

static void write_model(const char *dir, int dim, int max_pos, uint64_t seed, const char *adapter_dir) {
    lqa_err err;
    lqa_tokenizer *t = lqa_tok_load(g_tok, &err);
    assert_non_null(t);
    lqa_config c = {.vocab_size = lqa_tok_vocab_size(t), .dim = dim, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2,
                    .hidden_dim = 2 * dim, .max_pos = max_pos, .rope_theta = 10000, .rope_scale = 1, .rms_eps = 1e-5f,
                    .bos_id = 1, .eos_id = 2};
    lqa_tok_free(t);
    lqa_model m;
    lqa_model_alloc(&m, &c);
    lqa_model_init_random(&m, seed);
    lqa_hf_save_opts o = {.dtype = LQA_ST_F32, .tokenizer_path = g_tok};
    if (lqa_hf_save(dir, &m, &o, &err)) fail_msg("%s", err.msg);
    lqa_model_add_lora(&m, LQA_LORA_Q | LQA_LORA_V, 4, 8, seed + 1);
    for (size_t i = 0; i < m.n_lora; i++) m.lora[i] = 0.05f * (float)((i * 7919) % 13) - 0.3f;   /* B != 0 */
    if (lqa_adapter_save(adapter_dir, &m, LQA_TRAIN_LORA, dir, &err)) fail_msg("%s", err.msg);
    /* what lqa-sft train writes beside its adapter (the adapter load requires it) */
    char *rec = lqa_path_join(adapter_dir, "lqa_training.json"), text[128];
    snprintf(text, sizeof text, "{\"rope_scale\": 1, \"max_position_embeddings\": %d}", max_pos);
    if (lqa_write_file_atomic(rec, text, strlen(text), &err)) fail_msg("%s", err.msg);
    free(rec);
    lqa_model_free(&m);
}

static int setup(void **state) {
    g_dir = lqa_test_tmpdir();
    lqa_rng r;
    lqa_rng_seed(&r, lqa_test_seed());
    /* a markdown book whose numbers come from the seed; all of it in the test split */
    lqa_buf b = {0};
    lqa_buf_puts(&b, "# The Lighthouse Keeper\n\n");
    for (int s = 0; s < 5; s++) {
        lqa_buf_printf(&b, "## Chapter %d: Harbour %d\n\n", s + 1, s + 1);
        for (int p = 0; p < 3; p++) {
            for (int k = 0; k < 4; k++)
                lqa_buf_printf(&b, "The keeper of harbour %d counted %d ships in the fog while the bell rang %d times. ",
                               s + 1, 2 + (int)lqa_rng_below(&r, 90), 2 + (int)lqa_rng_below(&r, 8));
            lqa_buf_puts(&b, "\n\n");
        }
    }
    char *book = lqa_path_join(g_dir, "book.md"), *corpus = lqa_path_join(g_dir, "corpus.txt");
    lqa_test_write(book, b.data, b.len);
    lqa_test_write(corpus, b.data, b.len);
    g_tok = lqa_path_join(g_dir, "tok.model");
    lqa_err err;
    if (lqa_tok_train(corpus, g_tok, 400, 1, 1, &err)) fail_msg("%s", err.msg);
    g_model = lqa_path_join(g_dir, "model");
    g_model_other = lqa_path_join(g_dir, "model_other");
    g_adapter = lqa_path_join(g_dir, "run/final");
    g_adapter_other = lqa_path_join(g_dir, "run_other/final");
    write_model(g_model, 32, 512, lqa_rng_u64(&r), g_adapter);
    write_model(g_model_other, 48, 512, lqa_rng_u64(&r), g_adapter_other);
    g_db = lqa_path_join(g_dir, "lqa.db");
    g_empty_db = lqa_path_join(g_dir, "empty.db");
    lqa_buf out = {0};
    if (lqa_test_run(&out, "%s add --db %s --split 0,0,1 %s", lqa_test_tool("lqa-ingest"), g_db, book))
        fail_msg("lqa-ingest: %s", out.data);
    lqa_buf_clear(&out);
    /* a store whose documents are all in train: its test split is empty */
    if (lqa_test_run(&out, "%s add --db %s --split 1,0,0 %s", lqa_test_tool("lqa-ingest"), g_empty_db, book))
        fail_msg("lqa-ingest: %s", out.data);
    lqa_buf_free(&out);
    lqa_buf_free(&b);
    free(book);
    free(corpus);
    return 0;
}

static int teardown(void **state) {
    char *all[] = {g_tok, g_model, g_model_other, g_adapter, g_adapter_other, g_db, g_empty_db, g_model16, g_adapter16};
    for (int i = 0; i < 9; i++) free(all[i]);
    return 0;
}

/* Runs lqa-eval with args; returns the exit status, output in *log. */
static int eval(lqa_buf *log, const char *args) {
    lqa_buf_clear(log);
    return lqa_test_run(log, "%s run --threads 1 %s", lqa_test_tool("lqa-eval"), args);
}

/* ppl's text, capped: --ppl-tokens N scores at most each document's first N tokens. */
static long ppl_document_tokens(const char *extra, long *docs, long *scored) {
    char *out = lqa_path_join(g_dir, "ppl.json");
    lqa_buf log = {0}, args = {0};
    lqa_buf_printf(&args, "--model %s --db %s --tasks ppl --lengths 128 --stride 64 --limit 2 %s -o %s", g_model, g_db,
                   extra, out);
    if (eval(&log, args.data)) fail_msg("lqa-eval run failed: %s", log.data);
    lqa_err err;
    json_t *j = lqa_json_load_file(out, &err);
    assert_non_null(j);
    json_t *ppl = json_object_get(json_object_get(j, "tasks"), "ppl");
    long n = (long)lqa_json_int(ppl, "document_tokens", -1);
    *docs = (long)lqa_json_int(ppl, "documents", -1);
    *scored = (long)lqa_json_int(json_array_get(json_object_get(ppl, "points"), 0), "tokens", -1);
    json_decref(j);
    free(out);
    lqa_buf_free(&log);
    lqa_buf_free(&args);
    return n;
}

static void test_ppl_tokens_caps_each_document(void **state) {
    long docs_all, docs_cap, scored_all, scored_cap;
    long all = ppl_document_tokens("", &docs_all, &scored_all);
    long cap = ppl_document_tokens("--ppl-tokens 200", &docs_cap, &scored_cap);
    assert_int_equal(docs_all, docs_cap);
    if (all <= 200 * docs_all) skip(); /* the fixture's documents would all fit: nothing to cap */
    assert_true(cap <= 200 * docs_cap && cap < all);
    /* every kept token but each document's first (BOS) is scored once */
    assert_int_equal(scored_cap, cap - docs_cap);
    assert_int_equal(scored_all, all - docs_all);
}

static void test_run_all_tasks_writes_results(void **state) {
    char *out = lqa_path_join(g_dir, "r.json");
    lqa_buf log = {0}, args = {0};
    lqa_buf_printf(&args, "--model %s --adapter %s --db %s --lengths 256,512 --depths 0,1 --trials 1 --max-new-tokens 4 "
                          "--stride 256 --limit 3 -o %s", g_model, g_adapter, g_db, out);
    if (eval(&log, args.data)) fail_msg("lqa-eval run failed: %s", log.data);
    lqa_err err;
    json_t *j = lqa_json_load_file(out, &err);
    assert_non_null(j);
    assert_string_equal(lqa_json_str(j, "schema", ""), "lqa-eval-results/1");
    json_t *model = json_object_get(j, "model"), *tasks = json_object_get(j, "tasks");
    assert_string_equal(lqa_json_str(model, "name", ""), "run");   /* RUN/final is named after RUN */
    assert_true(lqa_json_int(model, "lora_params", 0) > 0);
    assert_int_equal(lqa_json_int(json_object_get(j, "settings"), "ctx", 0), 512);   /* from config.json */
    json_t *qa = json_object_get(tasks, "qa"), *pk = json_object_get(tasks, "passkey"), *ppl = json_object_get(tasks, "ppl");
    assert_non_null(qa);
    assert_null(json_object_get(qa, "error"));
    long n_qa = (long)lqa_json_int(qa, "n", 0);
    assert_true(n_qa >= 1 && n_qa <= 3);
    assert_int_equal(json_array_size(json_object_get(qa, "items")), (size_t)n_qa);
    assert_int_equal(json_array_size(json_object_get(pk, "cells")), 4);
    json_t *points = json_object_get(ppl, "points");
    assert_int_equal(json_array_size(points), 2);
    for (size_t i = 0; i < 2; i++) {
        double p = lqa_json_num(json_array_get(points, i), "ppl", 0);
        assert_true(p > 1 && p < 10 * 400);   /* a random model is near uniform over 400 pieces */
    }
    json_decref(j);
    /* and the report of it */
    char *rep = lqa_path_join(g_dir, "rep");
    lqa_buf_clear(&log);
    assert_int_equal(lqa_test_run(&log, "%s report %s -o %s", lqa_test_tool("lqa-eval"), out, rep), 0);
    char *html = lqa_path_join(rep, "report.html");
    assert_true(lqa_path_exists(html));
    free(html);
    free(rep);
    free(out);
    lqa_buf_free(&log);
    lqa_buf_free(&args);
}

static void test_missing_adapter_file(void **state) {
    char *broken = lqa_path_join(g_dir, "broken_adapter");
    lqa_buf log = {0}, args = {0};
    assert_int_equal(lqa_test_run(&log, "cp -r %s %s && rm %s/adapter_model.safetensors", g_adapter, broken, broken), 0);
    char *out = lqa_path_join(g_dir, "never.json");
    lqa_buf_printf(&args, "--model %s --adapter %s --tasks passkey --lengths 128 --trials 1 -o %s", g_model, broken, out);
    assert_int_not_equal(eval(&log, args.data), 0);
    assert_non_null(strstr(log.data, "adapter_model.safetensors"));
    assert_non_null(strstr(log.data, "missing"));
    assert_false(lqa_path_exists(out));
    lqa_buf_clear(&args);
    lqa_buf_printf(&args, "--model %s --adapter %s/nowhere --tasks passkey -o %s", g_model, g_dir, out);
    assert_int_not_equal(eval(&log, args.data), 0);
    assert_non_null(strstr(log.data, "adapter_config.json"));
    free(out);
    free(broken);
    lqa_buf_free(&log);
    lqa_buf_free(&args);
}

static void test_adapter_for_another_base_model(void **state) {
    lqa_buf log = {0}, args = {0};
    char *out = lqa_path_join(g_dir, "never.json");
    lqa_buf_printf(&args, "--model %s --adapter %s --tasks passkey --lengths 128 --trials 1 -o %s", g_model,
                   g_adapter_other, out);
    assert_int_not_equal(eval(&log, args.data), 0);
    assert_non_null(strstr(log.data, "shape"));
    assert_non_null(strstr(log.data, "lora_A"));
    assert_false(lqa_path_exists(out));
    free(out);
    lqa_buf_free(&log);
    lqa_buf_free(&args);
}

/* A model whose max_position_embeddings asks for a key/value cache past the machine (or past
 * size_t) is refused before anything is allocated for it, naming the context; so is --ctx with
 * --extrapolate. */
static void test_huge_context_refused_before_allocation(void **state) {
    char *dir = lqa_path_join(g_dir, "hugectx");
    lqa_err err;
    assert_int_equal(lqa_mkdir_p(dir, &err), 0);
    static const char *const files[] = {"model.safetensors", "tokenizer.model"};
    for (int i = 0; i < 2; i++) {
        char *src = lqa_path_join(g_model, files[i]), *dst = lqa_path_join(dir, files[i]);
        char *abs = realpath(src, NULL);
        assert_non_null(abs);
        unlink(dst);
        assert_int_equal(symlink(abs, dst), 0);
        free(abs), free(src), free(dst);
    }
    char *cp = lqa_path_join(g_model, "config.json"), *cp2 = lqa_path_join(dir, "config.json");
    json_t *c = lqa_json_load_file(cp, &err);
    json_object_set_new(c, "max_position_embeddings", json_integer(1 << 30));
    assert_int_equal(lqa_json_write_file(cp2, c, &err), 0);
    json_decref(c);
    lqa_buf log = {0}, args = {0};
    char *out = lqa_path_join(g_dir, "never-huge.json");
    lqa_buf_printf(&args, "--model %s --tasks passkey --lengths 128 --trials 1 -o %s", dir, out);
    assert_int_not_equal(eval(&log, args.data), 0);
    if (!strstr(log.data, "1073741824 tokens") || !strstr(log.data, "key/value cache")) fail_msg("%s", log.data);
    assert_false(lqa_path_exists(out));
    free(cp), free(cp2), free(out), free(dir);
    lqa_buf_free(&log), lqa_buf_free(&args);
}

static void test_context_longer_than_model(void **state) {
    lqa_buf log = {0}, args = {0};
    char *out = lqa_path_join(g_dir, "never.json");
    lqa_buf_printf(&args, "--model %s --ctx 4096 --tasks passkey -o %s", g_model, out);
    assert_int_not_equal(eval(&log, args.data), 0);
    assert_non_null(strstr(log.data, "--ctx 4096 is longer than the model supports"));
    assert_non_null(strstr(log.data, "max_position_embeddings 512"));
    lqa_buf_clear(&args);
    lqa_buf_printf(&args, "--model %s --tasks passkey --lengths 128,1024 -o %s", g_model, out);
    assert_int_not_equal(eval(&log, args.data), 0);
    assert_non_null(strstr(log.data, "1024 is longer than the evaluation context of 512"));
    /* --extrapolate runs past the window and records both the window and the choice */
    lqa_buf_clear(&args);
    lqa_buf_printf(&args, "--model %s --ctx 640 --extrapolate --tasks passkey --lengths 640 --trials 1 -o %s",
                   g_model, out);
    assert_int_equal(eval(&log, args.data), 0);
    assert_non_null(strstr(log.data, "past"));
    lqa_err err;
    json_t *j = lqa_json_load_file(out, &err);
    assert_non_null(j);
    json_t *set = json_object_get(j, "settings"), *cfg = json_object_get(json_object_get(j, "model"), "config");
    assert_true(json_is_true(json_object_get(set, "extrapolate")));
    assert_int_equal(lqa_json_int(set, "ctx", 0), 640);
    assert_int_equal(lqa_json_int(cfg, "max_position_embeddings", 0), 512);
    json_decref(j);
    unlink(out);
    free(out);
    lqa_buf_free(&log);
    lqa_buf_free(&args);
}

static void test_empty_split(void **state) {
    lqa_buf log = {0}, args = {0};
    char *out = lqa_path_join(g_dir, "empty.json");
    lqa_buf_printf(&args, "--model %s --db %s --split test --tasks qa,ppl -o %s", g_model, g_empty_db, out);
    assert_int_not_equal(eval(&log, args.data), 0);
    assert_non_null(strstr(log.data, "qa: split \"test\" has no QA pairs"));
    assert_non_null(strstr(log.data, "ppl: split \"test\" has no documents"));
    /* the results file records the failures rather than silently omitting the tasks */
    lqa_err err;
    json_t *j = lqa_json_load_file(out, &err);
    assert_non_null(j);
    assert_non_null(json_object_get(json_object_get(json_object_get(j, "tasks"), "qa"), "error"));
    json_decref(j);
    lqa_buf_clear(&args);
    lqa_buf_printf(&args, "--model %s --tasks qa,bogus -o %s", g_model, out);
    assert_int_not_equal(eval(&log, args.data), 0);
    assert_non_null(strstr(log.data, "unknown task \"bogus\""));
    free(out);
    lqa_buf_free(&log);
    lqa_buf_free(&args);
}

static void test_store_filler(void **state) {
    lqa_buf log = {0}, args = {0};
    char *out = lqa_path_join(g_dir, "store_filler.json");
    lqa_buf_printf(&args, "--model %s --db %s --tasks passkey --filler store --lengths 300 --depths 0.5 --trials 2 -o %s",
                   g_model, g_db, out);
    if (eval(&log, args.data)) fail_msg("lqa-eval run failed: %s", log.data);
    lqa_err err;
    json_t *j = lqa_json_load_file(out, &err);
    assert_non_null(j);
    json_t *pk = json_object_get(json_object_get(j, "tasks"), "passkey");
    assert_string_equal(lqa_json_str(json_object_get(pk, "settings"), "filler", ""), "store");
    assert_int_equal(lqa_json_int(pk, "prompts", 0), 2);
    json_decref(j);
    lqa_buf_clear(&args);
    lqa_buf_printf(&args, "--model %s --tasks passkey --filler store --lengths 300 -o %s", g_model, out);
    assert_int_not_equal(eval(&log, args.data), 0);
    assert_non_null(strstr(log.data, "--filler store: expected --db DB"));
    free(out);
    lqa_buf_free(&log);
    lqa_buf_free(&args);
}

/* eval's QA prompt is token for token the prompt of the SFT record lqa-build makes for the same
 * pair with the same budget (the answer and EOS that follow it in training excluded). */
typedef struct qa_by_id {
    int64_t id;
    lqa_store_qa qa;
    int found;
} qa_by_id;

static int find_qa(const lqa_store_qa *qa, void *ctx) {
    qa_by_id *f = ctx;
    if (qa->id != f->id) return 0;
    f->qa = *qa;
    f->qa.question = lqa_strdup(qa->question);
    f->qa.answer = lqa_strdup(qa->answer);
    f->found = 1;
    return 1;
}

static void test_qa_prompt_matches_lqa_build(void **state) {
    char *shards = lqa_path_join(g_dir, "shards");
    lqa_buf log = {0};
    int max_len = 400;
    if (lqa_test_run(&log, "%s shards --db %s --tokenizer %s --kind sft --max-len %d --split test -o %s",
                     lqa_test_tool("lqa-build"), g_db, g_tok, max_len, shards))
        fail_msg("lqa-build: %s", log.data);
    lqa_err err;
    lqa_shards *d = lqa_shards_open(shards, NULL, &err);
    assert_non_null(d);
    lqa_store *st = lqa_store_open(g_db, 0, &err);
    assert_non_null(st);
    lqa_tokenizer *tok = lqa_tok_load(g_tok, &err);
    lqa_eval_ctx e = {.tok = tok, .bos_id = lqa_tok_bos_id(tok), .eos_id = lqa_tok_eos_id(tok)};
    lqa_record rec = {0};
    uint64_t n = lqa_shards_count(d), compared = 0, truncated = 0;
    for (uint64_t i = 0; i < n; i++) {
        assert_int_equal(lqa_shards_read(d, i, &rec, &err), 0);
        qa_by_id f = {.id = rec.segments[0].qa_id};
        assert_int_equal(lqa_store_each_qa(st, "test", NULL, find_qa, &f, &err), 0);
        assert_true(f.found);
        lqa_store_doc doc;
        assert_int_equal(lqa_store_get_doc(st, f.qa.doc_id, &doc, &err), 0);
        int32_t *ans;
        size_t n_ans;
        assert_int_equal(lqa_tok_encode(tok, f.qa.answer, strlen(f.qa.answer), &ans, &n_ans, &err), 0);
        uint32_t prompt_len = 0;
        while (prompt_len < rec.n_tokens && !rec.loss_mask[prompt_len]) prompt_len++;
        int32_t *ids;
        int n_ids, doc_tokens, full, trunc;
        size_t ks = 0, ke = 0; /* the evidence with the anchor, as lqa-build keeps them */
        lqa_build_kept_span(f.qa.ev_start, f.qa.ev_end, f.qa.anchor_start, f.qa.anchor_end, doc.text_len, &ks, &ke);
        assert_int_equal(lqa_qa_prompt(&e, doc.text, doc.text_len, ks, ke, f.qa.question,
                                       max_len - (int)n_ans - 1, &ids, &n_ids, &doc_tokens, &full, &trunc, &err), 0);
        assert_int_equal(n_ids, (int)prompt_len);
        assert_memory_equal(ids, rec.tokens, sizeof(int32_t) * prompt_len);
        compared++;
        truncated += trunc;
        free(ids);
        free(ans);
        free(f.qa.question);
        free(f.qa.answer);
        lqa_store_doc_free(&doc);
    }
    print_message("# %llu prompts equal lqa-build's (%llu cut around the evidence)\n", (unsigned long long)compared,
                  (unsigned long long)truncated);
    assert_true(compared > 0);
    assert_true(truncated > 0);   /* the document (thousands of tokens) never fits 400 */
    lqa_record_free(&rec);
    lqa_shards_close(d);
    lqa_store_close(st);
    lqa_tok_free(tok);
    lqa_buf_free(&log);
    free(shards);
}

/* passkey (answers, cell by cell) and ppl (within 1e-5 relative) of the emulated device equal the
 * CPU's, with an unmerged adapter. */
static void test_cuda_device_matches_cpu(void **state) {
    const char *b = getenv("LQA_BUILD"), *gpu_tool = getenv("LQA_CUDA_EVAL"); /* a GPU build's (gpu_check.sh) */
    char emu[4096];
    if (gpu_tool && *gpu_tool) snprintf(emu, sizeof emu, "%s", gpu_tool);
    else snprintf(emu, sizeof emu, "%s/cuda-emu/lqa-eval", b && *b ? b : "build");
    if (!lqa_path_exists(emu)) fail_msg("%s is missing: `make cuda-emu` builds it (make test does)", emu);
    char *out[2] = {lqa_path_join(g_dir, "dev-cpu.json"), lqa_path_join(g_dir, "dev-cuda.json")};
    const char *tool[2] = {lqa_test_tool("lqa-eval"), emu}, *device[2] = {"cpu", "cuda"};
    json_t *res[2];
    for (int i = 0; i < 2; i++) {
        lqa_buf log = {0};
        if (lqa_test_run(&log, "%s run --threads 1 --device %s --dtype fp32 --model %s --adapter %s --db %s --tasks passkey,ppl "
                               "--lengths 192,256 --depths 0,1 --trials 1 --stride 128 --limit 1 -o %s",
                         tool[i], device[i], g_model, g_adapter, g_db, out[i]))
            fail_msg("lqa-eval --device %s failed: %s", device[i], log.data);
        lqa_buf_free(&log);
        lqa_err err;
        res[i] = lqa_json_load_file(out[i], &err);
        assert_non_null(res[i]);
    }
    json_t *ta = json_object_get(res[0], "tasks"), *tb = json_object_get(res[1], "tasks");
    json_t *ca = json_object_get(json_object_get(ta, "passkey"), "cells"),
           *cb = json_object_get(json_object_get(tb, "passkey"), "cells");
    assert_int_equal(json_array_size(ca), 4);
    assert_true(json_equal(ca, cb));
    json_t *pa = json_object_get(json_object_get(ta, "ppl"), "points"),
           *pb = json_object_get(json_object_get(tb, "ppl"), "points");
    assert_int_equal(json_array_size(pa), 2);
    assert_int_equal(json_array_size(pb), 2);
    for (size_t i = 0; i < 2; i++) {
        double a = lqa_json_num(json_array_get(pa, i), "ppl", -1), c = lqa_json_num(json_array_get(pb, i), "ppl", -2);
        assert_true(a > 1);
        if (fabs(a - c) > 1e-5 * a) fail_msg("ppl at length %zu: cpu %.9g, cuda %.9g", i, a, c);
        assert_int_equal(lqa_json_int(json_array_get(pa, i), "tokens", -1),
                         lqa_json_int(json_array_get(pb, i), "tokens", -2));
    }
    assert_string_equal(lqa_json_str(json_object_get(res[1], "settings"), "device", ""), "cuda");
    json_decref(res[0]);
    json_decref(res[1]);
    free(out[0]);
    free(out[1]);
    /* --dtype bf16 (the bf16 layout, frozen weights bf16 on the device; head dim 16 as the bf16
     * attention needs): the adapter's perplexity within the 1% of the CPU's fp32 one */
    char *model = lqa_path_join(g_dir, "bf16-model"), *adapter = lqa_path_join(g_dir, "bf16-adapter");
    write_model(model, 64, 512, lqa_test_seed() + 5, adapter);
    const char *dtype[2] = {"fp32", "bf16"};
    double ppl[2][2];
    for (int i = 0; i < 2; i++) {
        char *o = lqa_path_join(g_dir, i ? "bf16-cuda.json" : "bf16-cpu.json");
        lqa_buf log = {0};
        if (lqa_test_run(&log, "%s run --threads 1 --device %s --dtype %s --model %s --adapter %s --db %s --tasks ppl "
                               "--lengths 192,256 --stride 128 --limit 1 -o %s",
                         tool[i], device[i], dtype[i], model, adapter, g_db, o))
            fail_msg("lqa-eval --dtype %s failed: %s", dtype[i], log.data);
        lqa_buf_free(&log);
        lqa_err err;
        json_t *r = lqa_json_load_file(o, &err);
        assert_non_null(r);
        json_t *pts = json_object_get(json_object_get(json_object_get(r, "tasks"), "ppl"), "points");
        assert_int_equal(json_array_size(pts), 2);
        for (int k = 0; k < 2; k++) ppl[i][k] = lqa_json_num(json_array_get(pts, (size_t)k), "ppl", -1);
        assert_string_equal(lqa_json_str(json_object_get(r, "settings"), "dtype", ""), dtype[i]);
        json_decref(r);
        free(o);
    }
    for (int k = 0; k < 2; k++) {
        print_message("# ppl at length %d: cpu fp32 %.6f, cuda bf16 %.6f\n", k ? 256 : 192, ppl[0][k], ppl[1][k]);
        assert_true(ppl[0][k] > 1);
        if (fabs(ppl[0][k] - ppl[1][k]) > 0.01 * ppl[0][k]) fail_msg("bf16 ppl %.6f, fp32 %.6f", ppl[1][k], ppl[0][k]);
        assert_true(ppl[0][k] != ppl[1][k]); /* it did run in bf16 */
    }
    free(model);
    free(adapter);
}

/* A value holding a newline cannot forge an "error:" line: bad option values, getopt's
 * refusals, unknown tasks and commands print what the user gave escaped. */
static void test_newline_in_argument_escaped(void **state) {
    static const char *const cases[] = {
        "run --model m -o r.json --filler %s",
        "run --model m -o r.json --tasks %s",
        "run --model m -o r.json --lengths %s",
        "run --model m -o r.json --depths %s",
        "run --model m -o r.json --trials %s",
        "run --model m -o r.json --%s",
        "run --model m -o r.json extra%s",
        "report r.json -%s",
        "%s",
    };
    lqa_test_cli_not_forged("lqa-eval", cases, sizeof cases / sizeof *cases);
}

/* ---- --dtype bf16 on the emulated device -------------------------------------------------------- */

/* The emulated tool `name` (LQA_CUDA_EVAL / LQA_CUDA_SFT: a GPU build's instead) into path; 0 with
 * the reason printed when it is not built (a build without nvcc has no emulated tools). */
static int emu_tool(const char *name, const char *env, char *path, size_t n) {
    const char *b = getenv("LQA_BUILD"), *tool = getenv(env);
    if (tool && *tool) snprintf(path, n, "%s", tool);
    else snprintf(path, n, "%s/cuda-emu/%s", b && *b ? b : "build", name);
    if (lqa_path_exists(path)) return 1;
    print_message("# skip: %s is not built (`make cuda-emu` builds it; a build without nvcc has none)\n", path);
    return 0;
}

/* The bf16 fixture, made once: the tiny preset (head dim 16, which the bf16 attention takes; the
 * other tests' models have 8) with max_position_embeddings 1024, first trained in full on the CPU
 * on lm shards of the store's book until it predicts the book well (loss about 0.3: a random
 * model predicts nearly uniformly, and its perplexity hardly moves whatever the rounding), then a
 * lora+ adapter trained 20 steps on it by the emulated `lqa-sft train --device cuda --dtype bf16`:
 * the bf16 adapter. */
static char g_emu_eval[4096];

static int bf16_fixture(void) {
    char emu_sft[4096];
    if (!emu_tool("lqa-eval", "LQA_CUDA_EVAL", g_emu_eval, sizeof g_emu_eval) ||
        !emu_tool("lqa-sft", "LQA_CUDA_SFT", emu_sft, sizeof emu_sft))
        return 0;
    if (g_adapter16) return 1;
    char *init = lqa_path_join(g_dir, "init16"), *shards = lqa_path_join(g_dir, "shards16"),
         *base = lqa_path_join(g_dir, "base16"), *run = lqa_path_join(g_dir, "run16");
    unsigned long long seed = (unsigned long long)lqa_test_seed();
    lqa_buf log = {0};
    if (lqa_test_run(&log, "%s init --preset tiny --tokenizer %s --ctx 1024 --seed %llu -o %s", lqa_test_tool("lqa-sft"),
                     g_tok, seed, init))
        fail_msg("lqa-sft init: %s", log.data);
    if (lqa_test_run(&log, "%s shards --db %s --tokenizer %s --kind lm --max-len 128 --split test -o %s",
                     lqa_test_tool("lqa-build"), g_db, g_tok, shards))
        fail_msg("lqa-build: %s", log.data);
    if (lqa_test_run(&log, "%s train --device cpu --train full --model %s --data %s --out %s --ctx 128 --steps 150 "
                           "--grad-accum 1 --warmup 5 --lr 3e-3 --threads 1 --save-every 150 --seed %llu",
                     lqa_test_tool("lqa-sft"), init, shards, base, seed))
        fail_msg("lqa-sft train --train full: %s", log.data);
    g_model16 = lqa_path_join(base, "final");
    if (lqa_test_run(&log, "%s train --device cuda --dtype bf16 --model %s --data %s --out %s --ctx 128 --steps 20 "
                           "--grad-accum 1 --warmup 2 --lr 1e-2 --threads 1 --save-every 20 --seed %llu",
                     emu_sft, g_model16, shards, run, seed + 1))
        fail_msg("emulated lqa-sft train --dtype bf16: %s", log.data);
    g_adapter16 = lqa_path_join(run, "final");
    lqa_buf_free(&log);
    free(init);
    free(shards);
    free(base);
    free(run);
    return 1;
}

/* lqa-eval run (tool, device flags) on the bf16 fixture into g_dir/name; the results. */
static json_t *eval16(const char *tool, const char *flags, const char *tasks, const char *name) {
    char *out = lqa_path_join(g_dir, name);
    lqa_buf log = {0};
    if (lqa_test_run(&log, "%s run --threads 1 %s --model %s --adapter %s --db %s %s -o %s", tool, flags, g_model16,
                     g_adapter16, g_db, tasks, out))
        fail_msg("lqa-eval %s %s: %s", flags, tasks, log.data);
    lqa_err err;
    json_t *j = lqa_json_load_file(out, &err);
    if (!j) fail_msg("%s", err.msg);
    lqa_buf_free(&log);
    free(out);
    return j;
}

/* The bf16 adapter's perplexity from `--device cuda --dtype bf16` (prefill and KV-cache decode
 * with bf16 frozen linears and attention) within 1% of the CPU's fp32 run's (the bound),
 * and within 2e-3: bf16 rounds weights and attention inputs to nearest with a relative error of at
 * most u = 2^-8 (unbiased), which moved this fixture's perplexity by 1.5e-4 to 5.0e-4 over the
 * seeds measured. Checked by hand, on one fixture: rounding toward zero instead (biased) moved it
 * by 1.3e-3 to 2.0e-3 (not reliably caught); rounding to 4 mantissa bits instead of 7 by 5.0e-3
 * (fails the 2e-3 bound, not the 1% one); the bf16 attention reading the keys from the chunk's
 * position instead of the cache's start fails the test. The 600-token window is fed in chunks of
 * 256, so its last chunk's attention reads 599 cached keys (Tq < Tk, past two chunks). */
static void test_bf16_ppl_within_1pct_of_cpu(void **state) {
    if (!bf16_fixture()) skip();
    const char *tasks = "--tasks ppl --lengths 128,600 --stride 64 --limit 1 --ppl-tokens 700";
    json_t *cpu = eval16(lqa_test_tool("lqa-eval"), "--device cpu", tasks, "ppl16-cpu.json");
    json_t *bf = eval16(g_emu_eval, "--device cuda", tasks, "ppl16-bf16.json"); /* bf16: cuda's default */
    assert_string_equal(lqa_json_str(json_object_get(cpu, "settings"), "dtype", ""), "fp32");
    assert_string_equal(lqa_json_str(json_object_get(bf, "settings"), "dtype", ""), "bf16");
    json_t *pa = json_object_get(json_object_get(json_object_get(cpu, "tasks"), "ppl"), "points"),
           *pb = json_object_get(json_object_get(json_object_get(bf, "tasks"), "ppl"), "points");
    assert_int_equal(json_array_size(pa), 2);
    assert_int_equal(json_array_size(pb), 2);
    double worst = 0, any = 0;
    for (size_t i = 0; i < 2; i++) {
        double a = lqa_json_num(json_array_get(pa, i), "ppl", -1), b = lqa_json_num(json_array_get(pb, i), "ppl", -2);
        assert_int_equal(lqa_json_int(json_array_get(pa, i), "tokens", -1), lqa_json_int(json_array_get(pb, i), "tokens", -2));
        print_message("# ppl at length %s: cpu fp32 %.6f, cuda bf16 %.6f (relative %.2e)\n", i ? "600" : "128", a, b,
                      fabs(a - b) / a);
        assert_true(a > 1 && b > 1);
        worst = fmax(worst, fabs(a - b) / a);
        any = fmax(any, fabs(a - b));
    }
    assert_true(worst <= 0.01);
    assert_true(worst <= 2e-3);
    assert_true(any > 0); /* it ran in bf16: not the fp32 run's perplexity */
    json_decref(cpu);
    json_decref(bf);
}

/* lqa-eval on the device checks its KV cache against the device's free memory, at 2 B per value
 * in bf16: with 512 MiB of emulated device memory (537 MB), a 1.2M-position cache of the bf16
 * fixture (tiny: 2 layers x 32 key/value dims, so 307 MB in bf16 beside about 100 MB of weights
 * and workspace, 614 MB in fp32) is made in bf16 and passkey runs, while fp32 is refused before
 * allocating it, naming the device. */
static void test_kv_cache_in_device_memory(void **state) {
    if (!bf16_fixture()) skip();
    lqa_buf log = {0};
    char *out = lqa_path_join(g_dir, "kv-device.json");
    const char *run = "LQA_EMU_DEVICE_MIB=512 %s run --threads 1 --device cuda --dtype %s --model %s --extrapolate "
                      "--ctx 1200000 --tasks passkey --lengths 256 --depths 0.5 --trials 1 -o %s";
    if (lqa_test_run(&log, run, g_emu_eval, "bf16", g_model16, out)) fail_msg("bf16 KV cache: %s", log.data);
    assert_true(lqa_path_exists(out));
    unlink(out);
    assert_int_not_equal(lqa_test_run(&log, run, g_emu_eval, "fp32", g_model16, out), 0);
    if (!strstr(log.data, "key/value cache") || !strstr(log.data, "4 B each") || !strstr(log.data, "on the device"))
        fail_msg("%s", log.data);
    assert_false(lqa_path_exists(out));
    lqa_buf_free(&log);
    free(out);
}

/* qa (prefill and greedy decoding) and passkey run in bf16 on the device without error, and
 * lqa-eval bench records its dtype. */
static void test_bf16_qa_passkey_and_bench(void **state) {
    if (!bf16_fixture()) skip();
    json_t *j = eval16(g_emu_eval, "--device cuda --dtype bf16 --ctx 640",
                       "--tasks qa,passkey --lengths 300,640 --depths 0,1 --trials 1 --max-new-tokens 4 --limit 2",
                       "qa16-bf16.json");
    json_t *tasks = json_object_get(j, "tasks");
    assert_null(json_object_get(json_object_get(tasks, "qa"), "error"));
    assert_null(json_object_get(json_object_get(tasks, "passkey"), "error"));
    assert_int_equal(json_array_size(json_object_get(json_object_get(tasks, "passkey"), "cells")), 4);
    assert_true(lqa_json_int(json_object_get(tasks, "qa"), "n", 0) > 0);
    assert_string_equal(lqa_json_str(json_object_get(j, "settings"), "dtype", ""), "bf16");
    json_decref(j);
    lqa_buf log = {0};
    if (lqa_test_run(&log, "%s bench --model %s --lengths 300 --decode 4 --threads 1 --device cuda 2>/dev/null",
                     g_emu_eval, g_model16))
        fail_msg("lqa-eval bench --device cuda: %s", log.data);
    assert_non_null(strstr(log.data, "\"dtype\": \"bf16\""));
    lqa_buf_free(&log);
}

/* bf16 is refused on the CPU (run and bench), and on the device for a head dim the bf16 attention
 * does not take, each with what to use instead. */
static void test_bf16_refusals(void **state) {
    lqa_buf log = {0};
    char *out = lqa_path_join(g_dir, "refused.json");
    assert_int_equal(lqa_test_run(&log, "%s run --device cpu --dtype bf16 --model %s -o %s", lqa_test_tool("lqa-eval"),
                                  g_model, out), 2);
    assert_non_null(strstr(log.data, "--dtype bf16 needs --device cuda"));
    assert_non_null(strstr(log.data, "--dtype fp32"));
    assert_int_equal(lqa_test_run(&log, "%s bench --dtype bf16 --model %s", lqa_test_tool("lqa-eval"), g_model), 2);
    assert_non_null(strstr(log.data, "--dtype bf16 needs --device cuda"));
    assert_int_equal(lqa_test_run(&log, "%s run --device cuda --dtype fp16 --model %s -o %s", lqa_test_tool("lqa-eval"),
                                  g_model, out), 2);
    assert_non_null(strstr(log.data, "expected fp32 or bf16"));
    assert_false(lqa_path_exists(out));
    if (emu_tool("lqa-eval", "LQA_CUDA_EVAL", g_emu_eval, sizeof g_emu_eval)) { /* g_model: head dim 8 */
        assert_int_equal(lqa_test_run(&log, "%s run --device cuda --model %s --tasks passkey -o %s", g_emu_eval, g_model,
                                      out), 1);
        assert_non_null(strstr(log.data, "head dim 8"));
        assert_non_null(strstr(log.data, "--dtype fp32"));
        assert_false(lqa_path_exists(out));
    }
    lqa_buf_free(&log);
    free(out);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_run_all_tasks_writes_results),
        cmocka_unit_test(test_newline_in_argument_escaped),
        cmocka_unit_test(test_ppl_tokens_caps_each_document),
        cmocka_unit_test(test_missing_adapter_file),
        cmocka_unit_test(test_adapter_for_another_base_model),
        cmocka_unit_test(test_context_longer_than_model),
        cmocka_unit_test(test_huge_context_refused_before_allocation),
        cmocka_unit_test(test_empty_split),
        cmocka_unit_test(test_store_filler),
        cmocka_unit_test(test_qa_prompt_matches_lqa_build),
        cmocka_unit_test(test_cuda_device_matches_cpu),
        cmocka_unit_test(test_bf16_refusals),
        cmocka_unit_test(test_bf16_ppl_within_1pct_of_cpu),
        cmocka_unit_test(test_bf16_qa_passkey_and_bench),
        cmocka_unit_test(test_kv_cache_in_device_memory),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
