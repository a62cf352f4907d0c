/* test_safetensors.c: safetensors round trips (F32 exact, F16/BF16 as the conversions say),
 * sharded sets with their index, the conversions against the compiler's _Float16, and clear
 * errors for malformed headers. */
#include "tests/testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fileio.h"
#include "common/json.h"
#include "common/rng.h"
#include "common/safetensors.h"

/* A random float spread over many magnitudes (subnormal half range up to large values). */
static float random_float(lqa_rng *r) {
    float m = lqa_rng_normal(r);
    int e = (int)lqa_rng_below(r, 40) - 28;
    return ldexpf(m, e);
}

static void test_f16_matches_compiler(void **state) {
    lqa_rng r;
    lqa_rng_seed(&r, lqa_test_seed());
    for (int i = 0; i < 200000; i++) {
        float f = random_float(&r);
        _Float16 h = (_Float16)f;
        uint16_t bits;
        memcpy(&bits, &h, 2);
        assert_int_equal(lqa_f32_to_f16(f), bits);
    }
    for (uint32_t b = 0; b < 65536; b++) {
        _Float16 h;
        uint16_t bits = (uint16_t)b;
        memcpy(&h, &bits, 2);
        float want = (float)h, got = lqa_f16_to_f32(bits);
        if (isnan(want)) assert_true(isnan(got));
        else assert_memory_equal(&want, &got, 4);
    }
}

static void test_bf16_rounding(void **state) {
    /* every bf16 value survives bf16 -> f32 -> bf16 unchanged */
    for (uint32_t b = 0; b < 65536; b++) {
        float f = lqa_bf16_to_f32((uint16_t)b);
        if (isnan(f)) assert_true(isnan(lqa_bf16_to_f32(lqa_f32_to_bf16(f))));
        else assert_int_equal(lqa_f32_to_bf16(f), b);
    }
    lqa_rng r;
    lqa_rng_seed(&r, lqa_test_seed() + 1);
    for (int i = 0; i < 100000; i++) {
        float f = random_float(&r);
        float g = lqa_bf16_to_f32(lqa_f32_to_bf16(f));
        assert_true(fabsf(g - f) <= fabsf(f) * (1.0f / 256));
        /* nearest: neither neighbour of the result is closer */
        uint16_t h = lqa_f32_to_bf16(f);
        float up = lqa_bf16_to_f32((uint16_t)(h + 1)), down = lqa_bf16_to_f32((uint16_t)(h - 1));
        assert_true(fabsf(g - f) <= fabsf(up - f) && fabsf(g - f) <= fabsf(down - f));
    }
}

typedef struct fixture {
    int n;
    lqa_st_entry e[6];
    float *data[6];
} fixture;

static void make_fixture(fixture *fx, uint64_t seed) {
    lqa_rng r;
    lqa_rng_seed(&r, seed);
    static const char *names[] = {"model.embed_tokens.weight", "model.norm.weight", "a.b.scalar_like",
                                  "x.three_d", "lm_head.weight", "empty"};
    fx->n = 6;
    for (int i = 0; i < fx->n; i++) {
        lqa_st_entry *e = &fx->e[i];
        e->name = names[i];
        e->ndim = i == 2 ? 1 : i == 3 ? 3 : i == 1 ? 1 : 2;
        for (int d = 0; d < e->ndim; d++) e->shape[d] = 1 + (int64_t)lqa_rng_below(&r, 37);
        if (i == 5) e->shape[0] = 0;
        size_t n = 1;
        for (int d = 0; d < e->ndim; d++) n *= (size_t)e->shape[d];
        fx->data[i] = lqa_malloc(sizeof(float) * (n ? n : 1));
        for (size_t k = 0; k < n; k++) fx->data[i][k] = random_float(&r);
        e->data = fx->data[i];
    }
}

static void free_fixture(fixture *fx) {
    for (int i = 0; i < fx->n; i++) free(fx->data[i]);
}

/* Every fixture tensor is in r with its shape, and its values equal the dtype's rounding. */
static void check_contents(const lqa_st_reader *r, const fixture *fx, lqa_st_dtype dt) {
    assert_int_equal(r->n_tensors, fx->n);
    for (int i = 0; i < fx->n; i++) {
        const lqa_st_tensor *t = lqa_st_find(r, fx->e[i].name);
        assert_non_null(t);
        assert_int_equal(t->dtype, dt);
        assert_int_equal(t->ndim, fx->e[i].ndim);
        for (int d = 0; d < t->ndim; d++) assert_int_equal(t->shape[d], fx->e[i].shape[d]);
        float *out = lqa_malloc(sizeof(float) * (t->numel ? t->numel : 1));
        lqa_st_to_f32(t, out);
        for (size_t k = 0; k < t->numel; k++) {
            float src = fx->data[i][k];
            float want = dt == LQA_ST_F32 ? src
                       : dt == LQA_ST_F16 ? lqa_f16_to_f32(lqa_f32_to_f16(src))
                                          : lqa_bf16_to_f32(lqa_f32_to_bf16(src));
            assert_memory_equal(&want, &out[k], 4);
        }
        free(out);
    }
    assert_null(lqa_st_find(r, "no.such.tensor"));
}

static void test_round_trip_each_dtype(void **state) {
    fixture fx;
    make_fixture(&fx, lqa_test_seed() + 2);
    const char *dir = lqa_test_tmpdir();
    for (int dt = 0; dt < 3; dt++) {
        char *path = lqa_path_join(dir, lqa_st_dtype_name((lqa_st_dtype)dt));
        lqa_err err;
        json_t *meta = json_pack("{s:s}", "origin", "test");
        assert_int_equal(lqa_st_write(path, fx.e, fx.n, (lqa_st_dtype)dt, meta, &err), 0);
        json_decref(meta);
        lqa_st_reader r;
        assert_int_equal(lqa_st_open(&r, path, &err), 0);
        check_contents(&r, &fx, (lqa_st_dtype)dt);
        assert_string_equal(lqa_json_str(r.metadata, "format", ""), "pt");
        assert_string_equal(lqa_json_str(r.metadata, "origin", ""), "test");
        /* the data section starts 8-byte aligned */
        const uint8_t *p = r.files[0].base;
        assert_int_equal(p[0] % 8, 0);
        lqa_st_close(&r);
        free(path);
    }
    free_fixture(&fx);
}

static void test_sharded_round_trip(void **state) {
    fixture fx;
    make_fixture(&fx, lqa_test_seed() + 3);
    char *dir = lqa_path_join(lqa_test_tmpdir(), "sharded");
    lqa_err err;
    /* a shard limit of half the model, so that there are always two shards or more (a fixed
     * limit of 1000 B gave one file when the random shapes came out small) */
    size_t total = 0;
    for (int i = 0; i < fx.n; i++) {
        size_t n = 1;
        for (int d = 0; d < fx.e[i].ndim; d++) n *= (size_t)fx.e[i].shape[d];
        total += 2 * n;
    }
    /* a single-file save first: the sharded save must replace it */
    assert_int_equal(lqa_st_write_dir(dir, "model", fx.e, fx.n, LQA_ST_BF16, 0, &err), 0);
    assert_int_equal(lqa_st_write_dir(dir, "model", fx.e, fx.n, LQA_ST_BF16, total / 2, &err), 0);
    char *single = lqa_path_join(dir, "model.safetensors");
    assert_false(lqa_path_exists(single));
    char *index = lqa_path_join(dir, "model.safetensors.index.json");
    json_t *idx = lqa_json_load_file(index, &err);
    assert_non_null(idx);
    json_t *wm = json_object_get(idx, "weight_map");
    assert_int_equal(json_object_size(wm), fx.n);
    const char *f0 = json_string_value(json_object_get(wm, fx.e[0].name));
    assert_non_null(strstr(f0, "model-00001-of-"));
    assert_int_equal(json_integer_value(json_object_get(json_object_get(idx, "metadata"), "total_size")), total);
    json_decref(idx);
    lqa_st_reader r;
    assert_int_equal(lqa_st_open_dir(&r, dir, &err), 0);
    assert_true(r.n_files > 1);
    check_contents(&r, &fx, LQA_ST_BF16);
    lqa_st_close(&r);
    /* and back to one file: the index and shards go */
    assert_int_equal(lqa_st_write_dir(dir, "model", fx.e, fx.n, LQA_ST_F32, 0, &err), 0);
    assert_false(lqa_path_exists(index));
    assert_int_equal(lqa_st_open_dir(&r, dir, &err), 0);
    assert_int_equal(r.n_files, 1);
    check_contents(&r, &fx, LQA_ST_F32);
    lqa_st_close(&r);
    free(single);
    free(index);
    free(dir);
    free_fixture(&fx);
}

/* Writes an 8-byte length + header + n_data zero bytes. */
static void write_raw(const char *path, const char *header, uint64_t claimed_len, size_t n_data) {
    size_t hl = strlen(header);
    size_t total = 8 + hl + n_data;
    uint8_t *b = calloc(1, total);
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(claimed_len >> (8 * i));
    memcpy(b + 8, header, hl);
    lqa_test_write(path, b, total);
    free(b);
}

static void expect_error(const char *path, const char *needle) {
    lqa_st_reader r;
    lqa_err err = {{0}};
    assert_int_equal(lqa_st_open(&r, path, &err), -1);
    if (!strstr(err.msg, needle) || !strstr(err.msg, path)) {
        fprintf(stderr, "error message '%s' lacks '%s' or the path\n", err.msg, needle);
        fail();
    }
}

static void test_bad_headers(void **state) {
    char *p = lqa_path_join(lqa_test_tmpdir(), "bad.safetensors");
    lqa_test_write(p, "abc", 3);
    expect_error(p, "at least");
    const char *ok = "{\"t\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}}";
    write_raw(p, ok, 1u << 30, 24);
    expect_error(p, "header length");
    write_raw(p, "{\"t\":{\"dtype\":\"F32\",", strlen("{\"t\":{\"dtype\":\"F32\","), 0);
    expect_error(p, "JSON");
    write_raw(p, ok, strlen(ok), 20);
    expect_error(p, "outside");
    const char *wrong_size = "{\"t\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,20]}}";
    write_raw(p, wrong_size, strlen(wrong_size), 24);
    expect_error(p, "expected 24");
    const char *i64 = "{\"t\":{\"dtype\":\"I64\",\"shape\":[3],\"data_offsets\":[0,24]}}";
    write_raw(p, i64, strlen(i64), 24);
    expect_error(p, "I64");
    const char *no_shape = "{\"t\":{\"dtype\":\"F16\",\"data_offsets\":[0,24]}}";
    write_raw(p, no_shape, strlen(no_shape), 24);
    expect_error(p, "shape");
    write_raw(p, "[1,2]", 5, 0);
    expect_error(p, "not a JSON object");
    /* the good header opens */
    write_raw(p, ok, strlen(ok), 24);
    lqa_st_reader r;
    assert_int_equal(lqa_st_open(&r, p, NULL), 0);
    lqa_st_close(&r);
    /* a directory without weights */
    lqa_err err;
    assert_int_equal(lqa_st_open_dir(&r, lqa_test_tmpdir(), &err), -1);
    assert_non_null(strstr(err.msg, "no model.safetensors"));
    free(p);
}

static void test_index_pointing_to_wrong_file(void **state) {
    fixture fx;
    make_fixture(&fx, lqa_test_seed() + 4);
    char *dir = lqa_path_join(lqa_test_tmpdir(), "badindex");
    lqa_err err;
    assert_int_equal(lqa_st_write_dir(dir, "model", fx.e, fx.n, LQA_ST_F32, 1, &err), 0);
    char *index = lqa_path_join(dir, "model.safetensors.index.json");
    json_t *idx = lqa_json_load_file(index, &err);
    json_t *wm = json_object_get(idx, "weight_map");
    json_object_set_new(wm, fx.e[0].name, json_string("model-00002-of-00006.safetensors"));
    assert_int_equal(lqa_json_write_file(index, idx, &err), 0);
    json_decref(idx);
    lqa_st_reader r;
    assert_int_equal(lqa_st_open_dir(&r, dir, &err), -1);
    assert_non_null(strstr(err.msg, fx.e[0].name));
    free(index);
    free(dir);
    free_fixture(&fx);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_f16_matches_compiler),
        cmocka_unit_test(test_bf16_rounding),
        cmocka_unit_test(test_round_trip_each_dtype),
        cmocka_unit_test(test_sharded_round_trip),
        cmocka_unit_test(test_bad_headers),
        cmocka_unit_test(test_index_pointing_to_wrong_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
