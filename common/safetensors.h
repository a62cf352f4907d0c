/* safetensors.h: reading and writing the safetensors format (Hugging Face): an 8-byte
 * little-endian header length, a JSON header {name: {dtype, shape, data_offsets}, "__metadata__":
 * {str: str}}, then the raw tensor bytes. Reading mmaps the file(s) and validates every header
 * entry (dtype, shape, offsets inside the data, sizes that agree) so a bad file gives a clear
 * error instead of a crash. F32, F16 and BF16 tensors, converted to and from fp32. A model split
 * over model-0000N-of-0000M.safetensors with model.safetensors.index.json reads as one set.
 * Shared: the trainer and eval both load models through this. */
#ifndef LQA_SAFETENSORS_H
#define LQA_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/check.h"

typedef enum { LQA_ST_F32 = 0, LQA_ST_F16 = 1, LQA_ST_BF16 = 2 } lqa_st_dtype;

#define LQA_ST_MAX_DIMS 8

/* One tensor of an opened set; data points into a read-only mapping (any alignment). */
typedef struct lqa_st_tensor {
    char *name;
    lqa_st_dtype dtype;
    int ndim;
    int64_t shape[LQA_ST_MAX_DIMS];
    size_t numel;
    const void *data;
    size_t nbytes;
    int file;           /* index into the reader's files */
} lqa_st_tensor;

typedef struct lqa_st_map {
    char *path;
    void *base;         /* mmap of the whole file (or the caller's bytes: lqa_st_open_mem) */
    size_t size;
    int mapped;         /* base is our mapping (unmapped at close) */
} lqa_st_map;

typedef struct lqa_st_reader {
    lqa_st_map *files;
    int n_files;
    lqa_st_tensor *tensors;
    int n_tensors;
    json_t *metadata;   /* "__metadata__" of the first file (string map) or NULL */
} lqa_st_reader;

/* Opens one .safetensors file. Every header entry is checked before use: dtype, shape (element
 * and byte counts that cannot overflow), data_offsets inside the data section, a byte count equal
 * to elements x dtype size, and no two tensors sharing bytes; errors name the file and tensor. */
int lqa_st_open(lqa_st_reader *r, const char *path, lqa_err *err);
/* The same checks on safetensors bytes in memory (kept by the caller until lqa_st_close); name
 * is used in messages. For tests and fuzzing. */
int lqa_st_open_mem(lqa_st_reader *r, const void *data, size_t n, const char *name, lqa_err *err);
/* Opens a sharded set through its index (model.safetensors.index.json): every file it names. */
int lqa_st_open_index(lqa_st_reader *r, const char *index_path, lqa_err *err);
/* Opens a model directory: DIR/model.safetensors.index.json if present, else DIR/model.safetensors. */
int lqa_st_open_dir(lqa_st_reader *r, const char *dir, lqa_err *err);
void lqa_st_close(lqa_st_reader *r);

const lqa_st_tensor *lqa_st_find(const lqa_st_reader *r, const char *name);
/* Copies a tensor into out (t->numel floats), converting F16/BF16 to fp32. */
void lqa_st_to_f32(const lqa_st_tensor *t, float *out);

/* One tensor to write: fp32 data, stored as dtype. */
typedef struct lqa_st_entry {
    const char *name;
    int ndim;
    int64_t shape[LQA_ST_MAX_DIMS];
    const float *data;
} lqa_st_entry;

/* Writes entries to path atomically, converted to dtype; metadata is a string map ({"format":
 * "pt"} is added when missing, as transformers requires it). */
int lqa_st_write(const char *path, const lqa_st_entry *e, int n, lqa_st_dtype dtype, const json_t *metadata,
                 lqa_err *err);
/* Writes entries into dir: as PREFIX.safetensors when they fit in max_shard_bytes (0 = no limit),
 * else as PREFIX-0000i-of-0000N.safetensors plus PREFIX.safetensors.index.json (weight_map and
 * metadata.total_size, as transformers writes them). Stale files of the other layout are removed. */
int lqa_st_write_dir(const char *dir, const char *prefix, const lqa_st_entry *e, int n, lqa_st_dtype dtype,
                     size_t max_shard_bytes, lqa_err *err);

/* dtype names as in the format ("F32", "F16", "BF16"); -1 / NULL when unknown. */
const char *lqa_st_dtype_name(lqa_st_dtype d);
int lqa_st_dtype_parse(const char *s, lqa_st_dtype *d);
size_t lqa_st_dtype_size(lqa_st_dtype d);

/* Conversions (round to nearest even; NaN and infinities kept). */
uint16_t lqa_f32_to_f16(float f);
float lqa_f16_to_f32(uint16_t h);
uint16_t lqa_f32_to_bf16(float f);
float lqa_bf16_to_f32(uint16_t h);

#endif
