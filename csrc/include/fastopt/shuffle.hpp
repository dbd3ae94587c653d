// The epoch shuffle: Fisher-Yates driven by a SplitMix64 stream, with Lemire's bounded draws.
// The algorithm is specified in fastopt/reference/shuffle.py; every backend implements it bit
// for bit so that they visit rows in the same order.
#pragma once

#include <cstdint>

#ifndef FASTOPT_ISA
#define FASTOPT_ISA baseline
#endif

namespace fastopt {
namespace FASTOPT_ISA {

inline constexpr uint64_t golden_gamma = 0x9E3779B97F4A7C15ULL;

inline uint64_t splitmix64(uint64_t x) noexcept {
    uint64_t z = x + golden_gamma;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

// order[0..n) = the rows of epoch `epoch` in visiting order; n < 2^32.
inline void shuffled_order(uint32_t* order, uint64_t n, uint64_t seed, uint64_t epoch) noexcept {
    for (uint64_t i = 0; i < n; ++i) order[i] = uint32_t(i);
    uint64_t state = splitmix64(splitmix64(seed) + epoch);  // the stream's key
    for (uint64_t i = n > 0 ? n - 1 : 0; i > 0; --i) {
        const uint64_t bound = i + 1;
        uint64_t m;
        for (;;) {
            const uint64_t u = splitmix64(state) >> 32;
            state += golden_gamma;
            m = u * bound;
            const uint64_t low = m & 0xFFFFFFFFULL;
            if (low >= bound) break;  // the threshold below is < bound: accept without it
            if (low >= ((uint64_t(1) << 32) - bound) % bound) break;
        }
        const uint64_t j = m >> 32;
        const uint32_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
}

// shuffle="batches": the blocks of rows [j B, min((j + 1) B, n)) in the order shuffled_order
// gives to ceil(n / B) items, each block's rows in order (fastopt/reference/shuffle.py). The
// block order is drawn into the end of `order` and read before anything overwrites it.
inline void shuffled_batch_order(uint32_t* order, uint64_t n, uint64_t batch, uint64_t seed,
                                 uint64_t epoch) noexcept {
    if (n == 0 || batch == 0) return;
    const uint64_t blocks = (n + batch - 1) / batch;
    const uint32_t* block_order = order + (n - blocks);
    shuffled_order(order + (n - blocks), blocks, seed, epoch);
    uint64_t pos = 0;
    for (uint64_t k = 0; k < blocks; ++k) {
        const uint64_t first = uint64_t(block_order[k]) * batch;
        const uint64_t last = first + batch < n ? first + batch : n;
        for (uint64_t r = first; r < last; ++r) order[pos++] = uint32_t(r);
    }
}

}  // namespace FASTOPT_ISA
}  // namespace fastopt
