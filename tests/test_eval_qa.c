/* test_eval_qa.c: QA prompts. A document longer than the context is cut to a window that keeps
 * the evidence span and the whole question, within the token budget; a document that fits is
 * kept whole; a question longer than the budget is refused. Random documents and spans from
 * lqa_test_seed(). */
#include "tests/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fileio.h"
#include "common/rng.h"
#include "eval/tasks.h"

static lqa_tokenizer *g_tok;
static const char *WORDS[] = {"harbour", "keeper", "ship", "fog", "bell", "light", "tower", "night", "wave", "stone",
                              "river", "bridge", "market", "village", "winter", "summer", "letter", "station"};

static void random_text(lqa_rng *r, lqa_buf *b, int words) {
    for (int i = 0; i < words; i++)
        lqa_buf_printf(b, "%s%s%s", i ? " " : "", WORDS[lqa_rng_below(r, 18)], lqa_rng_below(r, 9) ? "" : ".");
}

static int setup(void **state) {
    lqa_rng r;
    lqa_rng_seed(&r, 3);
    lqa_buf b = {0};
    for (int i = 0; i < 200; i++) {
        random_text(&r, &b, 30);
        lqa_buf_printf(&b, " %d\nBelow is a document. Memorize the document and answer my question after the document.\n"
                       "[INST] [/INST] The document begins. Now the document ends. What is it?\n", i);
    }
    char *txt = lqa_path_join(lqa_test_tmpdir(), "c.txt"), *model = lqa_path_join(lqa_test_tmpdir(), "t.model");
    lqa_test_write(txt, b.data, b.len);
    lqa_err err;
    if (lqa_tok_train(txt, model, 400, 1, 1, &err)) fail_msg("%s", err.msg);
    g_tok = lqa_tok_load(model, &err);
    assert_non_null(g_tok);
    free(txt);
    free(model);
    lqa_buf_free(&b);
    return 0;
}

static int teardown(void **state) {
    lqa_tok_free(g_tok);
    return 0;
}

static void test_cut_keeps_evidence_and_question(void **state) {
    lqa_rng r;
    lqa_rng_seed(&r, lqa_test_seed());
    lqa_eval_ctx e = {.tok = g_tok, .bos_id = lqa_tok_bos_id(g_tok), .eos_id = lqa_tok_eos_id(g_tok)};
    for (int trial = 0; trial < 40; trial++) {
        lqa_buf before = {0}, evidence = {0}, after = {0}, doc = {0};
        random_text(&r, &before, (int)lqa_rng_below(&r, 600));
        lqa_buf_printf(&evidence, " The answer is %llu at %s.", (unsigned long long)lqa_rng_below(&r, 1000000),
                       WORDS[lqa_rng_below(&r, 18)]);
        random_text(&r, &after, (int)lqa_rng_below(&r, 600));
        lqa_buf_printf(&doc, "%s%s %s", before.data ? before.data : "", evidence.data, after.data ? after.data : "");
        size_t ev_start = before.len, ev_end = before.len + evidence.len;
        const char *question = "Where is the answer and what is it?";
        int max_prompt = 130 + (int)lqa_rng_below(&r, 500);   /* intro, question and evidence fit in 130 */
        int32_t *ids;
        int n, doc_tokens, full, truncated;
        lqa_err err;
        assert_int_equal(lqa_qa_prompt(&e, doc.data, doc.len, ev_start, ev_end, question, max_prompt, &ids, &n,
                                       &doc_tokens, &full, &truncated, &err), 0);
        assert_true(n <= max_prompt);
        assert_int_equal(truncated, full > max_prompt);
        assert_int_equal(ids[0], e.bos_id);
        char *text;
        assert_int_equal(lqa_tok_decode(g_tok, ids, (size_t)n, &text, &err), 0);
        /* the evidence (without its leading space, which may be the cut point) and the question survive */
        if (!strstr(text, evidence.data + 1))
            fail_msg("evidence \"%s\" lost in a %d-token prompt (budget %d, full %d): %s", evidence.data, n, max_prompt, full, text);
        assert_non_null(strstr(text, question));
        assert_non_null(strstr(text, "[INST]"));
        assert_non_null(strstr(text, "[/INST]"));
        if (!truncated) assert_non_null(strstr(text, doc.data + 1));
        else assert_true(n > max_prompt - 24);   /* a cut fills the budget (up to the margin for re-tokenized edges) */
        free(text);
        free(ids);
        lqa_buf_free(&before);
        lqa_buf_free(&evidence);
        lqa_buf_free(&after);
        lqa_buf_free(&doc);
    }
}

static void test_question_too_long_is_refused(void **state) {
    lqa_eval_ctx e = {.tok = g_tok, .bos_id = 1, .eos_id = 2};
    int32_t *ids;
    int n, doc_tokens, full, truncated;
    lqa_err err;
    assert_int_equal(lqa_qa_prompt(&e, "short doc", 9, 0, 5, "a question of some length that does not fit", 10, &ids, &n,
                                   &doc_tokens, &full, &truncated, &err), -1);
    assert_non_null(strstr(err.msg, "expected a prompt within 10 tokens"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cut_keeps_evidence_and_question),
        cmocka_unit_test(test_question_too_long_is_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
