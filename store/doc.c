/* doc.c: lifetime of an lqa_doc (see doc.h): init to empty, free everything it owns. */
#include "store/doc.h"

#include <stdlib.h>
#include <string.h>

void lqa_doc_init(lqa_doc *d, const char *path, const char *format) {
    memset(d, 0, sizeof *d);
    d->path = lqa_strdup(path ? path : "");
    d->format = lqa_strdup(format ? format : "");
    lqa_buf_reserve(&d->text, 0); /* text.data is never NULL for readers */
    d->text.data[0] = '\0';
}

static void free_table(lqa_table *t) {
    free(t->caption);
    for (int i = 0; i < t->n_rows * t->n_cols; i++) free(t->cells[i]);
    free(t->cells);
    free(t->cell_spans);
}

static void free_qa(lqa_qa_in *q) {
    free(q->question);
    for (int i = 0; i < q->n_answers; i++) free(q->answers[i]);
    free(q->answers);
    free(q->kind);
}

void lqa_doc_free(lqa_doc *d) {
    if (!d) return;
    free(d->title);
    free(d->format);
    free(d->path);
    lqa_buf_free(&d->text);
    for (int i = 0; i < d->n_sections; i++) free(d->sections[i].title);
    free(d->sections);
    for (int i = 0; i < d->n_tables; i++) free_table(&d->tables[i]);
    free(d->tables);
    for (int i = 0; i < d->n_defs; i++) free(d->defs[i].term);
    free(d->defs);
    for (int i = 0; i < d->n_passages; i++) free(d->passages[i].label);
    free(d->passages);
    for (int i = 0; i < d->n_qas; i++) free_qa(&d->qas[i]);
    free(d->qas);
    memset(d, 0, sizeof *d);
}
