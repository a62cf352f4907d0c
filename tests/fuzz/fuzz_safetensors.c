/* fuzz_safetensors.c: libFuzzer target for safetensors headers (common/safetensors.c): any bytes
 * given to lqa_st_open_mem give a clean error or tensors that lie inside the data, do not share
 * bytes and hold elements x dtype-size bytes; never a crash, a leak or an overflow. */
#include <stddef.h>
#include <stdint.h>

#include "common/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    lqa_st_reader r;
    lqa_err err;
    if (lqa_st_open_mem(&r, data, size, "fuzz.safetensors", &err)) return 0;
    for (int i = 0; i < r.n_tensors; i++) {
        const lqa_st_tensor *t = &r.tensors[i];
        const uint8_t *p = t->data;
        if (p < data || p + t->nbytes > data + size || t->nbytes != t->numel * lqa_st_dtype_size(t->dtype))
            __builtin_trap();
        for (int k = 0; k < r.n_tensors; k++) {
            const lqa_st_tensor *u = &r.tensors[k];
            const uint8_t *q = u->data;
            if (k != i && t->nbytes && u->nbytes && p < q + u->nbytes && q < p + t->nbytes) __builtin_trap();
        }
        if (t->numel <= 4096) { /* the conversion reads exactly its bytes */
            float out[4096];
            lqa_st_to_f32(t, out);
        }
    }
    lqa_st_close(&r);
    return 0;
}
