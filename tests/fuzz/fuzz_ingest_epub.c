/* fuzz_ingest_epub.c: libFuzzer target for the EPUB reader (ingest/xml_epub.c: the zip
 * container through libarchive, container.xml, the OPF spine, each XHTML page). Documents must
 * hold their spans (fuzz_doc_check.h); a broken zip, OPF or page must be a clean error.
 *
 * Two input forms, so that mutations reach the pages and not only the container:
 * - bytes starting "PK": a zip, parsed as it is (seeds: real EPUBs, mk/fuzz.mk zips them). Most
 *   mutations of a deflated member break its CRC, so this form mostly exercises the container.
 * - bytes starting "@@ ": a member list, "@@ NAME\nCONTENT" pieces joined by newlines, which
 *   this target stores uncompressed in a zip, in order, before parsing: container.xml, the OPF
 *   and the pages are then mutated as text (seed: members.txt, from make_epub_seeds.sh).
 * Anything else is not an input of this target. */
#include <archive.h>
#include <archive_entry.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ingest/xml.h"
#include "tests/fuzz/fuzz_doc_check.h"

#define MEMBER_MARK "@@ "

/* The next member of a member list, from *p (at a mark) to end: its name and content (without
 * the newline before the next mark); advances *p to the next mark, or to end. */
static void next_member(const char **p, const char *end, const char **name, size_t *name_len, const char **body,
                        size_t *body_len) {
    const char *s = *p + strlen(MEMBER_MARK);
    const char *nl = memchr(s, '\n', (size_t)(end - s));
    *name = s;
    *name_len = (size_t)((nl ? nl : end) - s);
    *body = nl ? nl + 1 : end;
    const char *next = memmem(*body, (size_t)(end - *body), "\n" MEMBER_MARK, strlen("\n" MEMBER_MARK));
    *body_len = (size_t)((next ? next : end) - *body);
    *p = next ? next + 1 : end;
}

/* A member list stored into a zip in out (capacity cap); its size, or 0 when libarchive refuses
 * it (an unusable name): such inputs are not EPUBs this target can build. */
static size_t zip_members(const uint8_t *data, size_t size, uint8_t *out, size_t cap) {
    struct archive *a = archive_write_new();
    size_t used = 0;
    if (!a) return 0;
    int ok = archive_write_set_format_zip(a) == ARCHIVE_OK &&
             archive_write_set_options(a, "zip:compression=store") == ARCHIVE_OK &&
             archive_write_open_memory(a, out, cap, &used) == ARCHIVE_OK;
    const char *p = (const char *)data, *end = p + size;
    while (ok && p < end) {
        const char *name, *body;
        size_t name_len, body_len;
        next_member(&p, end, &name, &name_len, &body, &body_len);
        char path[256];
        if (name_len == 0 || name_len >= sizeof path || memchr(name, 0, name_len)) continue;
        memcpy(path, name, name_len);
        path[name_len] = 0;
        struct archive_entry *e = archive_entry_new();
        if (!e) break;
        archive_entry_set_pathname(e, path);
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_perm(e, 0644);
        archive_entry_set_size(e, (la_int64_t)body_len);
        ok = archive_write_header(a, e) == ARCHIVE_OK &&
             (body_len == 0 || archive_write_data(a, body, body_len) == (la_ssize_t)body_len);
        archive_entry_free(e);
    }
    ok = archive_write_close(a) == ARCHIVE_OK && ok;
    archive_write_free(a);
    return ok ? used : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *zip = NULL;
    if (!(size >= 2 && data[0] == 'P' && data[1] == 'K')) {
        if (size < strlen(MEMBER_MARK) || memcmp(data, MEMBER_MARK, strlen(MEMBER_MARK)) != 0) return 0;
        size_t members = 1;
        for (const uint8_t *m = data; (m = memmem(m, size - (size_t)(m - data), "\n" MEMBER_MARK, 4)); m++) members++;
        size_t cap = size + members * 1024 + 4096; /* per member: two headers, two names (< 256 B) */
        zip = malloc(cap);
        if (!zip) return 0;
        size = zip_members(data, size, zip, cap);
        data = zip;
    }
    int fd = size ? memfd_create("fuzz-epub", 0) : -1;
    if (fd >= 0 && write(fd, data, size) == (ssize_t)size) {
        char path[64];
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        lqa_parse_opts opts = {.max_text_node = 1u << 20, .max_depth = 256};
        lqa_err err;
        lqa_xml_parse_epub(path, &opts, fuzz_check_doc, NULL, &err);
    }
    if (fd >= 0) close(fd);
    free(zip);
    return 0;
}
