/* fuzz_ingest_epub.c: libFuzzer target for the EPUB reader (ingest/xml_epub.c: the zip
 * container through libarchive, container.xml, the OPF spine, each XHTML page): the bytes are a
 * memory file parsed as an EPUB. Documents must hold their spans (fuzz_doc_check.h); a broken
 * zip, OPF or page must be a clean error. Seeds are real EPUBs (mk/fuzz.mk zips them). */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ingest/xml.h"
#include "tests/fuzz/fuzz_doc_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    int fd = memfd_create("fuzz-epub", 0);
    if (fd < 0) return 0;
    if (write(fd, data, size) != (ssize_t)size) {
        close(fd);
        return 0;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    lqa_parse_opts opts = {.max_text_node = 1u << 20, .max_depth = 256};
    lqa_err err;
    lqa_xml_parse_epub(path, &opts, fuzz_check_doc, NULL, &err);
    close(fd);
    return 0;
}
