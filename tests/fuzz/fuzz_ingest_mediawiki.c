/* fuzz_ingest_mediawiki.c: libFuzzer target for the streamed MediaWiki dump parser
 * (ingest/xml_mediawiki.c, wikitext included) through the input layer: the bytes are a memory
 * file read with lqa_input_open (compressed when they begin with a codec's magic). Documents
 * must hold their spans (fuzz_doc_check.h); errors must be clean. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ingest/xml.h"
#include "tests/fuzz/fuzz_doc_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    int fd = memfd_create("fuzz-mediawiki", 0);
    if (fd < 0) return 0;
    if (write(fd, data, size) != (ssize_t)size) {
        close(fd);
        return 0;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    lqa_parse_opts opts = {.max_text_node = 1u << 20, .max_depth = 256};
    lqa_err err;
    lqa_input *in = lqa_input_open(path, &err);
    if (in) {
        lqa_xml_parse_mediawiki(path, in, &opts, fuzz_check_doc, NULL, &err);
        lqa_input_close(in);
    }
    close(fd);
    return 0;
}
