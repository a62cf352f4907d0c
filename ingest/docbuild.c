/* docbuild.c: the document builder (see docbuild.h): text cleaning (UTF-8 repair, whitespace
 * collapsing, NFC), lazy paragraph/line separators, sections by level, tables rendered one
 * line per row with exact cell spans, definitions, passages, abstract. */
#include "ingest/docbuild.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <utf8proc.h>

#define MAX_TABLE_COLS 256
#define MAX_ROWSPAN 1000

/* ---- cleaning -------------------------------------------------------------------------------- */

/* Decodes one UTF-8 sequence at s (n bytes left). Returns its length and the code point in *cp,
 * or 0 for an invalid sequence (overlong, surrogate, out of range, truncated). */
static size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp) {
    unsigned char c = s[0];
    if (c < 0x80) { *cp = c; return 1; }
    size_t len;
    uint32_t v, min;
    if (c >= 0xC2 && c <= 0xDF) len = 2, v = c & 0x1F, min = 0x80;
    else if (c >= 0xE0 && c <= 0xEF) len = 3, v = c & 0x0F, min = 0x800;
    else if (c >= 0xF0 && c <= 0xF4) len = 4, v = c & 0x07, min = 0x10000;
    else return 0;
    if (n < len) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
    *cp = v;
    return len;
}

/* Bytes an invalid sequence spans: a valid lead byte plus the continuation bytes that follow it
 * (a truncated sequence is one error), else the single bad byte. */
static size_t invalid_length(const unsigned char *s, size_t n) {
    size_t want = s[0] >= 0xC2 && s[0] <= 0xDF ? 2 : s[0] >= 0xE0 && s[0] <= 0xEF ? 3 : s[0] >= 0xF0 && s[0] <= 0xF4 ? 4 : 1;
    size_t i = 1;
    while (i < want && i < n && (s[i] & 0xC0) == 0x80) i++;
    return i;
}

static int is_space_cp(uint32_t cp) {
    return cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r' || cp == '\f' || cp == '\v' || cp == 0xA0 ||
           (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F ||
           cp == 0x3000;
}

/* Characters that carry nothing: C0/C1 controls, DEL, BOM / zero-width no-break space. */
static int is_dropped_cp(uint32_t cp) { return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F) || cp == 0xFEFF; }

/* Appends the cleaned content of s to out: no leading or trailing space, inner whitespace runs
 * as one space, invalid bytes as U+FFFD, then NFC. Reports whether s began/ended with
 * whitespace (so callers can keep word boundaries across chunks). */
static void clean_append(const char *s, size_t n, lqa_buf *out, int *lead_ws, int *trail_ws) {
    const unsigned char *u = (const unsigned char *)s;
    size_t start = out->len;
    int ascii = 1, space = 0, seen = 0;
    if (lead_ws) *lead_ws = 0;
    /* worst case: every byte invalid (3 bytes of U+FFFD each) */
    lqa_buf_reserve(out, 3 * n + 8);
    char *o = out->data + out->len;
    for (size_t i = 0; i < n;) {
        unsigned char c = u[i];
        if (c > 0x20 && c < 0x7F) { /* printable ASCII: the common case */
            if (space && seen) *o++ = ' ';
            space = 0;
            seen = 1;
            *o++ = (char)c;
            i++;
            continue;
        }
        uint32_t cp;
        size_t len = utf8_decode(u + i, n - i, &cp);
        const char *bytes = s + i;
        if (len == 0) { /* invalid: one U+FFFD per maximal bad subsequence (Unicode's advice) */
            cp = 0xFFFD;
            bytes = "\xEF\xBF\xBD";
            i += invalid_length(u + i, n - i);
            len = 3;
        } else {
            i += len;
        }
        if (is_space_cp(cp)) {
            if (!seen && lead_ws) *lead_ws = 1;
            space = 1;
            continue;
        }
        if (is_dropped_cp(cp)) continue;
        if (space && seen) *o++ = ' ';
        space = 0;
        seen = 1;
        if (cp >= 0x80) ascii = 0;
        memcpy(o, bytes, len);
        o += len;
    }
    out->len = (size_t)(o - out->data);
    out->data[out->len] = '\0';
    if (trail_ws) *trail_ws = space;
    if (ascii || out->len == start) return;
    utf8proc_uint8_t *nfc = NULL;
    utf8proc_ssize_t m = utf8proc_map((const utf8proc_uint8_t *)out->data + start, (utf8proc_ssize_t)(out->len - start),
                                      &nfc, UTF8PROC_STABLE | UTF8PROC_COMPOSE);
    if (m >= 0) { /* on failure (cannot happen for repaired UTF-8) the text stays as is */
        out->len = start;
        lqa_buf_append(out, nfc, (size_t)m);
    }
    free(nfc);
}

size_t lqa_utf8_repair(const char *s, size_t n, lqa_buf *out, size_t *first_bad) {
    const unsigned char *u = (const unsigned char *)s;
    size_t bad = 0, i = 0, copied = 0;
    while (i < n) {
        if (u[i] < 0x80) { /* fast path over ASCII, a word at a time (markup is mostly ASCII) */
            uint64_t w;
            while (i + 8 <= n && (memcpy(&w, u + i, 8), (w & 0x8080808080808080ull) == 0)) i += 8;
            if (i < n && u[i] < 0x80) i++;
            continue;
        }
        uint32_t cp;
        size_t len = utf8_decode(u + i, n - i, &cp);
        if (len) {
            i += len;
            continue;
        }
        if (bad++ == 0 && first_bad) *first_bad = i;
        size_t skip = invalid_length(u + i, n - i);
        if (out) {
            lqa_buf_append(out, s + copied, i - copied);
            lqa_buf_append(out, "\xEF\xBF\xBD", 3);
        }
        i += skip;
        copied = i;
    }
    if (out && bad) lqa_buf_append(out, s + copied, n - copied);
    return bad;
}

const char *lqa_db_clean(const char *s, size_t n, lqa_buf *out) {
    lqa_buf_clear(out);
    lqa_buf_reserve(out, 0);
    clean_append(s ? s : "", s ? n : 0, out, NULL, NULL);
    return out->data;
}

/* ---- text and separators --------------------------------------------------------------------- */

void lqa_db_init(lqa_docbuild *b, lqa_doc *doc) {
    memset(b, 0, sizeof *b);
    b->doc = doc;
    b->cap_sections = doc->n_sections;
    b->cap_tables = doc->n_tables;
    b->cap_defs = doc->n_defs;
    b->cap_passages = doc->n_passages;
}

static int trailing_newlines(const lqa_buf *t) {
    int k = 0;
    while (k < 2 && (size_t)k < t->len && t->data[t->len - 1 - k] == '\n') k++;
    return k;
}

/* Writes the pending separator (if text precedes) before new content. */
static void flush_separator(lqa_docbuild *b, int space) {
    lqa_buf *t = &b->doc->text;
    if (t->len > 0) {
        if (b->pending_break) {
            for (int k = trailing_newlines(t); k < b->pending_break; k++) lqa_buf_putc(t, '\n');
        } else if (space) {
            char last = t->data[t->len - 1];
            if (last != ' ' && last != '\n') lqa_buf_putc(t, ' ');
        }
    }
    b->pending_break = 0;
    b->pending_space = 0;
}

/* Appends already-clean bytes (no separators inside) as content. */
static void put_clean(lqa_docbuild *b, const char *s, size_t n) {
    if (n == 0) return;
    flush_separator(b, b->pending_space);
    lqa_buf_append(&b->doc->text, s, n);
}

void lqa_db_text(lqa_docbuild *b, const char *s, size_t n) {
    if (!s || n == 0) return;
    int lead, trail;
    lqa_buf_clear(&b->scratch);
    clean_append(s, n, &b->scratch, &lead, &trail);
    if (b->scratch.len == 0) {
        if (lead || trail) b->pending_space = 1;
        return;
    }
    flush_separator(b, b->pending_space || lead);
    lqa_buf_append(&b->doc->text, b->scratch.data, b->scratch.len);
    b->pending_space = trail;
}

void lqa_db_verbatim(lqa_docbuild *b, const char *s, size_t n) {
    if (!s || n == 0) return;
    flush_separator(b, b->pending_space);
    lqa_buf *t = &b->doc->text;
    size_t line = t->len;
    while (line > 0 && t->data[line - 1] != '\n') line--;
    for (size_t i = 0; i < n;) {
        if (s[i] == ' ' || s[i] == '\t') { /* whitespace as it was, tabs to the next multiple of 8 */
            size_t to = s[i] == '\t' ? ((t->len - line) / 8 + 1) * 8 : t->len - line + 1;
            while (t->len - line < to) lqa_buf_putc(t, ' ');
            i++;
            continue;
        }
        size_t j = i;
        while (j < n && s[j] != ' ' && s[j] != '\t') j++;
        lqa_buf_clear(&b->scratch);
        clean_append(s + i, j - i, &b->scratch, NULL, NULL); /* UTF-8 and NFC as everywhere */
        lqa_buf_append(t, b->scratch.data, b->scratch.len);
        i = j;
    }
    b->pending_space = 0;
}

void lqa_db_puts(lqa_docbuild *b, const char *s) { lqa_db_text(b, s, strlen(s)); }
void lqa_db_space(lqa_docbuild *b) { b->pending_space = 1; }
void lqa_db_para(lqa_docbuild *b) { b->pending_break = 2; }
void lqa_db_line(lqa_docbuild *b) {
    if (b->pending_break < 1) b->pending_break = 1;
}

size_t lqa_db_start(lqa_docbuild *b) {
    flush_separator(b, b->pending_space);
    return b->doc->text.len;
}

size_t lqa_db_end(const lqa_docbuild *b) {
    const lqa_buf *t = &b->doc->text;
    size_t end = t->len;
    while (end > 0 && (t->data[end - 1] == '\n' || t->data[end - 1] == ' ')) end--;
    return end;
}

lqa_span lqa_db_span_from(const lqa_docbuild *b, size_t start) {
    const lqa_buf *t = &b->doc->text;
    size_t end = lqa_db_end(b);
    while (start < end && (t->data[start] == '\n' || t->data[start] == ' ')) start++;
    return (lqa_span){start, end > start ? end : start};
}

/* ---- growable arrays in the doc ------------------------------------------------------------- */

#define GROW(arr, n, cap)                                                  \
    do {                                                                   \
        if ((n) >= (cap)) {                                                \
            (cap) = (cap) ? 2 * (cap) : 16;                                \
            (arr) = lqa_realloc((arr), (size_t)(cap) * sizeof *(arr));     \
        }                                                                  \
    } while (0)

/* ---- sections -------------------------------------------------------------------------------- */

int lqa_db_current_section(const lqa_docbuild *b) { return b->n_open ? b->open[b->n_open - 1] : -1; }

int lqa_db_current_level(const lqa_docbuild *b) {
    return b->n_open ? b->doc->sections[b->open[b->n_open - 1]].level : 0;
}

void lqa_db_close_sections(lqa_docbuild *b, int level) {
    size_t end = lqa_db_end(b);
    while (b->n_open > 0) {
        lqa_section *s = &b->doc->sections[b->open[b->n_open - 1]];
        if (s->level < level) break;
        s->span.end = end > s->span.start ? end : s->span.start;
        b->n_open--;
    }
}

int lqa_db_section(lqa_docbuild *b, int level, const char *title, size_t n) {
    if (level < 1) level = 1;
    if (level > LQA_DB_MAX_LEVELS) level = LQA_DB_MAX_LEVELS;
    lqa_buf_clear(&b->scratch);
    clean_append(title ? title : "", title ? n : 0, &b->scratch, NULL, NULL);
    if (b->scratch.len == 0) return -1;
    lqa_db_close_sections(b, level);
    lqa_db_para(b);
    lqa_doc *d = b->doc;
    GROW(d->sections, d->n_sections, b->cap_sections);
    lqa_section *s = &d->sections[d->n_sections];
    s->level = level;
    s->parent = lqa_db_current_section(b);
    s->title = lqa_strndup(b->scratch.data, b->scratch.len);
    s->span.start = lqa_db_start(b);
    lqa_buf_append(&d->text, b->scratch.data, b->scratch.len);
    s->span.end = d->text.len;
    lqa_db_para(b);
    b->open[b->n_open++] = d->n_sections; /* levels strictly increase up the stack: fits */
    if (!d->title && level == 1) d->title = lqa_strdup(s->title);
    return d->n_sections++;
}

/* ---- tables ---------------------------------------------------------------------------------- */

typedef struct {
    char **cells;       /* cap slots, NULL where missing */
    unsigned char *cont;/* 1 where the slot continues the cell to its left (colspan) */
    int n, cap;         /* slots used (1 + last filled column), allocated */
} table_row;

struct lqa_db_table {
    char *caption;
    table_row *rows;
    int n_rows, cap_rows;
    int carry_left[MAX_TABLE_COLS]; /* rows still covered by a rowspan from above */
    char *carry_text[MAX_TABLE_COLS];
    int col;            /* next slot in the current row */
    int no_header;      /* row 0 is data: the parser saw no header row */
};

void lqa_db_table_begin(lqa_docbuild *b, const char *caption, size_t caption_len) {
    if (b->table) return; /* nested tables are flattened by the parsers; ignore a stray begin */
    lqa_db_table *t = lqa_calloc(1, sizeof *t);
    if (caption && caption_len) {
        lqa_buf c = {0};
        lqa_db_clean(caption, caption_len, &c);
        if (c.len) t->caption = lqa_buf_steal(&c);
        lqa_buf_free(&c);
    }
    b->table = t;
}

void lqa_db_table_no_header(lqa_docbuild *b) {
    if (b->table) b->table->no_header = 1;
}

void lqa_db_table_caption(lqa_docbuild *b, const char *caption, size_t n) {
    if (!b->table || b->table->caption || !caption) return;
    lqa_buf c = {0};
    lqa_db_clean(caption, n, &c);
    if (c.len) b->table->caption = lqa_buf_steal(&c);
    lqa_buf_free(&c);
}

static void row_put(table_row *r, int col, const char *text, int cont) {
    if (col >= r->cap) {
        int cap = r->cap ? r->cap : 8;
        while (cap <= col) cap *= 2;
        r->cells = lqa_realloc(r->cells, (size_t)cap * sizeof *r->cells);
        r->cont = lqa_realloc(r->cont, (size_t)cap);
        memset(r->cells + r->cap, 0, (size_t)(cap - r->cap) * sizeof *r->cells);
        memset(r->cont + r->cap, 0, (size_t)(cap - r->cap));
        r->cap = cap;
    }
    free(r->cells[col]);
    r->cells[col] = lqa_strdup(text);
    r->cont[col] = (unsigned char)cont;
    if (col + 1 > r->n) r->n = col + 1;
}

/* Fills slots of the current row covered by rowspans from above. */
static void fill_carried(lqa_db_table *t) {
    table_row *r = &t->rows[t->n_rows - 1];
    while (t->col < MAX_TABLE_COLS && t->carry_left[t->col] > 0) {
        row_put(r, t->col, t->carry_text[t->col], 0);
        if (--t->carry_left[t->col] == 0) {
            free(t->carry_text[t->col]);
            t->carry_text[t->col] = NULL;
        }
        t->col++;
    }
}

static void finish_row(lqa_db_table *t) {
    if (t->n_rows == 0) return;
    /* rowspans that reach past the last given cell still cover their columns */
    for (int c = t->col; c < MAX_TABLE_COLS; c++) {
        if (t->carry_left[c] > 0) {
            t->col = c;
            fill_carried(t);
            c = t->col - 1;
        }
    }
}

void lqa_db_table_row(lqa_docbuild *b) {
    lqa_db_table *t = b->table;
    if (!t) return;
    finish_row(t);
    GROW(t->rows, t->n_rows, t->cap_rows);
    table_row *r = &t->rows[t->n_rows++];
    memset(r, 0, sizeof *r);
    t->col = 0;
    fill_carried(t);
}

void lqa_db_table_cell(lqa_docbuild *b, const char *text, size_t n, int colspan, int rowspan) {
    lqa_db_table *t = b->table;
    if (!t) return;
    if (t->n_rows == 0) lqa_db_table_row(b);
    fill_carried(t);
    if (t->col >= MAX_TABLE_COLS) return; /* absurdly wide: extra cells dropped */
    if (colspan < 1) colspan = 1;
    if (rowspan < 1) rowspan = 1;
    if (rowspan > MAX_ROWSPAN) rowspan = MAX_ROWSPAN;
    lqa_db_clean(text, n, &b->scratch);
    table_row *r = &t->rows[t->n_rows - 1];
    for (int k = 0; k < colspan && t->col < MAX_TABLE_COLS; k++, t->col++) {
        row_put(r, t->col, b->scratch.data, k > 0);
        if (rowspan > 1 && t->carry_left[t->col] == 0) {
            t->carry_left[t->col] = rowspan - 1;
            t->carry_text[t->col] = lqa_strdup(b->scratch.data);
        }
    }
}

static void free_table_state(lqa_db_table *t) {
    for (int i = 0; i < t->n_rows; i++) {
        for (int c = 0; c < t->rows[i].n; c++) free(t->rows[i].cells[c]);
        free(t->rows[i].cells);
        free(t->rows[i].cont);
    }
    for (int c = 0; c < MAX_TABLE_COLS; c++) free(t->carry_text[c]);
    free(t->rows);
    free(t->caption);
    free(t);
}

static int row_is_empty(const table_row *r) {
    for (int c = 0; c < r->n; c++)
        if (r->cells[c] && r->cells[c][0]) return 0;
    return 1;
}

/* Columns empty in every row (layout tables: an admonition's icon column) carry nothing. */
static void drop_empty_columns(lqa_db_table *t) {
    int width = 0;
    for (int i = 0; i < t->n_rows; i++)
        if (t->rows[i].n > width) width = t->rows[i].n;
    for (int c = width - 1; c >= 0; c--) {
        int used = 0;
        for (int i = 0; i < t->n_rows && !used; i++) {
            table_row *r = &t->rows[i];
            if (c < r->n && r->cells[c] && r->cells[c][0]) used = 1;
        }
        if (used) continue;
        for (int i = 0; i < t->n_rows; i++) {
            table_row *r = &t->rows[i];
            if (c >= r->n) continue;
            int was_cont = r->cont[c];
            free(r->cells[c]);
            memmove(r->cells + c, r->cells + c + 1, (size_t)(r->n - c - 1) * sizeof *r->cells);
            memmove(r->cont + c, r->cont + c + 1, (size_t)(r->n - c - 1));
            r->n--;
            r->cells[r->n] = NULL;
            r->cont[r->n] = 0;
            /* A slot that continued the dropped one lost its head (an empty colspan cell whose
             * last column is used by other rows): it starts a cell of its own, or it would
             * continue, and take the span of, whatever cell now stands on its left. */
            if (c < r->n && !was_cont) r->cont[c] = 0;
        }
    }
}

/* Writes one row as "a | b | c", recording spans of its cells at out row index. */
static void render_row(lqa_docbuild *b, const table_row *r, int n_cols, lqa_table *out, int row) {
    lqa_buf *text = &b->doc->text;
    lqa_db_line(b);
    lqa_db_start(b);
    for (int c = 0; c < n_cols; c++) {
        const char *cell = c < r->n && r->cells[c] ? r->cells[c] : "";
        size_t idx = (size_t)row * n_cols + c;
        out->cells[idx] = lqa_strdup(cell);
        if (c < r->n && r->cont[c]) {
            out->cell_spans[idx] = out->cell_spans[idx - 1];
            continue;
        }
        if (c > 0) lqa_buf_puts(text, " | ");
        size_t start = text->len;
        lqa_buf_puts(text, cell);
        out->cell_spans[idx] = cell[0] ? (lqa_span){start, text->len} : (lqa_span){0, 0};
    }
}

int lqa_db_table_end(lqa_docbuild *b) {
    lqa_db_table *t = b->table;
    if (!t) return -1;
    finish_row(t);
    b->table = NULL;
    drop_empty_columns(t);
    int n_cols = 0, n_rows = 0;
    for (int i = 0; i < t->n_rows; i++) {
        if (row_is_empty(&t->rows[i])) continue;
        n_rows++;
        if (t->rows[i].n > n_cols) n_cols = t->rows[i].n;
    }
    if (n_rows == 0) {
        free_table_state(t);
        return -1;
    }
    lqa_doc *d = b->doc;
    GROW(d->tables, d->n_tables, b->cap_tables);
    lqa_table *out = &d->tables[d->n_tables];
    out->caption = t->caption;
    t->caption = NULL;
    out->n_rows = n_rows;
    out->n_cols = n_cols;
    out->cells = lqa_calloc((size_t)n_rows * n_cols, sizeof *out->cells);
    out->cell_spans = lqa_calloc((size_t)n_rows * n_cols, sizeof *out->cell_spans);
    out->section = lqa_db_current_section(b);
    out->no_header = t->no_header;
    lqa_db_para(b);
    if (out->caption) put_clean(b, out->caption, strlen(out->caption));
    int row = 0;
    for (int i = 0; i < t->n_rows; i++) {
        if (row_is_empty(&t->rows[i])) continue;
        render_row(b, &t->rows[i], n_cols, out, row++);
    }
    lqa_db_para(b);
    free_table_state(t);
    return d->n_tables++;
}

/* ---- definitions, passages, abstract, title -------------------------------------------------- */

int lqa_db_definition(lqa_docbuild *b, const char *term, size_t term_len, lqa_span term_span, lqa_span def_span) {
    if (def_span.end <= def_span.start) return -1;
    lqa_db_clean(term, term_len, &b->scratch);
    if (b->scratch.len == 0) return -1;
    lqa_doc *d = b->doc;
    GROW(d->defs, d->n_defs, b->cap_defs);
    lqa_definition *df = &d->defs[d->n_defs];
    df->term = lqa_strndup(b->scratch.data, b->scratch.len);
    df->term_span = term_span;
    df->def_span = def_span;
    df->section = lqa_db_current_section(b);
    return d->n_defs++;
}

int lqa_db_passage(lqa_docbuild *b, const char *label, lqa_span span) {
    if (span.end <= span.start || !label || !label[0]) return -1;
    lqa_doc *d = b->doc;
    GROW(d->passages, d->n_passages, b->cap_passages);
    d->passages[d->n_passages].label = lqa_strdup(label);
    d->passages[d->n_passages].span = span;
    return d->n_passages++;
}

void lqa_db_abstract(lqa_docbuild *b, lqa_span span) {
    if (span.end <= span.start || b->doc->abstract.end > b->doc->abstract.start) return;
    b->doc->abstract = span;
}

void lqa_db_title(lqa_docbuild *b, const char *title, size_t n) {
    if (b->doc->title || !title) return;
    lqa_buf c = {0};
    lqa_db_clean(title, n, &c);
    if (c.len) b->doc->title = lqa_buf_steal(&c);
    lqa_buf_free(&c);
}

void lqa_db_finish(lqa_docbuild *b) {
    if (b->table) lqa_db_table_end(b);
    lqa_db_close_sections(b, 1);
    lqa_buf *t = &b->doc->text;
    t->len = lqa_db_end(b);
    lqa_buf_reserve(t, 0);
    t->data[t->len] = '\0';
    lqa_buf_free(&b->scratch);
}

/* ---- numbered headings ----------------------------------------------------------------------- */

static const char *const label_words[] = {"Chapter", "Section", "Part", "Appendix", "Article", "Rule", NULL};

/* Parses "N(.N)*" (components of 1-3 digits, or a single capital letter first) at s; returns
 * its length or 0. */
static size_t number_token(const char *s, int allow_letter_alone) {
    size_t i = 0;
    int comps = 0, letter = 0;
    if (isupper((unsigned char)s[0]) && !isalpha((unsigned char)s[1])) {
        letter = 1, i = 1, comps = 1;
    } else {
        size_t d = 0;
        while (isdigit((unsigned char)s[i + d])) d++;
        if (d == 0 || d > 3) return 0;
        i = d, comps = 1;
    }
    while (s[i] == '.' && isdigit((unsigned char)s[i + 1])) {
        size_t d = 0;
        while (isdigit((unsigned char)s[i + 1 + d])) d++;
        if (d > 3) return 0;
        i += 1 + d;
        comps++;
    }
    if (letter && comps == 1 && !allow_letter_alone) return 0;
    return i;
}

int lqa_db_heading_label(const char *title, char *label, size_t cap) {
    if (!title || cap == 0) return 0;
    const char *s = title;
    size_t word_len = 0;
    for (int w = 0; label_words[w]; w++) {
        size_t n = strlen(label_words[w]);
        if (strncasecmp(s, label_words[w], n) == 0 && s[n] == ' ') {
            word_len = n;
            break;
        }
    }
    const char *num = word_len ? s + word_len + 1 : s;
    size_t nl = number_token(num, word_len > 0);
    if (nl == 0) return 0;
    const char *after = num + nl;
    if (*after == '.' || *after == ':') after++;
    if (*after != '\0' && *after != ' ') return 0;
    if (!word_len && *after == '\0') return 0; /* a bare number is not a numbered heading */
    size_t total = (size_t)(num + nl - s);
    if (total + 1 > cap) return 0;
    memcpy(label, s, total);
    label[total] = '\0';
    return 1;
}

void lqa_db_number_passages(lqa_docbuild *b) {
    lqa_doc *d = b->doc;
    char label[128];
    for (int i = 0; i < d->n_sections; i++) {
        lqa_section *s = &d->sections[i];
        if (!lqa_db_heading_label(s->title, label, sizeof label)) continue;
        size_t body = s->span.start + strlen(s->title);
        while (body < s->span.end && d->text.data[body] == '\n') body++;
        if (body >= s->span.end) continue;
        size_t limit = s->span.end;
        if (i + 1 < d->n_sections && d->sections[i + 1].span.start < limit &&
            d->sections[i + 1].span.start >= body)
            limit = d->sections[i + 1].span.start;
        const char *para = strstr(d->text.data + body, "\n\n");
        size_t end = para ? (size_t)(para - d->text.data) : d->text.len;
        if (end > limit) end = limit;
        while (end > body && (d->text.data[end - 1] == '\n' || d->text.data[end - 1] == ' ')) end--;
        if (end <= body) continue; /* the section starts straight with a subsection */
        lqa_db_passage(b, label, (lqa_span){body, end});
    }
}
