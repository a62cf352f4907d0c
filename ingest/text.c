/* text.c: plain text and Markdown/reST into one lqa_doc (see text.h), line by line through the
 * document builder. What it recognises, in the order each line is tried:
 *  - fenced code (Markdown ``` / ~~~): kept as lines;
 *  - verse lines "Ge1:1 text" / "Genesis 1:1 text" (Debian's `bible -f` output; a document is in
 *    verse mode when most of its lines are verses): book -> level-1 section, chapter -> level-2
 *    section, each verse a paragraph "C:V text" and a passage labelled "Genesis 1:1";
 *  - ATX headings (Markdown `#`), setext/reST underlined (and overlined) headings, levels by
 *    order of first appearance of each underline style as reST defines them;
 *  - Markdown pipe tables (a header row, a delimiter row |---|:--:|, body rows);
 *  - ":term: definition" entries (reST field lists, the Jargon File's entries: the definition runs
 *    until the next entry or heading) and "term\n    indented definition" entries;
 *  - standalone numbered or keyword headings ("1.2.3 Title", "Chapter 4", "Appendix A. X"), and,
 *    when the body is indented (the Jargon File), outdented standalone lines as headings;
 *  - everything else: paragraphs separated by blank lines (list items on their own lines).
 * Numbered headings also become labelled passages (lqa_db_number_passages). */
#include "ingest/text.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/buf.h"
#include "ingest/docbuild.h"

typedef struct text_line {
    const char *s;  /* content after the indentation */
    size_t n;       /* bytes of content (trailing whitespace and \r removed) */
    int indent;     /* columns of leading whitespace (tab = 4) */
} text_line;

typedef struct text_parser {
    const char *path;
    int markdown;
    text_line *lines;
    long n_lines;
    lqa_docbuild b;
    int para_open;           /* text was written since the last paragraph break */
    int base_indent;         /* most common indentation of body lines */
    int outdent_headings;    /* body indented: lines left of it are headings */
    int verse_mode;
    int has_atx;             /* Markdown with '#' headings: setext levels are fixed (= 1, - 2) */
    char underline_styles[16]; /* reST: order of first appearance gives the level */
    int n_styles;
    int keyword_level;       /* level of the last keyword heading (Part/Chapter), 0 if none */
    int part_seen;
    char book[64];           /* verse mode: current book and chapter */
    long chapter;
    lqa_buf scratch;
    lqa_buf heading_buf;
} text_parser;

/* ---- lines ----------------------------------------------------------------------------------- */

static text_line *split_lines(const char *data, size_t len, long *n_out) {
    long cap = 1024, n = 0;
    text_line *lines = lqa_malloc((size_t)cap * sizeof *lines);
    size_t i = 0;
    while (i < len) {
        const char *nl = memchr(data + i, '\n', len - i);
        size_t end = nl ? (size_t)(nl - data) : len;
        size_t k = i;
        int indent = 0;
        while (k < end && (data[k] == ' ' || data[k] == '\t')) indent += data[k++] == '\t' ? 4 : 1;
        size_t e = end;
        while (e > k && (data[e - 1] == ' ' || data[e - 1] == '\t' || data[e - 1] == '\r')) e--;
        if (n == cap) lines = lqa_realloc(lines, (size_t)(cap *= 2) * sizeof *lines);
        lines[n++] = (text_line){data + k, e - k, indent};
        i = end + 1;
    }
    *n_out = n;
    return lines;
}

static int blank(const text_line *l) { return l->n == 0; }

static int starts_with(const text_line *l, const char *p) {
    size_t m = strlen(p);
    return l->n >= m && memcmp(l->s, p, m) == 0;
}

/* ---- verses ------------------------------------------------------------------------------------ */

static const char *const bible_books[66][2] = {
    {"Ge", "Genesis"}, {"Exo", "Exodus"}, {"Lev", "Leviticus"}, {"Num", "Numbers"}, {"Deu", "Deuteronomy"},
    {"Josh", "Joshua"}, {"Jdgs", "Judges"}, {"Ruth", "Ruth"}, {"1Sm", "1 Samuel"}, {"2Sm", "2 Samuel"},
    {"1Ki", "1 Kings"}, {"2Ki", "2 Kings"}, {"1Chr", "1 Chronicles"}, {"2Chr", "2 Chronicles"}, {"Ezra", "Ezra"},
    {"Neh", "Nehemiah"}, {"Est", "Esther"}, {"Job", "Job"}, {"Psa", "Psalms"}, {"Prv", "Proverbs"},
    {"Eccl", "Ecclesiastes"}, {"SSol", "Song of Solomon"}, {"Isa", "Isaiah"}, {"Jer", "Jeremiah"},
    {"Lam", "Lamentations"}, {"Eze", "Ezekiel"}, {"Dan", "Daniel"}, {"Hos", "Hosea"}, {"Joel", "Joel"},
    {"Amos", "Amos"}, {"Obad", "Obadiah"}, {"Jonah", "Jonah"}, {"Mic", "Micah"}, {"Nahum", "Nahum"},
    {"Hab", "Habakkuk"}, {"Zep", "Zephaniah"}, {"Hag", "Haggai"}, {"Zec", "Zechariah"}, {"Mal", "Malachi"},
    {"Mat", "Matthew"}, {"Mark", "Mark"}, {"Luke", "Luke"}, {"John", "John"}, {"Acts", "Acts"}, {"Rom", "Romans"},
    {"1Cor", "1 Corinthians"}, {"2Cor", "2 Corinthians"}, {"Gal", "Galatians"}, {"Eph", "Ephesians"},
    {"Phi", "Philippians"}, {"Col", "Colossians"}, {"1Th", "1 Thessalonians"}, {"2Th", "2 Thessalonians"},
    {"1Tim", "1 Timothy"}, {"2Tim", "2 Timothy"}, {"Titus", "Titus"}, {"Phmn", "Philemon"}, {"Heb", "Hebrews"},
    {"Jas", "James"}, {"1Pet", "1 Peter"}, {"2Pet", "2 Peter"}, {"1Jn", "1 John"}, {"2Jn", "2 John"},
    {"3Jn", "3 John"}, {"Jude", "Jude"}, {"Rev", "Revelation"}};

/* The full book name for an abbreviation (as `bible -f` writes it) or a full name, else NULL. */
static const char *book_name(const char *s, size_t n) {
    for (int i = 0; i < 66; i++)
        for (int k = 0; k < 2; k++)
            if (strlen(bible_books[i][k]) == n && memcmp(bible_books[i][k], s, n) == 0) return bible_books[i][1];
    return NULL;
}

typedef struct verse {
    const char *book;
    long chapter, verse;
    size_t text_off; /* offset of the verse text in the line */
} verse;

/* "Ge1:1 In the beginning", "Genesis 1:1 In the beginning", "Song of Solomon 2:3 As the". */
static int parse_verse(const text_line *l, verse *v) {
    size_t lim = l->n < 40 ? l->n : 40;
    const char *colon = memchr(l->s, ':', lim);
    if (!colon || colon == l->s) return 0;
    size_t c = (size_t)(colon - l->s), ce = c;
    while (c > 0 && isdigit((unsigned char)l->s[c - 1])) c--;
    if (c == ce || c == 0) return 0;
    size_t book_end = c;
    while (book_end > 0 && l->s[book_end - 1] == ' ') book_end--;
    size_t k = ce + 1, vs = k;
    while (k < l->n && isdigit((unsigned char)l->s[k])) k++;
    if (k == vs || k >= l->n || l->s[k] != ' ') return 0;
    v->book = book_name(l->s, book_end);
    if (!v->book) return 0;
    v->chapter = strtol(l->s + c, NULL, 10);
    v->verse = strtol(l->s + vs, NULL, 10);
    while (k < l->n && l->s[k] == ' ') k++;
    v->text_off = k;
    return k < l->n;
}

static void emit_verse(text_parser *p, const text_line *l, const verse *v) {
    if (strcmp(p->book, v->book) != 0) {
        snprintf(p->book, sizeof p->book, "%s", v->book);
        lqa_db_section(&p->b, 1, v->book, strlen(v->book));
        p->chapter = -1;
    }
    char label[96];
    if (v->chapter != p->chapter) {
        p->chapter = v->chapter;
        snprintf(label, sizeof label, "%s %ld", v->book, v->chapter);
        lqa_db_section(&p->b, 2, label, strlen(label));
    }
    char ref[32];
    snprintf(ref, sizeof ref, "%ld:%ld ", v->chapter, v->verse);
    lqa_db_para(&p->b);
    lqa_db_puts(&p->b, ref);
    lqa_db_space(&p->b);
    lqa_span span = {lqa_db_start(&p->b), 0};
    lqa_db_text(&p->b, l->s + v->text_off, l->n - v->text_off);
    span.end = lqa_db_end(&p->b);
    snprintf(label, sizeof label, "%s %ld:%ld", v->book, v->chapter, v->verse);
    lqa_db_passage(&p->b, label, span);
    lqa_db_para(&p->b);
    p->para_open = 0;
}

/* ---- headings ---------------------------------------------------------------------------------- */

/* A line of one repeated punctuation character, 3 or more long (reST adornment / setext). */
static char underline_char(const text_line *l) {
    if (l->n < 3 || !strchr("=-~^*+#\"'`:._", l->s[0])) return 0;
    for (size_t i = 1; i < l->n; i++)
        if (l->s[i] != l->s[0]) return 0;
    return l->s[0];
}

static int style_level(text_parser *p, char style) {
    for (int i = 0; i < p->n_styles; i++)
        if (p->underline_styles[i] == style) return i + 1;
    if (p->n_styles < (int)sizeof p->underline_styles) p->underline_styles[p->n_styles++] = style;
    return p->n_styles;
}

static void close_para(text_parser *p) {
    lqa_db_para(&p->b);
    p->para_open = 0;
}

static void strip_inline(const char *s, size_t n, lqa_buf *out);

static void heading(text_parser *p, int level, const char *s, size_t n) {
    close_para(p);
    if (p->markdown) { /* "Class: `FileHandle`" titles the section "Class: FileHandle" */
        strip_inline(s, n, &p->heading_buf);
        s = p->heading_buf.data ? p->heading_buf.data : "";
        n = p->heading_buf.len;
    }
    if (level < 1) level = 1;
    if (level >= LQA_DB_MAX_LEVELS) level = LQA_DB_MAX_LEVELS - 1;
    lqa_db_section(&p->b, level, s, n);
    lqa_db_title(&p->b, s, n);
}

/* "## Title ##" -> level 2; returns 0 when not an ATX heading. */
static int atx_heading(text_parser *p, const text_line *l) {
    if (!p->markdown || l->indent > 3 || l->n == 0 || l->s[0] != '#') return 0;
    size_t k = 0;
    while (k < l->n && l->s[k] == '#') k++;
    if (k > 6 || (k < l->n && l->s[k] != ' ')) return 0;
    size_t e = l->n;
    while (e > k && l->s[e - 1] == '#') e--;
    heading(p, (int)k, l->s + k, e - k);
    return 1;
}

/* Setext/reST: "Title\n=====" or "=====\nTitle\n=====". Returns the lines consumed. */
static int underlined_heading(text_parser *p, long i) {
    const text_line *l = &p->lines[i];
    if (p->para_open || i + 1 >= p->n_lines) return 0;
    char over = underline_char(l);
    if (over && i + 2 < p->n_lines && !blank(&p->lines[i + 1]) && underline_char(&p->lines[i + 2]) == over &&
        p->lines[i + 1].n <= 200) {
        heading(p, style_level(p, (char)(over | 0x80)), p->lines[i + 1].s, p->lines[i + 1].n);
        return 3;
    }
    char under = underline_char(&p->lines[i + 1]);
    if (!under || over || l->n > 200 || blank(l)) return 0;
    /* reST wants the underline at least as long as the title; Markdown takes any length, but a
     * short '-' line under text in plain text is more likely a rule than a heading */
    if (!p->markdown && p->lines[i + 1].n + 2 < l->n) return 0;
    int level = p->has_atx && (under == '=' || under == '-') ? (under == '=' ? 1 : 2) : style_level(p, under);
    heading(p, level, l->s, l->n);
    return 2;
}

static int is_roman(const char *s, size_t n) {
    if (n == 0 || n > 6) return 0;
    for (size_t i = 0; i < n; i++)
        if (!strchr("IVXLC", s[i])) return 0;
    return 1;
}

/* Keyword headings: "Chapter 4", "CHAPTER IV. The Storm", "Appendix A. Folklore", "Part II". */
static int keyword_heading_level(text_parser *p, const text_line *l) {
    static const struct { const char *word; int kind; } words[] = {
        {"Part ", 0}, {"PART ", 0}, {"Book ", 0}, {"BOOK ", 0}, {"Chapter ", 1}, {"CHAPTER ", 1},
        {"Appendix ", 1}, {"APPENDIX ", 1}, {"Section ", 2}, {"SECTION ", 2}, {NULL, 0}};
    for (int w = 0; words[w].word; w++) {
        if (!starts_with(l, words[w].word)) continue;
        const char *s = l->s + strlen(words[w].word);
        size_t n = l->n - strlen(words[w].word), k = 0;
        while (k < n && (isalnum((unsigned char)s[k]))) k++;
        int numbered = k > 0 && (isdigit((unsigned char)s[0]) || is_roman(s, k) || (k == 1 && isupper((unsigned char)s[0])));
        if (!numbered || (k < n && !strchr(".: ", s[k]))) return 0;
        if (words[w].kind == 0) return p->part_seen = 1;
        if (words[w].kind == 1) return 1 + p->part_seen;
        return (p->keyword_level ? p->keyword_level : 1) + 1;
    }
    return 0;
}

/* "1.2.3 Title" or "4. Title": the number of components, else 0. */
static int numbered_heading_depth(const text_line *l) {
    size_t k = 0;
    int depth = 0;
    while (k < l->n && isdigit((unsigned char)l->s[k])) {
        while (k < l->n && isdigit((unsigned char)l->s[k])) k++;
        depth++;
        if (k < l->n && l->s[k] == '.') k++;
        else break;
    }
    if (depth == 0 || depth > 8 || k >= l->n || l->s[k] != ' ') return 0;
    while (k < l->n && l->s[k] == ' ') k++;
    /* a title starts with a capital and does not read as a sentence */
    if (k >= l->n || !isupper((unsigned char)l->s[k]) || strchr(".,;:", l->s[l->n - 1])) return 0;
    return depth;
}

static int standalone(const text_parser *p, long i) {
    return (i == 0 || blank(&p->lines[i - 1])) && (i + 1 >= p->n_lines || blank(&p->lines[i + 1]));
}

static int structural_heading(text_parser *p, long i) {
    const text_line *l = &p->lines[i];
    if (l->n > 100 || !standalone(p, i)) return 0;
    int outdented = p->outdent_headings && l->indent < p->base_indent;
    /* in an indented body only outdented lines are headings (indented ones are a contents list) */
    if (!outdented && (p->markdown || p->outdent_headings || l->indent > 3)) return 0;
    /* match on the cleaned line: headings often hold NBSPs ("Chapter\u00a04.\u00a0Title") */
    lqa_db_clean(l->s, l->n, &p->scratch);
    text_line clean = {p->scratch.data, p->scratch.len, l->indent};
    int level = keyword_heading_level(p, &clean);
    if (level) {
        p->keyword_level = level;
    } else {
        int depth = numbered_heading_depth(&clean);
        if (depth) level = p->keyword_level ? p->keyword_level + (depth > 1 ? depth - 1 : 1) : depth;
        else if (outdented && (unsigned char)l->s[0] < 0xe2) level = p->keyword_level + 1; /* not box drawing */
        else return 0;
    }
    heading(p, level, l->s, l->n);
    return 1;
}

/* ---- tables ------------------------------------------------------------------------------------ */

static int is_delimiter_row(const text_line *l) {
    if (l->n < 3 || !memchr(l->s, '-', l->n) || !memchr(l->s, '|', l->n)) return 0;
    for (size_t i = 0; i < l->n; i++)
        if (!strchr("|-: ", l->s[i])) return 0;
    return 1;
}

/* Emits the cells of "| a | b |" (outer pipes optional, "\|" escapes a pipe; inline markup
 * dropped as in paragraphs). */
static void table_row(text_parser *p, const text_line *l) {
    lqa_db_table_row(&p->b);
    lqa_buf cell = {0};
    size_t i = 0, n = l->n;
    if (i < n && l->s[i] == '|') i++;
    if (n > i && l->s[n - 1] == '|' && (n < 2 || l->s[n - 2] != '\\')) n--;
    lqa_buf_reserve(&cell, 0);
    for (; i <= n; i++) {
        if (i == n || (l->s[i] == '|')) {
            strip_inline(cell.data, cell.len, &p->scratch);
            lqa_db_table_cell(&p->b, p->scratch.data ? p->scratch.data : "", p->scratch.len, 1, 1);
            lqa_buf_clear(&cell);
            continue;
        }
        if (l->s[i] == '\\' && i + 1 < n && l->s[i + 1] == '|') i++;
        lqa_buf_putc(&cell, l->s[i]);
    }
    lqa_buf_free(&cell);
}

static long pipe_table(text_parser *p, long i) {
    if (!p->markdown || i + 1 >= p->n_lines || !memchr(p->lines[i].s, '|', p->lines[i].n) ||
        !is_delimiter_row(&p->lines[i + 1]))
        return 0;
    close_para(p);
    lqa_db_table_begin(&p->b, NULL, 0);
    table_row(p, &p->lines[i]);
    long k = i + 2;
    while (k < p->n_lines && !blank(&p->lines[k]) && memchr(p->lines[k].s, '|', p->lines[k].n))
        table_row(p, &p->lines[k++]);
    lqa_db_table_end(&p->b);
    lqa_db_para(&p->b);
    return k - i;
}

/* ---- definitions --------------------------------------------------------------------------------- */

/* ":term: rest" -> term length (term starts at s+1), else 0. */
static size_t field_term(const text_line *l) {
    if (l->n < 3 || l->s[0] != ':' || l->s[1] == ' ' || l->s[1] == ':') return 0;
    const char *end = memchr(l->s + 1, ':', l->n - 1 < 100 ? l->n - 1 : 100);
    /* the closing colon is followed by a space or the end of the line ("::" in "a::b" is not) */
    while (end && end + 1 < l->s + l->n && end[1] != ' ') {
        size_t off = (size_t)(end - l->s) + 1;
        end = off < l->n ? memchr(l->s + off, ':', (l->n - off) < 100 ? l->n - off : 100) : NULL;
    }
    if (!end || end[-1] == ' ') return 0;
    return (size_t)(end - l->s) - 1;
}

/* Lines of a definition body after line i: through blank lines while the next text is indented
 * at least `min_indent` and is not a new entry or heading. Returns the index after the body. */
static long definition_end(const text_parser *p, long i, int min_indent) {
    long k = i + 1, last = i;
    while (k < p->n_lines) {
        const text_line *l = &p->lines[k];
        if (blank(l)) {
            k++;
            continue;
        }
        if (l->indent < min_indent || field_term(l) ||
            (k + 1 < p->n_lines && underline_char(&p->lines[k + 1]) && !underline_char(l)))
            break;
        last = k++;
    }
    return last + 1;
}

/* Writes lines [from, to) as paragraphs (blank lines separate them); returns where the first
 * text went, or (size_t)-1 when there was none. */
static size_t write_body(text_parser *p, long from, long to) {
    size_t first = (size_t)-1;
    for (long k = from; k < to; k++) {
        if (blank(&p->lines[k])) {
            lqa_db_para(&p->b);
            continue;
        }
        lqa_db_space(&p->b);
        if (first == (size_t)-1) first = lqa_db_start(&p->b);
        lqa_db_text(&p->b, p->lines[k].s, p->lines[k].n);
    }
    return first;
}

/* Renders "term: definition" (the definition may run over several paragraphs) and records it. */
static void record_definition(text_parser *p, const char *term, size_t term_len, long body_from, long body_to,
                              const char *rest, size_t rest_len) {
    close_para(p);
    lqa_span ts = {lqa_db_start(&p->b), 0};
    lqa_db_text(&p->b, term, term_len);
    ts.end = lqa_db_end(&p->b);
    lqa_db_puts(&p->b, ":");
    lqa_span ds = {(size_t)-1, 0};
    if (rest_len) {
        lqa_db_space(&p->b);
        ds.start = lqa_db_start(&p->b);
        lqa_db_text(&p->b, rest, rest_len);
    }
    size_t body = write_body(p, body_from, body_to);
    if (ds.start == (size_t)-1) ds.start = body;
    ds.end = lqa_db_end(&p->b);
    if (ds.start != (size_t)-1 && ds.end > ds.start) lqa_db_definition(&p->b, term, term_len, ts, ds);
    close_para(p);
}

/* ":term: definition..." (reST field lists, the Jargon File). Returns lines consumed. */
static long field_definition(text_parser *p, long i) {
    const text_line *l = &p->lines[i];
    size_t tlen = field_term(l);
    if (!tlen || p->para_open) return 0;
    long end = definition_end(p, i, l->indent);
    size_t rest = tlen + 2;
    while (rest < l->n && l->s[rest] == ' ') rest++;
    record_definition(p, l->s + 1, tlen, i + 1, end, l->s + rest, l->n - rest);
    return end - i;
}

static int is_list_item(const text_line *l) {
    if (l->n >= 2 && strchr("-*+", l->s[0]) && l->s[1] == ' ') return 1;
    if (starts_with(l, "\xe2\x80\xa2")) return 1; /* U+2022 bullet */
    size_t k = 0;
    while (k < l->n && isdigit((unsigned char)l->s[k])) k++;
    return k > 0 && k + 1 < l->n && (l->s[k] == '.' || l->s[k] == ')') && l->s[k + 1] == ' ';
}

/* "term\n    definition": a one-line paragraph followed by a more indented block. */
static long indented_definition(text_parser *p, long i) {
    const text_line *l = &p->lines[i];
    /* terms are short: a long line followed by an indented one is a wrapped list item */
    if (p->markdown || p->para_open || l->n > 50 || i + 1 >= p->n_lines || (i > 0 && !blank(&p->lines[i - 1]))) return 0;
    const text_line *next = &p->lines[i + 1];
    if (blank(next) || next->indent < l->indent + 2 || is_list_item(l) || strchr(".,;!?", l->s[l->n - 1])) return 0;
    long end = definition_end(p, i, l->indent + 2);
    record_definition(p, l->s, l->n, i + 1, end, NULL, 0);
    return end - i;
}

/* ---- HTML inside Markdown ---------------------------------------------------------------------- */

/* "<!-- ... -->" (possibly over many lines, such as Node.js's YAML history blocks): skipped. */
static long html_comment(text_parser *p, long i) {
    const text_line *l = &p->lines[i];
    if (!p->markdown || !starts_with(l, "<!--")) return 0;
    close_para(p);
    for (long k = i; k < p->n_lines; k++)
        if (memmem(p->lines[k].s + (k == i ? 4 : 0), p->lines[k].n - (k == i ? 4 : 0), "-->", 3)) return k - i + 1;
    return p->n_lines - i;
}

/* Case-insensitive: does s (n bytes) start with the tag name `name` followed by '>', space or '/'? */
static int tag_is(const char *s, size_t n, const char *name) {
    size_t m = strlen(name);
    return n > m && strncasecmp(s, name, m) == 0 && strchr("> \t\n/", s[m]);
}

/* The integer value of attr="N" inside the tag [s, end), 1 when absent or out of range. */
static int tag_int_attr(const char *s, const char *end, const char *attr) {
    const char *a = memmem(s, (size_t)(end - s), attr, strlen(attr));
    if (!a) return 1;
    a += strlen(attr);
    while (a < end && (*a == '=' || *a == '"' || *a == '\'')) a++;
    long v = strtol(a, NULL, 10);
    return v >= 1 && v <= 64 ? (int)v : 1;
}

/* Text of HTML markup: tags dropped, the common entities decoded. */
static void html_text(const char *s, size_t n, lqa_buf *out) {
    static const struct { const char *ent, *text; } ents[] = {
        {"&lt;", "<"}, {"&gt;", ">"}, {"&amp;", "&"}, {"&quot;", "\""}, {"&#39;", "'"}, {"&nbsp;", " "}, {NULL, NULL}};
    lqa_buf_clear(out);
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '<') {
            const char *close = memchr(s + i, '>', n - i);
            if (close) {
                i = (size_t)(close - s);
                lqa_buf_putc(out, ' ');
                continue;
            }
        }
        if (s[i] == '&') {
            int k = 0;
            for (; ents[k].ent; k++)
                if (n - i >= strlen(ents[k].ent) && !memcmp(s + i, ents[k].ent, strlen(ents[k].ent))) break;
            if (ents[k].ent) {
                lqa_buf_puts(out, ents[k].text);
                i += strlen(ents[k].ent) - 1;
                continue;
            }
        }
        lqa_buf_putc(out, s[i]);
    }
}

/* Records the rows and cells of an HTML table held in block (tags matched by name; cells end at
 * their closing tag or at the next cell or row). */
static void html_table_cells(text_parser *p, const char *s, size_t n) {
    lqa_buf cell = {0};
    int in_row = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '<') continue;
        const char *t = s + i + 1, *end = s + n;
        const char *gt = memchr(t, '>', (size_t)(end - t));
        if (!gt) break;
        if (tag_is(t, (size_t)(end - t), "tr")) {
            lqa_db_table_row(&p->b);
            in_row = 1;
        } else if (tag_is(t, (size_t)(end - t), "td") || tag_is(t, (size_t)(end - t), "th")) {
            if (!in_row) lqa_db_table_row(&p->b), in_row = 1;
            const char *body = gt + 1, *stop = body;
            while (stop < end) {
                const char *lt = memchr(stop, '<', (size_t)(end - stop));
                if (!lt) {
                    stop = end;
                    break;
                }
                size_t left = (size_t)(end - lt - 1);
                if (tag_is(lt + 1, left, "/td") || tag_is(lt + 1, left, "/th") || tag_is(lt + 1, left, "td") ||
                    tag_is(lt + 1, left, "th") || tag_is(lt + 1, left, "tr") || tag_is(lt + 1, left, "/tr") ||
                    tag_is(lt + 1, left, "/table")) {
                    stop = lt;
                    break;
                }
                stop = lt + 1;
            }
            html_text(body, (size_t)(stop - body), &cell);
            lqa_db_table_cell(&p->b, cell.data ? cell.data : "", cell.len, tag_int_attr(t, gt, "colspan"),
                              tag_int_attr(t, gt, "rowspan"));
            i = (size_t)(stop - s) - 1;
            continue;
        }
        i = (size_t)(gt - s);
    }
    lqa_buf_free(&cell);
}

/* "<table> ... </table>" in Markdown (Node.js's docs use them): a table with exact cell spans. */
static long html_table(text_parser *p, long i) {
    if (!p->markdown || !tag_is(p->lines[i].s, p->lines[i].n, "<table")) return 0;
    close_para(p);
    lqa_buf block = {0};
    long k = i;
    for (; k < p->n_lines; k++) {
        lqa_buf_append(&block, p->lines[k].s, p->lines[k].n);
        lqa_buf_putc(&block, '\n');
        if (memmem(p->lines[k].s, p->lines[k].n, "</table>", 8)) {
            k++;
            break;
        }
    }
    lqa_db_table_begin(&p->b, NULL, 0);
    if (!memmem(block.data, block.len, "<th", 3)) lqa_db_table_no_header(&p->b); /* <th> or <thead> */
    html_table_cells(p, block.data, block.len);
    lqa_db_table_end(&p->b);
    lqa_db_para(&p->b);
    lqa_buf_free(&block);
    return k - i;
}

/* ---- paragraphs and code --------------------------------------------------------------------------- */

static int word_char(char c) { return isalnum((unsigned char)c) || (unsigned char)c >= 0x80; }

/* Markdown inline markup that carries no text: code ticks, emphasis markers (a '*' or '_' that
 * opens before a word or closes after one, so "2 * 3" and snake_case stay; nothing inside a
 * code span is touched), link and image targets ("[text](url)" -> "text"). */
static void strip_inline(const char *s, size_t n, lqa_buf *out) {
    lqa_buf_clear(out);
    int in_code = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '`') {
            in_code = !in_code;
            continue;
        }
        if (in_code) {
            lqa_buf_putc(out, c);
            continue;
        }
        if (c == '*' || c == '_') {
            size_t k = i;
            while (k < n && s[k] == c) k++;
            char before = i > 0 ? s[i - 1] : ' ', after = k < n ? s[k] : ' ';
            int opens = !word_char(before) && word_char(after), closes = word_char(before) && !word_char(after);
            if (opens || closes) {
                i = k - 1;
                continue;
            }
        }
        if (c == '[' || (c == '!' && i + 1 < n && s[i + 1] == '[')) {
            /* a link: "[text](" with the closing bracket on this line */
            size_t open = c == '!' ? i + 1 : i;
            const char *close = memchr(s + open, ']', n - open);
            if (close && close + 1 < s + n && close[1] == '(') {
                i = open;
                continue;
            }
        }
        if (c == ']' && i + 1 < n && s[i + 1] == '(') {
            const char *paren = memchr(s + i, ')', n - i);
            if (paren) {
                i = (size_t)(paren - s);
                continue;
            }
        }
        lqa_buf_putc(out, c);
    }
}

static long fenced_code(text_parser *p, long i) {
    const text_line *l = &p->lines[i];
    if (!p->markdown || !(starts_with(l, "```") || starts_with(l, "~~~"))) return 0;
    close_para(p);
    long k = i + 1;
    for (; k < p->n_lines && !starts_with(&p->lines[k], l->s[0] == '`' ? "```" : "~~~"); k++) {
        lqa_db_line(&p->b);
        /* code keeps its indentation: the line from its first byte (s is past the indentation) */
        const char *s = p->lines[k].s;
        size_t n = p->lines[k].n;
        while (p->lines[k].indent > 0 && (s[-1] == ' ' || s[-1] == '\t')) s--, n++;
        lqa_db_verbatim(&p->b, s, n);
    }
    close_para(p);
    return (k < p->n_lines ? k + 1 : k) - i;
}

static void paragraph_line(text_parser *p, const text_line *l) {
    if (p->para_open && is_list_item(l)) lqa_db_line(&p->b);
    else lqa_db_space(&p->b);
    if (p->markdown) {
        size_t k = 0;
        if (l->s[0] == '>') k = 1; /* block quote marker */
        strip_inline(l->s + k, l->n - k, &p->scratch);
        lqa_db_text(&p->b, p->scratch.data ? p->scratch.data : "", p->scratch.len);
    } else {
        lqa_db_text(&p->b, l->s, l->n);
    }
    p->para_open = 1;
}

/* Lines made only of box-drawing borders (┌───┬───┐) or rules carry no text. */
static int rule_line(const text_line *l) {
    if (underline_char(l) == '-' || underline_char(l) == '*' || underline_char(l) == '_') return 1;
    const unsigned char *u = (const unsigned char *)l->s;
    for (size_t i = 0; i < l->n; i++)
        if (u[i] != 0xe2 && u[i] != 0x94 && u[i] != 0x95 && !(u[i] >= 0x80 && u[i] <= 0xbf) && u[i] != ' ') return 0;
    return l->n > 0;
}

/* ---- document-level analysis ----------------------------------------------------------------------- */

static void analyse(text_parser *p) {
    long nonblank = 0, verses = 0, hist[16] = {0};
    verse v;
    for (long i = 0; i < p->n_lines; i++) {
        const text_line *l = &p->lines[i];
        if (blank(l)) continue;
        nonblank++;
        verses += parse_verse(l, &v);
        p->has_atx |= p->markdown && l->s[0] == '#' && l->n > 1 && (l->s[1] == ' ' || l->s[1] == '#');
        hist[l->indent < 15 ? l->indent : 15]++;
    }
    p->verse_mode = verses >= 3 && verses * 2 >= nonblank;
    int mode = 0;
    for (int k = 1; k < 16; k++)
        if (hist[k] > hist[mode]) mode = k;
    p->base_indent = mode;
    p->outdent_headings = !p->markdown && mode >= 2 && mode < 8 && hist[mode] * 2 >= nonblank;
}

/* Tries each block form at line i; returns the lines consumed (>= 1). */
static long parse_block(text_parser *p, long i) {
    const text_line *l = &p->lines[i];
    long used;
    verse v;
    if (blank(l)) {
        close_para(p);
        return 1;
    }
    if ((used = fenced_code(p, i))) return used;
    if ((used = html_comment(p, i))) return used;
    if ((used = html_table(p, i))) return used;
    if (p->verse_mode && parse_verse(l, &v)) {
        emit_verse(p, l, &v);
        return 1;
    }
    if (atx_heading(p, l)) return 1;
    if ((used = underlined_heading(p, i))) return used;
    if ((used = pipe_table(p, i))) return used;
    if (rule_line(l)) {
        close_para(p);
        return 1;
    }
    if ((used = field_definition(p, i))) return used;
    if (!p->para_open && structural_heading(p, i)) return 1;
    if ((used = indented_definition(p, i))) return used;
    paragraph_line(p, l);
    return 1;
}

const char *lqa_text_sniff(const char *head, size_t n) {
    long n_lines;
    text_line *lines = split_lines(head, n, &n_lines);
    int score = 0;
    for (long i = 0; i < n_lines; i++) {
        const text_line *l = &lines[i];
        size_t hashes = 0; /* lines are not NUL-terminated: count within the line */
        while (hashes < l->n && l->s[hashes] == '#') hashes++;
        if (hashes >= 1 && hashes <= 6 && hashes < l->n && l->s[hashes] == ' ') score += 2;
        else if (starts_with(l, "```")) score += 2;
        else if (is_delimiter_row(l)) score += 2;
        else if (i > 0 && !blank(&lines[i - 1]) && lines[i - 1].n <= l->n + 2 && (underline_char(l) == '=' ||
                 (underline_char(l) == '-' && lines[i - 1].n <= l->n)))
            score += 1;
        else if (memmem(l->s, l->n, "](", 2)) score += 1;
    }
    free(lines);
    return score >= 2 ? "markdown" : "text";
}

/* A short standalone first line ("The Jargon File", a centred title) names the document. */
static void title_from_first_line(text_parser *p) {
    long i = 0;
    while (i < p->n_lines && blank(&p->lines[i])) i++;
    if (i == p->n_lines || p->verse_mode || p->lines[i].n > 100 || !standalone(p, i)) return;
    const text_line *l = &p->lines[i];
    if (p->markdown && l->s[0] == '#') return; /* the heading itself titles it */
    lqa_db_title(&p->b, l->s, l->n);
}

/* File name without directories and compression/format suffixes: the fallback title. */
static void title_from_path(lqa_docbuild *b, const char *path) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = strlen(base);
    const char *dot = strchr(base, '.');
    if (dot && dot > base) n = (size_t)(dot - base);
    lqa_db_title(b, base, n);
}

int lqa_text_parse(const char *path, const char *data, size_t len, const char *format, const lqa_parse_opts *opts,
                   lqa_doc_sink sink, void *ctx, lqa_err *err) {
    text_parser p = {.path = path, .markdown = format && !strcmp(format, "markdown"), .chapter = -1};
    p.lines = split_lines(data, len, &p.n_lines);
    size_t max_line = opts && opts->max_text_node ? opts->max_text_node : (size_t)16 << 20;
    for (long i = 0; i < p.n_lines; i++) {
        if (p.lines[i].n <= max_line) continue;
        lqa_err_set(err, "%s:%ld: a line of %zu bytes, more than the %zu-byte limit for one text node", path, i + 1,
                    p.lines[i].n, max_line);
        free(p.lines);
        return -1;
    }
    lqa_doc doc;
    lqa_doc_init(&doc, path, p.markdown ? "markdown" : "text");
    lqa_db_init(&p.b, &doc);
    analyse(&p);
    if (p.verse_mode) title_from_path(&p.b, path); /* else the first book would name it */
    title_from_first_line(&p);
    for (long i = 0; i < p.n_lines;) i += parse_block(&p, i);
    lqa_db_close_sections(&p.b, 1);
    if (!p.verse_mode) lqa_db_number_passages(&p.b); /* verses are the passages there */
    if (!doc.title) title_from_path(&p.b, path);
    lqa_db_finish(&p.b);
    free(p.lines);
    lqa_buf_free(&p.scratch);
    lqa_buf_free(&p.heading_buf);
    if (doc.text.len == 0) {
        lqa_doc_free(&doc);
        return lqa_err_set(err, "%s:1: no text found, expected a document", path);
    }
    sink(&doc, ctx);
    lqa_doc_free(&doc);
    return 0;
}
