// The epoch shuffle: a keyed Feistel bijection of [0, 2^k) restricted to [0, n) by cycle
// walking. The algorithm is specified in fastopt/reference/shuffle.py; every backend
// implements it bit for bit so that they visit rows in the same order.
#pragma once

#include <cstdint>

#ifndef FASTOPT_ISA
#define FASTOPT_ISA baseline
#endif

namespace fastopt {
namespace FASTOPT_ISA {

inline uint64_t splitmix64(uint64_t x) noexcept {
    uint64_t z = x + 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

inline uint32_t lowbias32(uint32_t x) noexcept {
    x ^= x >> 16;
    x *= 0x7FEB352DU;
    x ^= x >> 15;
    x *= 0x846CA68BU;
    x ^= x >> 16;
    return x;
}

class Permutation {
   public:
    static constexpr int rounds = 4;

    Permutation(uint64_t n, uint64_t seed, uint64_t epoch) noexcept : n_(n) {
        const uint64_t base = splitmix64(seed);
        for (int r = 0; r < rounds; ++r)
            keys_[r] = static_cast<uint32_t>(splitmix64(base + rounds * epoch + uint64_t(r)));
        bits_ = 0;
        for (uint64_t m = n > 0 ? n - 1 : 0; m != 0; m >>= 1) ++bits_;
    }

    // Row visited at `position` (< n).
    uint64_t operator()(uint64_t position) const noexcept {
        if (n_ <= 1) return position;
        uint64_t x = feistel(position);
        while (x >= n_) x = feistel(x);
        return x;
    }

   private:
    uint64_t feistel(uint64_t x) const noexcept {
        const int right_bits = bits_ - bits_ / 2;
        int width_left = bits_ / 2, width_right = right_bits;
        uint64_t left = x >> width_right;
        uint64_t right = x & ((uint64_t(1) << width_right) - 1);
        for (int r = 0; r < rounds; ++r) {
            const uint64_t f = lowbias32(static_cast<uint32_t>(right) ^ keys_[r]) &
                               ((uint64_t(1) << width_left) - 1);
            const uint64_t new_right = left ^ f;
            left = right;
            right = new_right;
            const int w = width_left;
            width_left = width_right;
            width_right = w;
        }
        return (left << right_bits) | right;
    }

    uint64_t n_;
    int bits_;
    uint32_t keys_[rounds];
};

}  // namespace FASTOPT_ISA
}  // namespace fastopt
