/* fuzz_state.c: libFuzzer target for checkpoints' state.json (trainer/ckpt.c): any bytes, parsed
 * as JSON and given to lqa_ckpt_check_state, give a clean refusal or values the trainer can use.
 * Half the inputs are sealed first (a valid checksum), so the value checks behind the checksum
 * are reached too. */
#include <stddef.h>
#include <stdint.h>

#include "common/json.h"
#include "trainer/ckpt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    json_t *j = json_loadb((const char *)data + 1, size - 1, 0, NULL);
    if (!j) return 0;
    if ((data[0] & 1) && json_is_object(j)) lqa_ckpt_seal(j, data[0], 0x1234);
    uint64_t bytes, xxh;
    lqa_err err;
    if (lqa_ckpt_check_state(j, "state.json", 1000, &bytes, &xxh, &err) == 0) {
        json_int_t step = json_integer_value(json_object_get(j, "step"));
        if (step < 1 || step > 1000) __builtin_trap();
    }
    json_decref(j);
    return 0;
}
