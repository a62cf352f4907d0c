/* report.h: `lqa-eval report`: one or more results.json files (schema lqa-eval-results/1, see
 * docs/EVAL.md) -> REPORT_DIR/report.md and REPORT_DIR/report.html. The HTML is one
 * self-contained page (inline CSS and SVG, no scripts, nothing fetched); the markdown links the
 * same charts written as REPORT_DIR/<chart>.svg. */
#ifndef LQA_EVAL_REPORT_H
#define LQA_EVAL_REPORT_H

#include "common/check.h"

/* -1 with err naming the file when an input is not a results file; nothing is written then.
 * notes_tsv (may be NULL): a tab-separated table shown as the section "How these figures were
 * made" (first line the header; lines starting with "# " are paragraphs), e.g. the demo's
 * stage timings and settings. */
int lqa_eval_report(const char *const *inputs, int n_inputs, const char *notes_tsv, const char *out_dir, lqa_err *err);

#endif
