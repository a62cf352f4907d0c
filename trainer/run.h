/* run.h: the state of one `lqa-sft train` run, shared by the files that make up the loop
 * (inside trainer/ only): train.c (setup, the loop, config.json, the final artefact), data.c
 * (data sources, mixing, micro-batches) and ckpt_run.c (checkpoints, resume). See train.h. */
#ifndef LQA_TRAINER_RUN_H
#define LQA_TRAINER_RUN_H

#include <jansson.h>
#include <stdint.h>

#include "common/check.h"
#include "common/rng.h"
#include "dataset/shards.h"
#include "model/model.h"
#include "trainer/optim.h"
#include "trainer/train.h"

/* One micro-batch: B rows of T tokens with their loss mask and segment ids. */
typedef struct batch_buf {
    int B, T;
    int32_t *tokens, *seg;
    uint8_t *mask;
    long real_tokens;       /* non-padding tokens of the last fill */
} batch_buf;

/* One --data directory: its shards and its own shuffled iterator (own epochs, cycling). */
typedef struct data_source {
    char *dir;
    lqa_shards *data;
    lqa_iter it;
    double weight;          /* resolved relative weight */
    long rows;              /* rows drawn from it in the current optimizer step */
} data_source;

typedef struct train_run {
    const lqa_train_opts *o;
    const lqa_backend *be;  /* --device: where the model, gradients, moments and workspace live */
    lqa_model m;
    lqa_grads g;
    lqa_optim opt;
    lqa_workspace *ws;      /* the step workspace, planned once */
    double *scalars;        /* backend: the step's [loss sum, gradient sum of squares] */
    data_source *src;       /* the --data directories, in order */
    int n_src;
    double *cum;            /* cumulative mixing weights */
    lqa_rng mix_rng;        /* picks each row's source; never drawn from with one source */
    long step;              /* optimizer steps done */
    double elapsed_before;  /* seconds of earlier sessions (resume) */
    char *ckpt_dir;
    char tokenizer_path[4096];
} train_run;

/* ---- data.c ---- */
void train_batch_alloc(batch_buf *bb, int B, int T);
void train_batch_free(batch_buf *bb);
/* Opens every --data directory (tokenizer hash and vocabulary checked against the model),
 * seeds the mixing RNG and resolves the weights. */
int train_open_data(train_run *r, lqa_err *err);
/* Fills every row of a micro-batch, each from the source the mixing RNG picks. */
int train_fill_batch(train_run *r, lqa_record *rec, batch_buf *bb, int *warned, lqa_err *err);
/* config.json's "data_info" and the records of all sources. */
json_t *train_data_info_json(const train_run *r);
uint64_t train_total_records(const train_run *r);
void train_data_free(train_run *r);

/* ---- ckpt_run.c ---- */
/* Refuses a run folder that holds a run unless --resume (and the reverse); cleans what killed
 * saves left; sets r->ckpt_dir. */
int train_prepare_out_dir(train_run *r, lqa_err *err);
/* Writes checkpoints/step-N whole, switches `latest`, prunes the old ones. */
int train_ckpt_save(train_run *r, double elapsed, lqa_err *err);
/* Restores the optimizer state, step and data positions from the checkpoint to resume from. */
int train_ckpt_load(train_run *r, lqa_err *err);

#endif
