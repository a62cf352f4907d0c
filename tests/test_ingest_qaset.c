/* test_ingest_qaset.c: QA-set importers (ingest/qaset.c): the fixtures of each format, evidence
 * spans that hold their answers (SQuAD's code-point offsets over multi-byte text included),
 * unanswerable questions skipped and counted, a streamed Alpaca array whose memory stays bounded
 * by one element, and arrays / JSON lines cut in the middle (clear error with the line, complete
 * records kept). */
#include "tests/testutil.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/fileio.h"
#include "common/rng.h"
#include "ingest/docbuild.h"
#include "ingest/qaset.h"
#include "tests/test_ingest_util.h"

static char *fixture(const char *rel) { return lqa_path_join(lqa_test_fixtures(), rel); }
static char *tmp_path(const char *name) { return lqa_path_join(lqa_test_tmpdir(), name); }

static void parse_ok(const char *path, xt_docs *l) {
    lqa_err err;
    if (xt_parse_path(path, NULL, l, &err) != 0) fail_msg("%s: %s", path, err.msg);
}

/* Every pair with a span: the text there is the main answer, and contains every cleaned answer
 * that was located. Returns how many pairs had a span. */
static int check_evidence(const xt_docs *l) {
    int with_span = 0;
    lqa_buf clean = {0};
    for (int i = 0; i < l->n; i++) {
        const lqa_doc *d = &l->docs[i];
        for (int k = 0; k < d->n_qas; k++) {
            const lqa_qa_in *q = &d->qas[k];
            assert_true(q->n_answers >= 1);
            if (q->evidence.end == 0) continue;
            with_span++;
            char *at = xt_span_text(d, q->evidence);
            lqa_db_clean(q->answers[0], strlen(q->answers[0]), &clean);
            if (!strstr(at, clean.data)) fail_msg("doc %d qa %d: span '%s' lacks answer '%s'", i, k, at, clean.data);
            free(at);
        }
    }
    lqa_buf_free(&clean);
    return with_span;
}

static const lqa_qa_in *find_qa(const xt_docs *l, const char *question, const lqa_doc **doc) {
    for (int i = 0; i < l->n; i++)
        for (int k = 0; k < l->docs[i].n_qas; k++)
            if (!strcmp(l->docs[i].qas[k].question, question)) {
                if (doc) *doc = &l->docs[i];
                return &l->docs[i].qas[k];
            }
    fail_msg("no QA pair '%s'", question);
    return NULL;
}

/* ---- fixtures ------------------------------------------------------------------------------- */

static void test_alpaca_fixture(void **state) {
    char *path = fixture("qaset/alpaca.json");
    xt_docs l;
    parse_ok(path, &l);
    assert_int_equal(l.n, 3);
    const lqa_doc *d;
    const lqa_qa_in *q = find_qa(&l, "What was the largest tidal range measured?", &d);
    assert_string_equal(q->kind, "longalpaca");
    assert_string_equal(d->format, "alpaca");
    assert_string_equal(d->title, "Tidal Energy in Small Harbours");
    /* the document is the paper alone, without the prompt around it */
    assert_non_null(strstr(d->text.data, "6.8 metres at Port Isaac"));
    assert_null(strstr(d->text.data, "Now the paper ends"));
    assert_null(strstr(d->text.data, "Memorize"));
    q = find_qa(&l, "Summarise the text in one sentence.", &d);
    assert_string_equal(q->kind, "alpaca");
    assert_string_equal(d->text.data, "The ferry leaves at nine.\n\nIt returns at five, weather permitting.");
    assert_string_equal(q->answers[0], "A ferry runs from nine to five when the weather allows.");
    xt_docs_free(&l);
    free(path);
}

static void test_longbench_fixture(void **state) {
    char *path = fixture("qaset/longbench.jsonl");
    xt_docs l;
    parse_ok(path, &l);
    /* two records share one context: one document with both questions */
    assert_int_equal(l.n, 2);
    assert_int_equal(l.docs[0].n_qas, 2);
    assert_string_equal(l.docs[0].qas[0].kind, "longbench:hotpotqa");
    assert_int_equal(check_evidence(&l), 2);
    const lqa_qa_in *q = find_qa(&l, "How many rooms does the keeper's cottage have?", NULL);
    assert_string_equal(q->answers[0], "four rooms");
    q = find_qa(&l, "Write a one-page summary of the report.", NULL); /* empty input: the task's question */
    assert_string_equal(q->kind, "longbench:gov_report");
    assert_int_equal(q->evidence.end, 0);
    xt_docs_free(&l);
    free(path);
}

static void test_squad_fixture(void **state) {
    char *path = fixture("qaset/squad.json");
    xt_docs l;
    parse_ok(path, &l);
    assert_int_equal(l.n, 1);
    const lqa_doc *d = &l.docs[0];
    assert_string_equal(d->title, "Río Tinto (river)");
    assert_int_equal(d->n_qas, 3);
    assert_int_equal(check_evidence(&l), 3);
    assert_non_null(strstr(l.warnings.data, "skipped 1 unanswerable"));
    const lqa_qa_in *q = find_qa(&l, "What makes the water red?", NULL);
    char *at = xt_span_text(d, q->evidence);
    assert_string_equal(at, "iron");
    free(at);
    xt_docs_free(&l);
    free(path);
}

static void test_qasper_fixture(void **state) {
    char *path = fixture("qaset/qasper.json");
    xt_docs l;
    parse_ok(path, &l);
    assert_int_equal(l.n, 1);
    const lqa_doc *d = &l.docs[0];
    assert_string_equal(d->title, "Counting Seabirds with Drones");
    char *abs = xt_span_text(d, d->abstract);
    assert_string_equal(abs, "We count nesting seabirds from drone images.");
    free(abs);
    int dc = xt_section(d, "Data collection");
    assert_true(dc >= 0);
    assert_int_equal(d->sections[dc].level, 2);
    assert_string_equal(d->sections[d->sections[dc].parent].title, "Method");
    assert_int_equal(d->n_qas, 3); /* the unanswerable one is skipped */
    assert_non_null(strstr(l.warnings.data, "skipped 1 unanswerable"));
    assert_int_equal(check_evidence(&l), 1);
    const lqa_qa_in *q = find_qa(&l, "Which colony was surveyed?", NULL);
    assert_string_equal(q->kind, "qasper:extractive");
    /* located inside its evidence paragraph, which lies in the section "Data collection" */
    assert_true(q->evidence.start >= d->sections[dc].span.start && q->evidence.end <= d->sections[dc].span.end);
    q = find_qa(&l, "Did they use drones?", NULL);
    assert_string_equal(q->kind, "qasper:yes_no");
    assert_string_equal(q->answers[0], "Yes");
    q = find_qa(&l, "How accurate is the detector?", NULL);
    assert_string_equal(q->kind, "qasper:free_form");
    xt_docs_free(&l);
    free(path);
}

/* The Hugging Face export (one paper per line, column-wise full_text and qas) gives the same
 * document and pairs as the release JSON. */
static void test_qasper_hf_layout(void **state) {
    char *rel = fixture("qaset/qasper.json"), *hf = fixture("qaset/qasper-hf.jsonl");
    xt_docs a, b;
    parse_ok(rel, &a);
    parse_ok(hf, &b);
    assert_int_equal(b.n, 2);
    assert_string_equal(b.docs[0].format, "qasper");
    assert_string_equal(b.docs[0].text.data, a.docs[0].text.data);
    assert_int_equal(b.docs[0].n_sections, a.docs[0].n_sections);
    assert_int_equal(b.docs[0].n_qas, a.docs[0].n_qas);
    for (int k = 0; k < a.docs[0].n_qas; k++) {
        assert_string_equal(b.docs[0].qas[k].question, a.docs[0].qas[k].question);
        assert_string_equal(b.docs[0].qas[k].answers[0], a.docs[0].qas[k].answers[0]);
        assert_int_equal(b.docs[0].qas[k].evidence.start, a.docs[0].qas[k].evidence.start);
    }
    assert_string_equal(b.docs[1].title, "Counting Puffins with Drones");
    assert_int_equal(check_evidence(&b), 2);
    xt_docs_free(&a);
    xt_docs_free(&b);
    free(rel), free(hf);
}

/* SQuAD's Hugging Face export (one question per line) gives the same article document and
 * pairs as the official JSON. */
static void test_squad_hf_layout(void **state) {
    char *rel = fixture("qaset/squad.json"), *hf = fixture("qaset/squad-hf.jsonl");
    xt_docs a, b;
    parse_ok(rel, &a);
    parse_ok(hf, &b);
    assert_int_equal(b.n, 1);
    assert_string_equal(b.docs[0].format, "squad");
    assert_string_equal(b.docs[0].title, a.docs[0].title);
    assert_string_equal(b.docs[0].text.data, a.docs[0].text.data);
    assert_int_equal(b.docs[0].n_qas, a.docs[0].n_qas);
    for (int k = 0; k < a.docs[0].n_qas; k++) {
        assert_string_equal(b.docs[0].qas[k].question, a.docs[0].qas[k].question);
        assert_int_equal(b.docs[0].qas[k].evidence.start, a.docs[0].qas[k].evidence.start);
        assert_int_equal(b.docs[0].qas[k].evidence.end, a.docs[0].qas[k].evidence.end);
    }
    assert_non_null(strstr(b.warnings.data, "skipped 1 unanswerable"));
    xt_docs_free(&a);
    xt_docs_free(&b);
    free(rel), free(hf);
}

/* A SQuAD file with a second JSON value after the first is refused with the line. */
static void test_squad_trailing_data(void **state) {
    char *src = fixture("qaset/squad.json"), *path = tmp_path("squad-twice.json");
    assert_int_equal(lqa_test_run(NULL, "(cat '%s'; echo; echo '{\"x\": 1}') > '%s'", src, path), 0);
    xt_docs l;
    lqa_err err;
    assert_int_equal(xt_parse_path(path, NULL, &l, &err), -1);
    assert_non_null(strstr(err.msg, "more data after the JSON value"));
    assert_non_null(strstr(err.msg, path));
    assert_int_equal(l.n, 0);
    xt_docs_free(&l);
    free(src), free(path);
}

static int stop_after_first(lqa_doc *doc, void *ctx) {
    (*(int *)ctx)++;
    return 1;
}

/* A sink that asks to stop gets no further document, pending ones included. */
static void test_sink_stop(void **state) {
    static const char *const files[] = {"qaset/alpaca.json", "qaset/longbench.jsonl", "qaset/squad-hf.jsonl",
                                        "qaset/qasper-hf.jsonl"};
    for (int f = 0; f < 4; f++) {
        char *path = fixture(files[f]);
        int n = 0;
        lqa_parse_opts opts = {0};
        lqa_err err;
        assert_int_equal(lqa_parse_path(path, &opts, stop_after_first, &n, &err), 0);
        if (n != 1) fail_msg("%s: %d documents after the sink asked to stop", files[f], n);
        free(path);
    }
}

/* ---- generated SQuAD: answer_start in code points over multi-byte text ------------------------ */

static void random_words(lqa_rng *r, lqa_buf *b, int n) {
    static const char *const pieces[] = {"é", "ö", "漢", "ß", "€", "🙂", "ñ"};
    for (int i = 0; i < n; i++) {
        if (i) lqa_buf_putc(b, ' ');
        int len = 2 + (int)lqa_rng_below(r, 7);
        for (int k = 0; k < len; k++) {
            if (lqa_rng_below(r, 6) == 0) lqa_buf_puts(b, pieces[lqa_rng_below(r, 7)]);
            else lqa_buf_putc(b, (char)('a' + lqa_rng_below(r, 26)));
        }
    }
}

static long utf8_chars(const char *s, size_t n) {
    long c = 0;
    for (size_t i = 0; i < n; i++) c += ((unsigned char)s[i] & 0xc0) != 0x80;
    return c;
}

static void test_random_squad(void **state) {
    lqa_rng r;
    lqa_rng_seed(&r, lqa_test_seed());
    json_t *paras = json_array();
    int answerable = 0, impossible = 0;
    int n_paras = 2 + (int)lqa_rng_below(&r, 6);
    for (int p = 0; p < n_paras; p++) {
        lqa_buf ctx = {0};
        random_words(&r, &ctx, 20 + (int)lqa_rng_below(&r, 60));
        json_t *qas = json_array();
        int n_q = 1 + (int)lqa_rng_below(&r, 5);
        for (int k = 0; k < n_q; k++) {
            char qtext[64];
            snprintf(qtext, sizeof qtext, "question %d.%d?", p, k);
            if (lqa_rng_below(&r, 4) == 0) {
                json_array_append_new(qas, json_pack("{s:s, s:[], s:b}", "question", qtext, "answers", "is_impossible", 1));
                impossible++;
                continue;
            }
            /* the answer: a run of whole words, given as SQuAD gives it (offset in code points) */
            size_t a = lqa_rng_below(&r, ctx.len / 2), e;
            while (a > 0 && ctx.data[a - 1] != ' ') a--;
            e = a + 1 + lqa_rng_below(&r, 30);
            while (e < ctx.len && ctx.data[e] != ' ') e++;
            if (e > ctx.len) e = ctx.len;
            char *ans = lqa_strndup(ctx.data + a, e - a);
            json_array_append_new(qas, json_pack("{s:s, s:[{s:s, s:i}], s:b}", "question", qtext, "answers", "text", ans,
                                                 "answer_start", (json_int_t)utf8_chars(ctx.data, a), "is_impossible", 0));
            free(ans);
            answerable++;
        }
        json_array_append_new(paras, json_pack("{s:s, s:o}", "context", ctx.data, "qas", qas));
        lqa_buf_free(&ctx);
    }
    json_t *root = json_pack("{s:s, s:[{s:s, s:o}]}", "version", "v2.0", "data", "title", "Random_Article", "paragraphs", paras);
    char *path = tmp_path("squad-random.json");
    assert_int_equal(json_dump_file(root, path, 0), 0);
    json_decref(root);
    xt_docs l;
    parse_ok(path, &l);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.docs[0].format, "squad");
    assert_int_equal(l.docs[0].n_qas, answerable);
    assert_int_equal(check_evidence(&l), answerable);
    if (impossible) {
        char want[64];
        snprintf(want, sizeof want, "skipped %d unanswerable", impossible);
        assert_non_null(strstr(l.warnings.data, want));
    }
    xt_docs_free(&l);
    free(path);
}

/* ---- streamed arrays ---------------------------------------------------------------------------- */

/* Writes an Alpaca array of n elements (~elem_bytes each, pretty-printed over several lines) and
 * returns, per element, the line where it starts. */
static long *write_alpaca_array(const char *path, lqa_rng *r, int n, size_t elem_bytes, size_t *total) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    long *starts = lqa_calloc((size_t)n + 1, sizeof *starts), line = 1;
    fputs("[\n", f);
    line++;
    lqa_buf text = {0}, elem = {0};
    for (int i = 0; i < n; i++) {
        lqa_buf_clear(&text);
        while (text.len < elem_bytes) {
            random_words(r, &text, 12);
            lqa_buf_puts(&text, lqa_rng_below(r, 4) ? ".\n" : ".\n\n");
        }
        lqa_buf_clear(&elem);
        json_t *o = json_pack("{s:s, s:s, s:s}", "instruction", "Below is a paper. Memorize the paper and answer my "
                              "question after the paper.\n The paper begins. \n", "input", "", "output", "x");
        /* instruction = prompt + text + end marker + question naming the element */
        char q[96];
        snprintf(q, sizeof q, "\n Now the paper ends. \nWhich element is this, number %d?", i);
        lqa_buf ins = {0};
        lqa_buf_puts(&ins, json_string_value(json_object_get(o, "instruction")));
        lqa_buf_append(&ins, text.data, text.len);
        lqa_buf_puts(&ins, q);
        json_object_set_new(o, "instruction", json_string(ins.data));
        lqa_buf_free(&ins);
        char *s = json_dumps(o, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
        json_decref(o);
        starts[i] = line;
        fputs(s, f);
        for (char *p = s; *p; p++) line += *p == '\n';
        fputs(i + 1 < n ? ",\n" : "\n", f);
        line++;
        free(s);
    }
    fputs("]\n", f);
    *total = (size_t)ftell(f);
    fclose(f);
    lqa_buf_free(&text);
    lqa_buf_free(&elem);
    return starts;
}

typedef struct stream_check {
    int n;       /* documents seen */
    int in_order;/* every document's question named the expected element */
} stream_check;

static int check_stream_doc(lqa_doc *doc, void *ctx) {
    stream_check *c = ctx;
    char want[64];
    snprintf(want, sizeof want, "Which element is this, number %d?", c->n);
    if (doc->n_qas != 1 || strcmp(doc->qas[0].question, want) != 0) c->in_order = 0;
    c->n++;
    return 0;
}

static long status_kb(const char *key) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    long v = -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, key, strlen(key))) v = strtol(line + strlen(key) + 1, NULL, 10);
    fclose(f);
    return v;
}

/* A multi-MB array parsed in a child process: every element arrives in order, and the child's
 * peak RSS grows by far less than the file (bounded by one element plus fixed buffers). */
static void test_stream_large_array_bounded(void **state) {
    lqa_rng r;
    lqa_rng_seed(&r, lqa_test_seed() + 1);
    char *path = tmp_path("big-alpaca.json");
    int n = 400 + (int)lqa_rng_below(&r, 100);
    size_t total;
    long *starts = write_alpaca_array(path, &r, n, 30000, &total);
    free(starts);
    assert_true(total > 10u << 20);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        long before = status_kb("VmRSS:");
        stream_check c = {0, 1};
        lqa_parse_opts opts = {0};
        lqa_err err;
        int rc = lqa_parse_path(path, &opts, check_stream_doc, &c, &err);
        long result[4] = {rc, c.n, c.in_order, status_kb("VmHWM:") - before};
        if (write(fds[1], result, sizeof result) != sizeof result) _exit(2);
        _exit(0);
    }
    close(fds[1]);
    long result[4];
    assert_int_equal(read(fds[0], result, sizeof result), sizeof result);
    close(fds[0]);
    int st;
    waitpid(pid, &st, 0);
    assert_int_equal(result[0], 0);
    assert_int_equal(result[1], n);
    assert_int_equal(result[2], 1);
    long grew_kb = result[3], file_kb = (long)(total >> 10);
    fprintf(stderr, "# streamed %d elements, %ld KB file: peak RSS grew %ld KB\n", n, file_kb, grew_kb);
#if defined(__SANITIZE_ADDRESS__)
    fprintf(stderr, "# RSS bound not checked under AddressSanitizer (its quarantine keeps freed memory)\n");
#else
    assert_true(grew_kb < file_kb / 4);
#endif
    free(path);
}

/* An array cut inside element k: the k complete elements are handed on, then an error naming
 * the file, the line where the incomplete element starts, and "cut in the middle". The same
 * holds through gzip. */
static void test_cut_array(void **state) {
    lqa_rng r;
    lqa_rng_seed(&r, lqa_test_seed() + 2);
    char *path = tmp_path("cut-src.json"), *cut = tmp_path("cut.json");
    int n = 5 + (int)lqa_rng_below(&r, 20);
    size_t total;
    long *starts = write_alpaca_array(path, &r, n, 300, &total);
    char *data;
    size_t len;
    lqa_err err;
    assert_int_equal(lqa_read_file(path, &data, &len, &err), 0);
    /* cut inside element k: after its opening line, before its last byte */
    int k = 1 + (int)lqa_rng_below(&r, (uint64_t)(n - 1));
    size_t off = 0;
    for (long line = 1; line < starts[k]; off++) line += data[off] == '\n';
    size_t elem_len = strchr(data + off, '}') - (data + off); /* the elements hold no nested objects */
    size_t keep = off + 2 + lqa_rng_below(&r, elem_len - 2);
    lqa_test_write(cut, data, keep);
    for (int gz = 0; gz < 2; gz++) {
        if (gz) {
            assert_int_equal(lqa_test_run(NULL, "gzip -f '%s'", cut), 0);
            free(cut);
            cut = tmp_path("cut.json.gz");
        }
        xt_docs l;
        assert_int_equal(xt_parse_path(cut, NULL, &l, &err), -1);
        assert_int_equal(l.n, k);
        char want[128];
        snprintf(want, sizeof want, "starts at line %ld", starts[k]);
        if (!strstr(err.msg, cut) || !strstr(err.msg, "cut in the middle") || !strstr(err.msg, want))
            fail_msg("unexpected error: %s (wanted '%s')", err.msg, want);
        xt_docs_free(&l);
    }
    /* cut right after a complete element and its comma */
    size_t after = off;
    while (after > 0 && data[after - 1] != ',') after--;
    lqa_test_write(cut, data, after);
    xt_docs l;
    assert_int_equal(xt_parse_path(cut, "alpaca", &l, &err), -1);
    assert_int_equal(l.n, k);
    assert_non_null(strstr(err.msg, "cut in the middle"));
    xt_docs_free(&l);
    free(data), free(starts), free(path), free(cut);
}

/* Bad JSON inside an element names the file line; elements before it are kept. */
static void test_bad_element_line(void **state) {
    lqa_rng r;
    lqa_rng_seed(&r, lqa_test_seed() + 3);
    int n = 3 + (int)lqa_rng_below(&r, 10), bad = (int)lqa_rng_below(&r, (uint64_t)n);
    lqa_buf b = {0};
    lqa_buf_puts(&b, "[\n");
    long bad_line = 0, line = 2;
    for (int i = 0; i < n; i++) {
        lqa_buf_puts(&b, " {\n  \"instruction\": \"say something\",\n");
        line += 2;
        if (i == bad) bad_line = line;
        lqa_buf_printf(&b, "  \"output\"%s \"thing %d\"\n }%s\n", i == bad ? "" : ":", i, i + 1 < n ? "," : "");
        line += 2;
    }
    lqa_buf_puts(&b, "]\n");
    char *path = tmp_path("bad-elem.json");
    lqa_test_write(path, b.data, b.len);
    xt_docs l;
    lqa_err err;
    assert_int_equal(xt_parse_path(path, NULL, &l, &err), -1);
    assert_int_equal(l.n, bad);
    char want[600];
    snprintf(want, sizeof want, "%s:%ld: invalid JSON", path, bad_line);
    if (!strstr(err.msg, want)) fail_msg("expected '%s' in: %s", want, err.msg);
    xt_docs_free(&l);
    lqa_buf_free(&b);
    free(path);
}

/* JSON lines: a last line cut short fails with its line number; the earlier lines are kept. */
static void test_cut_jsonl(void **state) {
    lqa_rng r;
    lqa_rng_seed(&r, lqa_test_seed() + 4);
    int n = 2 + (int)lqa_rng_below(&r, 10);
    lqa_buf b = {0};
    size_t last_start = 0;
    for (int i = 0; i < n; i++) {
        lqa_buf ctx = {0};
        random_words(&r, &ctx, 30);
        last_start = b.len;
        json_t *o = json_pack("{s:s, s:s, s:[s], s:s, s:s}", "input", "what?", "context", ctx.data, "answers", "x",
                              "dataset", "narrativeqa", "_id", "id");
        char *s = json_dumps(o, JSON_PRESERVE_ORDER);
        lqa_buf_puts(&b, s);
        lqa_buf_putc(&b, '\n');
        free(s);
        json_decref(o);
        lqa_buf_free(&ctx);
    }
    b.len = last_start + (b.len - last_start) / 2;
    char *path = tmp_path("cut.jsonl");
    lqa_test_write(path, b.data, b.len);
    xt_docs l;
    lqa_err err;
    assert_int_equal(xt_parse_path(path, NULL, &l, &err), -1);
    assert_int_equal(l.n, n - 1); /* each line has its own context */
    char want[600];
    snprintf(want, sizeof want, "%s:%d: invalid JSON", path, n);
    if (!strstr(err.msg, want)) fail_msg("expected '%s' in: %s", want, err.msg);
    xt_docs_free(&l);
    lqa_buf_free(&b);
    free(path);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stream_large_array_bounded),
        cmocka_unit_test(test_alpaca_fixture),
        cmocka_unit_test(test_longbench_fixture),
        cmocka_unit_test(test_squad_fixture),
        cmocka_unit_test(test_qasper_fixture),
        cmocka_unit_test(test_qasper_hf_layout),
        cmocka_unit_test(test_squad_hf_layout),
        cmocka_unit_test(test_sink_stop),
        cmocka_unit_test(test_squad_trailing_data),
        cmocka_unit_test(test_random_squad),
        cmocka_unit_test(test_cut_array),
        cmocka_unit_test(test_bad_element_line),
        cmocka_unit_test(test_cut_jsonl),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
