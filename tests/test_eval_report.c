/* test_eval_report.c: `lqa-eval report` on random results files: both documents are written,
 * the HTML is self-contained (no script, nothing fetched), every run appears in the summary with
 * its own numbers, one heatmap per run with passkey results, one line per run in the perplexity
 * chart, text from the results is escaped; a file that is not a results file is refused with
 * its name and nothing is written. */
#include "tests/testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/fileio.h"
#include "common/json.h"
#include "common/rng.h"

static json_t *random_results(lqa_rng *r, const char *name, int with_qa, double *em_out) {
    int lengths[] = {256, 512, 1024, 2048};
    double depths[] = {0, 0.5, 1};
    json_t *cells = json_array(), *points = json_array(), *lj = json_array(), *dj = json_array();
    for (int l = 0; l < 4; l++) {
        json_array_append_new(lj, json_integer(lengths[l]));
        json_array_append_new(points, json_pack("{s:i, s:i, s:f, s:f}", "length", lengths[l], "tokens", 1000, "nll",
                                                1.0, "ppl", 5 + 20 * lqa_rng_uniform(r)));
        for (int d = 0; d < 3; d++) {
            int correct = (int)lqa_rng_below(r, 6);
            json_array_append_new(cells, json_pack("{s:i, s:f, s:i, s:i, s:f, s:s}", "length", lengths[l], "depth",
                                                   depths[d], "trials", 5, "correct", correct, "accuracy",
                                                   correct / 5.0, "sample", "key 1, generated \"1\""));
        }
    }
    for (int d = 0; d < 3; d++) json_array_append_new(dj, json_real(depths[d]));
    json_t *tasks = json_pack("{s:{s:{s:s, s:i, s:o, s:o}, s:f, s:i, s:o}, s:{s:{s:s, s:i}, s:o}}", "passkey",
                              "settings", "filler", "paper", "trials", 5, "lengths", lj, "depths", dj, "accuracy",
                              lqa_rng_uniform(r), "prompts", 60, "cells", cells, "ppl", "settings", "split", "test",
                              "stride", 256, "points", points);
    *em_out = lqa_rng_uniform(r);
    if (with_qa) {
        json_t *by_kind = json_object(), *by_len = json_object();
        const char *kinds[] = {"section", "table", "multihop"};
        for (int k = 0; k < 3; k++)
            json_object_set_new(by_kind, kinds[k], json_pack("{s:i, s:f, s:f, s:f}", "n", 3, "em", lqa_rng_uniform(r),
                                                             "f1", lqa_rng_uniform(r), "contained", lqa_rng_uniform(r)));
        json_object_set_new(by_len, "<=1024", json_pack("{s:i, s:f, s:f, s:f}", "n", 4, "em", 0.5, "f1", 0.6, "contained", 0.7));
        json_object_set_new(by_len, ">2048", json_pack("{s:i, s:f, s:f, s:f}", "n", 5, "em", 0.1, "f1", 0.2, "contained", 0.3));
        json_object_set_new(tasks, "qa", json_pack("{s:{s:s}, s:i, s:f, s:f, s:f, s:o, s:o, s:[]}", "settings", "split",
                                                   "test", "n", 9, "em", *em_out, "f1", 0.5, "contained", 0.5,
                                                   "by_kind", by_kind, "by_length", by_len, "items"));
    }
    return json_pack("{s:s, s:s, s:s, s:{s:s, s:s}, s:{s:i, s:i}, s:o, s:{s:f}}", "schema", "lqa-eval-results/1",
                     "created", "2026-01-01T00:00:00Z", "host", "test", "model", "name", name, "dir", "/m", "settings",
                     "ctx", 2048, "trials", 5, "tasks", tasks, "timing", "wall_s", 1.0);
}

static char *read_all(const char *path) {
    char *data = NULL;
    size_t n;
    lqa_err err;
    if (lqa_read_file(path, &data, &n, &err)) fail_msg("%s", err.msg);
    return data;
}

static int count(const char *hay, const char *needle) {
    int n = 0;
    size_t len = strlen(needle);
    for (size_t i = 0; hay[i]; i++) n += strncmp(hay + i, needle, len) == 0;
    return n;
}

static void test_report_of_several_runs(void **state) {
    lqa_rng r;
    lqa_rng_seed(&r, lqa_test_seed());
    const char *dir = lqa_test_tmpdir();
    const char *names[] = {"base", "lora", "longlora <b>&</b>"};
    double em[3];
    lqa_buf args = {0};
    for (int i = 0; i < 3; i++) {
        char file[32];
        snprintf(file, sizeof file, "r%d.json", i);
        char *path = lqa_path_join(dir, file);
        json_t *j = random_results(&r, names[i], i != 1, &em[i]);
        assert_int_equal(lqa_json_write_file(path, j, NULL), 0);
        json_decref(j);
        lqa_buf_printf(&args, " %s", path);
        free(path);
    }
    char *out = lqa_path_join(dir, "report");
    lqa_buf log = {0};
    int rc = lqa_test_run(&log, "%s report%s -o %s", lqa_test_tool("lqa-eval"), args.data, out);
    if (rc) fail_msg("lqa-eval report failed: %s", log.data);
    char *html_path = lqa_path_join(out, "report.html"), *md_path = lqa_path_join(out, "report.md");
    char *html = read_all(html_path), *md = read_all(md_path);
    /* self-contained: no scripts, no external references (the SVG namespace is a name, not a fetch) */
    assert_int_equal(count(html, "<script"), 0);
    assert_int_equal(count(html, "src="), 0);
    assert_int_equal(count(html, "href="), 0);
    assert_int_equal(count(html, "http"), count(html, "http://www.w3.org/2000/svg"));
    /* one heatmap per run, one ppl chart with one line per run, QA charts by kind and length */
    assert_int_equal(count(html, "<svg"), 3 + 1 + 2);
    assert_int_equal(count(html, "<polyline"), 3);
    for (int i = 0; i < 3; i++) {
        char want[64];
        snprintf(want, sizeof want, "%.1f", 100 * em[i]);
        if (i != 1 && !strstr(md, want)) fail_msg("summary lacks run %d's EM %s", i, want);
    }
    /* names are escaped in HTML, kept in markdown */
    assert_null(strstr(html, "<b>&</b>"));
    assert_non_null(strstr(html, "longlora &lt;b&gt;&amp;&lt;/b&gt;"));
    assert_non_null(strstr(md, "longlora <b>&</b>"));
    assert_non_null(strstr(md, "![Perplexity against context length](ppl.svg)"));
    char *svg = lqa_path_join(out, "ppl.svg");
    assert_true(lqa_path_exists(svg));
    free(svg);
    /* sections present in both */
    const char *sections[] = {"Summary", "QA accuracy by kind", "Passkey retrieval", "Perplexity against context length",
                              "Settings of every run"};
    for (int i = 0; i < 5; i++) {
        assert_non_null(strstr(md, sections[i]));
        assert_non_null(strstr(html, sections[i]));
    }
    free(html);
    free(md);
    free(html_path);
    free(md_path);
    free(out);
    lqa_buf_free(&args);
    lqa_buf_free(&log);
}

/* A words-only text of about n bytes (lower-case words of 2-9 letters). */
static void random_words(lqa_rng *r, char *out, size_t n) {
    size_t k = 0;
    while (k + 11 < n) {
        int len = 2 + (int)lqa_rng_below(r, 8);
        if (k) out[k++] = ' ';
        for (int i = 0; i < len; i++) out[k++] = (char)('a' + lqa_rng_below(r, 26));
    }
    out[k] = '\0';
}

/* The cells of a report: numbers right-aligned and text left, long questions and answers cut at
 * a word with an ellipsis, settings without float noise, one format per measure, an empty-looking
 * chart that says why, no overflow-wrap:anywhere. */
static void test_report_cells_and_formats(void **state) {
    lqa_rng r;
    lqa_rng_seed(&r, lqa_test_seed() + 1);
    const char *dir = lqa_test_tmpdir();
    double em;
    json_t *j = random_results(&r, "cells run", 1, &em);
    json_t *qa = json_object_get(json_object_get(j, "tasks"), "qa");
    const char *key;
    json_t *g;
    json_object_foreach(json_object_get(qa, "by_kind"), key, g) json_object_set_new(g, "f1", json_real(0));
    json_object_foreach(json_object_get(qa, "by_length"), key, g) json_object_set_new(g, "f1", json_real(0));
    char question[400], answer[300];
    random_words(&r, question, sizeof question);
    random_words(&r, answer, 200);
    strcat(answer, " caf\xc3\xa9 \xe6\xbc\xa2\xe5\xad\x97 end"); /* multi-byte characters near the cut */
    json_array_append_new(json_object_get(qa, "items"),
                          json_pack("{s:s, s:s, s:s, s:s, s:f}", "kind", "section", "question", question, "answer", answer,
                                    "prediction", answer, "f1", 0.5));
    /* a short decimal whose %.17g form (what JSON writers print) carries noise digits */
    char dec[32];
    snprintf(dec, sizeof dec, "1.3493%04u9", (unsigned)lqa_rng_below(&r, 10000));
    double noisy = strtod(dec, NULL);
    json_object_set_new(json_object_get(j, "settings"), "temperature", json_real(noisy));
    json_object_set_new(json_object_get(j, "settings"), "depths", json_pack("[f, f]", 0.1, 0.7));
    json_object_set_new(json_object_get(j, "settings"), "theta", json_real(500000.0));
    char *path = lqa_path_join(dir, "cells.json"), *out = lqa_path_join(dir, "cells-report");
    assert_int_equal(lqa_json_write_file(path, j, NULL), 0);
    json_decref(j);
    lqa_buf log = {0};
    if (lqa_test_run(&log, "%s report %s -o %s", lqa_test_tool("lqa-eval"), path, out)) fail_msg("%s", log.data);
    char *html_path = lqa_path_join(out, "report.html"), *html;
    size_t html_len;
    lqa_err err;
    assert_int_equal(lqa_read_file(html_path, &html, &html_len, &err), 0);
    assert_null(strstr(html, "anywhere"));
    /* settings: the shortest exact decimal, arrays joined */
    char want[64];
    snprintf(want, sizeof want, "<td class=\"nw\">%s</td>", dec);
    if (!strstr(html, want)) fail_msg("settings lack %s", want);
    assert_non_null(strstr(html, "<td>0.1, 0.7</td>"));
    assert_non_null(strstr(html, "<td class=\"nw\">500000</td>"));   /* not 5e+05 */
    /* alignment: the run name is text (left), its figures numbers (right) */
    assert_non_null(strstr(html, "<td>cells run</td><td class=\"num\">2048</td>"));
    assert_non_null(strstr(html, "<th class=\"num nw\">QA EM %</th>"));
    /* the question: cut at a word boundary of the original, with an ellipsis */
    const char *cell = strstr(html, "<td>cells run</td><td class=\"nw\">section</td><td>");
    assert_non_null(cell);
    cell += strlen("<td>cells run</td><td class=\"nw\">section</td><td>");
    const char *ell = strstr(cell, "\xe2\x80\xa6</td>");
    assert_non_null(ell);
    size_t kept = (size_t)(ell - cell);
    if (!(kept > 40 && kept < strlen(question))) fail_msg("question cell of %zu bytes: %.300s", kept, cell);
    assert_memory_equal(cell, question, kept);
    assert_true(question[kept] == ' ');
    /* the answer cut keeps whole UTF-8 characters (no stray bytes before the ellipsis) */
    const char *acell = ell + strlen("\xe2\x80\xa6</td><td>");
    const char *aell = strstr(acell, "\xe2\x80\xa6</td>");
    if (aell) assert_memory_equal(acell, answer, (size_t)(aell - acell));
    /* one format per measure: percentages with one decimal everywhere, F1 of the sample too */
    assert_non_null(strstr(html, "<td class=\"num\">50.0</td></tr>"));
    /* the QA charts have no bar to see: the chart and the page say why */
    assert_non_null(strstr(html, "every value is 0"));
    assert_non_null(strstr(html, "Every bar is at 0"));
    free(html), free(html_path), free(path), free(out);
    lqa_buf_free(&log);
}

/* The in-page check run on a copy of the report: every number and every word of up to 24
 * characters in a table cell must lie on one line (a split word has client rects on two
 * lines). It writes its findings into the DOM, which --dump-dom prints. */
static const char *const SPLIT_CHECK =
    "<script>(function(){var bad=[],checked=0;"
    "document.querySelectorAll('td,th').forEach(function(cell){"
    "var tw=document.createTreeWalker(cell,NodeFilter.SHOW_TEXT),n;while((n=tw.nextNode())){"
    "var re=/\\S+/g,m;while((m=re.exec(n.data))){var w=m[0];"
    "if(!/^[-+]?[0-9][0-9.,]*%?$/.test(w)&&w.length>24)continue;"
    "var r=document.createRange();r.setStart(n,m.index);r.setEnd(n,m.index+w.length);"
    "var rs=r.getClientRects(),tops={};for(var i=0;i<rs.length;i++)if(rs[i].width>0)tops[Math.round(rs[i].top)]=1;"
    "checked++;if(Object.keys(tops).length>1)bad.push(w);}}});"
    "document.body.setAttribute('data-checked',String(checked));"
    "document.body.setAttribute('data-split','['+bad.slice(0,20).join(' ')+']');})();</script>";

/* Chromium, headless, no network, its own profile; OUT gets stdout and stderr. */
static int chromium(lqa_buf *out, const char *profile, const char *args) {
    return lqa_test_run(out, "timeout 120 chromium --headless --no-sandbox --disable-gpu --no-first-run "
                             "--user-data-dir=%s --enable-logging=stderr --v=0 --hide-scrollbars "
                             "--proxy-server=127.0.0.1:9 --window-size=900,2400 --virtual-time-budget=3000 %s",
                        profile, args);
}

/* The lines of chromium's log that are the page's console (errors, failed loads, exceptions). */
static int console_lines(const char *log, lqa_buf *lines) {
    int n = 0;
    for (const char *l = log; l && *l;) {
        const char *end = strchr(l, '\n');
        size_t len = end ? (size_t)(end - l) : strlen(l);
        if (memmem(l, len, ":CONSOLE", 8)) lqa_buf_append(lines, l, len), lqa_buf_putc(lines, '\n'), n++;
        l = end ? end + 1 : NULL;
    }
    return n;
}

/* The report as Chromium draws it: a screenshot among the test artifacts (BUILD/test-artifacts/
 * report.png), no console message, and no number or short word split across lines in any table
 * cell at a 900 px window. Skipped, saying why, only when chromium cannot start. */
static void test_report_in_chromium(void **state) {
    const char *dir = lqa_test_tmpdir();
    char *profile = lqa_path_join(dir, "chromium-profile");
    lqa_buf log = {0};
    if (chromium(&log, profile, "--dump-dom about:blank") || !strstr(log.data ? log.data : "", "<body>")) {
        print_message("SKIP test_report_in_chromium: chromium cannot start (apt-get install chromium, or make deps): "
                      "%.300s\n", log.data ? log.data : "no output");
        lqa_buf_free(&log);
        free(profile);
        skip();
    }
    lqa_rng r;
    lqa_rng_seed(&r, lqa_test_seed() + 2);
    lqa_buf args = {0};
    const char *names[] = {"base-256+PI-x8", "longlora-2048"};
    for (int i = 0; i < 2; i++) {
        double em;
        json_t *j = random_results(&r, names[i], 1, &em);
        json_t *items = json_object_get(json_object_get(json_object_get(j, "tasks"), "qa"), "items");
        for (int k = 0; k < 4; k++) {
            char q[300], a[200];
            random_words(&r, q, 60 + lqa_rng_below(&r, 240));
            random_words(&r, a, 20 + lqa_rng_below(&r, 150));
            json_array_append_new(items, json_pack("{s:s, s:s, s:s, s:s, s:f}", "kind", "section", "question", q,
                                                   "answer", a, "prediction", a, "f1", lqa_rng_uniform(&r)));
        }
        json_object_set_new(json_object_get(j, "settings"), "lr", json_real(1.3493050900000001));
        char file[32];
        snprintf(file, sizeof file, "browser%d.json", i);
        char *path = lqa_path_join(dir, file);
        assert_int_equal(lqa_json_write_file(path, j, NULL), 0);
        json_decref(j);
        lqa_buf_printf(&args, " %s", path);
        free(path);
    }
    const char *build = getenv("LQA_BUILD") ? getenv("LQA_BUILD") : "build";
    char *art = lqa_path_join(build, "test-artifacts"), *out = lqa_path_join(art, "report");
    lqa_err err;
    assert_int_equal(lqa_mkdir_p(art, &err), 0);
    lqa_buf_clear(&log);
    if (lqa_test_run(&log, "%s report%s -o %s", lqa_test_tool("lqa-eval"), args.data, out)) fail_msg("%s", log.data);
    char *html_path = lqa_path_join(out, "report.html"), *png = lqa_path_join(art, "report.png");
    char *abs_html = realpath(html_path, NULL);
    assert_non_null(abs_html);
    unlink(png);
    lqa_buf_clear(&log);
    lqa_buf a = {0}, lines = {0};
    lqa_buf_printf(&a, "--screenshot=%s file://%s", png, abs_html);
    int rc = chromium(&log, profile, a.data);
    if (rc || !lqa_path_exists(png)) fail_msg("no screenshot (exit %d): %.2000s", rc, log.data);
    if (console_lines(log.data, &lines)) fail_msg("console messages rendering the report:\n%s", lines.data);
    /* the split check, on a copy with the script (the report itself has none) */
    char *html, *checked_path = lqa_path_join(art, "report-split-check.html");
    size_t n;
    assert_int_equal(lqa_read_file(html_path, &html, &n, &err), 0);
    char *body_end = strstr(html, "</body>");
    assert_non_null(body_end);
    lqa_buf copy = {0};
    lqa_buf_append(&copy, html, (size_t)(body_end - html));
    lqa_buf_puts(&copy, SPLIT_CHECK);
    lqa_buf_puts(&copy, body_end);
    lqa_test_write(checked_path, copy.data, copy.len);
    char *abs_checked = realpath(checked_path, NULL);
    lqa_buf_clear(&log), lqa_buf_clear(&a), lqa_buf_clear(&lines);
    lqa_buf_printf(&a, "--dump-dom file://%s", abs_checked);
    rc = chromium(&log, profile, a.data);
    if (rc) fail_msg("chromium --dump-dom failed (exit %d): %.2000s", rc, log.data);
    if (console_lines(log.data, &lines)) fail_msg("console messages in the split check:\n%s", lines.data);
    const char *checked = strstr(log.data, "data-checked=\""), *split = strstr(log.data, "data-split=\"[");
    if (!checked || !split) fail_msg("the split check did not run: %.2000s", log.data);
    if (atoi(checked + strlen("data-checked=\"")) < 100) fail_msg("only %d words checked", atoi(checked + 14));
    if (strncmp(split, "data-split=\"[]\"", 15)) fail_msg("words split across lines in the tables: %.400s", split);
    free(html), free(abs_html), free(abs_checked), free(checked_path), free(html_path), free(png), free(out), free(art);
    free(profile);
    lqa_buf_free(&log), lqa_buf_free(&a), lqa_buf_free(&lines), lqa_buf_free(&copy), lqa_buf_free(&args);
}

static void test_bad_inputs_are_refused(void **state) {
    const char *dir = lqa_test_tmpdir();
    char *bad = lqa_path_join(dir, "bad.json"), *other = lqa_path_join(dir, "other.json"),
         *out = lqa_path_join(dir, "never");
    lqa_test_write(bad, "{\"schema\": \"lqa-eval-results/1\",\n  \"tasks\": {", 45);
    lqa_test_write(other, "{\"schema\": \"something-else\"}", 28);
    lqa_buf log = {0};
    assert_int_not_equal(lqa_test_run(&log, "%s report %s -o %s", lqa_test_tool("lqa-eval"), bad, out), 0);
    assert_non_null(strstr(log.data, "bad.json:"));
    lqa_buf_clear(&log);
    assert_int_not_equal(lqa_test_run(&log, "%s report %s -o %s", lqa_test_tool("lqa-eval"), other, out), 0);
    assert_non_null(strstr(log.data, "other.json"));
    assert_non_null(strstr(log.data, "expected an lqa-eval results file"));
    assert_false(lqa_path_exists(out));
    lqa_buf_clear(&log);
    assert_int_not_equal(lqa_test_run(&log, "%s report %s", lqa_test_tool("lqa-eval"), other), 0);
    assert_non_null(strstr(log.data, "-o REPORT_DIR"));
    lqa_buf_free(&log);
    free(bad);
    free(other);
    free(out);
}

/* --notes: a tab-separated table and paragraphs become "How these figures were made"; a row
 * with the wrong number of cells is refused with its line. */
static void test_notes_section(void **state) {
    const char *dir = lqa_test_tmpdir();
    lqa_rng r;
    lqa_rng_seed(&r, lqa_test_seed() + 7);
    double em;
    char *res = lqa_path_join(dir, "notes-run.json"), *notes = lqa_path_join(dir, "notes.tsv"),
         *bad = lqa_path_join(dir, "bad-notes.tsv"), *out = lqa_path_join(dir, "notes-report"),
         *never = lqa_path_join(dir, "notes-never");
    json_t *j = random_results(&r, "run", 1, &em);
    assert_int_equal(lqa_json_write_file(res, j, NULL), 0);
    json_decref(j);
    unsigned secs = 1 + (unsigned)lqa_rng_below(&r, 100000);
    char text[256];
    int n = snprintf(text, sizeof text, "stage\tseconds\ningest <x>\t%u\n# Mode: quick & small.\n", secs);
    lqa_test_write(notes, text, (size_t)n);
    lqa_buf log = {0};
    int rc = lqa_test_run(&log, "%s report %s --notes %s -o %s", lqa_test_tool("lqa-eval"), res, notes, out);
    if (rc) fail_msg("lqa-eval report --notes failed: %s", log.data);
    char *html_path = lqa_path_join(out, "report.html"), *md_path = lqa_path_join(out, "report.md");
    char *html = read_all(html_path), *md = read_all(md_path);
    char want[64];
    snprintf(want, sizeof want, "<td>ingest &lt;x&gt;</td><td class=\"num\">%u</td>", secs);
    assert_non_null(strstr(html, "How these figures were made"));
    assert_non_null(strstr(html, want));
    assert_non_null(strstr(html, "<p>Mode: quick &amp; small.</p>"));
    snprintf(want, sizeof want, "| ingest <x> | %u |", secs);
    assert_non_null(strstr(md, want));
    lqa_test_write(bad, "stage\tseconds\nonly-one-cell\n", 29);
    lqa_buf_clear(&log);
    assert_int_not_equal(lqa_test_run(&log, "%s report %s --notes %s -o %s", lqa_test_tool("lqa-eval"), res, bad, never), 0);
    assert_non_null(strstr(log.data, "bad-notes.tsv:2:"));
    assert_false(lqa_path_exists(never));
    free(html); free(md); free(html_path); free(md_path);
    free(res); free(notes); free(bad); free(out); free(never);
    lqa_buf_free(&log);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_report_of_several_runs),
        cmocka_unit_test(test_report_cells_and_formats),
        cmocka_unit_test(test_report_in_chromium),
        cmocka_unit_test(test_bad_inputs_are_refused),
        cmocka_unit_test(test_notes_section),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
