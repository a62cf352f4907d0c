/* fuzz_ingest_xml.c: libFuzzer target for one XML-family parser of ingest/xml*.c, chosen at
 * build time (-DFUZZ_FORMAT="html", "docbook", "jats", "tei" or "mallard"; mk/fuzz.mk builds one
 * binary per format, so each parser gets its own executions): any bytes, sniffed and parsed
 * as that format with the limits lqa-ingest uses, must give documents whose spans all hold
 * (fuzz_doc_check.h) or a clean error; never a crash, a leak or undefined behaviour. */
#include <stddef.h>
#include <stdint.h>

#include "ingest/xml.h"
#include "tests/fuzz/fuzz_doc_check.h"

#ifndef FUZZ_FORMAT
#define FUZZ_FORMAT "html"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *s = (const char *)data;
    lqa_xml_sniff(s, size);
    lqa_parse_opts opts = {.max_text_node = 1u << 20, .max_depth = 256};
    lqa_err err;
    lqa_xml_parse_buffer("fuzz." FUZZ_FORMAT, s, size, FUZZ_FORMAT, &opts, fuzz_check_doc, NULL, &err);
    return 0;
}
