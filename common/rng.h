/* rng.h: the project's deterministic random numbers (xoshiro256** seeded by splitmix64).
 * Same seed, same stream on every machine: stores, shards and training runs depend on it. */
#ifndef LQA_RNG_H
#define LQA_RNG_H

#include <stdint.h>

typedef struct lqa_rng {
    uint64_t s[4];
} lqa_rng;

void lqa_rng_seed(lqa_rng *r, uint64_t seed);
uint64_t lqa_rng_u64(lqa_rng *r);
uint64_t lqa_rng_below(lqa_rng *r, uint64_t n); /* uniform in [0, n), n > 0 */
double lqa_rng_uniform(lqa_rng *r);             /* [0, 1) */
float lqa_rng_normal(lqa_rng *r);               /* standard normal (Box-Muller) */
void lqa_rng_shuffle_u32(lqa_rng *r, uint32_t *a, uint64_t n); /* Fisher-Yates */

#endif
