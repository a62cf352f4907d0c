/* qaset.h: importers of existing QA sets (ingest/qaset.c), each element a document carrying its
 * QA pairs (doc->qas): Alpaca/LongAlpaca JSON arrays (streamed one element at a time), LongBench
 * JSONL (streamed line by line), SQuAD v2 JSON and Qasper JSON (read whole). Formats in
 * docs/INGEST-QASETS.md. */
#ifndef LQA_QASET_H
#define LQA_QASET_H

#include <stddef.h>

#include "ingest/parse.h"

/* Largest single JSON element (Alpaca array element, JSONL line) or whole SQuAD/Qasper file. */
#define LQA_QASET_MAX_ELEMENT ((size_t)256 << 20)
#define LQA_QASET_MAX_FILE ((size_t)1 << 30)

/* From the first bytes of (decompressed) content: "alpaca", "longbench", "squad", "qasper",
 * or NULL when the JSON is none of them (or not JSON). */
const char *lqa_qaset_sniff(const char *head, size_t n);

/* Parses one QA-set file of the given format; one document per element. Records that cannot be
 * used (unanswerable questions, answers not found in their context) are skipped, counted and
 * reported through opts->warn. */
int lqa_qaset_parse(const char *path, const char *format, const lqa_parse_opts *opts, lqa_doc_sink sink, void *ctx,
                    lqa_err *err);

/* Streams the elements of a top-level JSON array: calls fn with each element's bytes (one at a
 * time: memory bounded by the largest element) and the line where it starts. An array cut in
 * the middle is an error naming the line, after the complete elements were handed on. fn returns
 * 0 to go on, 1 to stop, -1 on error (err set). Exposed for tests and other JSON-array readers. */
typedef int (*lqa_json_element_fn)(const char *json, size_t len, long line, void *ctx, lqa_err *err);
int lqa_json_array_stream(const char *path, const lqa_input_pin *pin, lqa_json_element_fn fn, void *ctx,
                          lqa_err *err);

#endif
