#include "dispatch/dispatch.hpp"

#include <atomic>
#include <cstring>

#if FASTOPT_HAVE_AVX2_VARIANT && !(defined(__GNUC__) || defined(__clang__))
// CMakeLists.txt builds the AVX2 variant only with GCC or clang, whose CPU check this file uses.
#error "the AVX2 variant of the kernels needs GCC's or clang's __builtin_cpu_supports"
#endif

namespace fastopt::dispatch {
namespace {

struct Candidates {
    const KernelTable* tables[2];
    const char* names[2];
    int count = 0;
};

const Candidates& candidates() noexcept {
    static const Candidates c = [] {
        Candidates out{};
        out.tables[out.count] = &baseline_table;
        out.names[out.count++] = baseline_table.name;
#if FASTOPT_HAVE_AVX2_VARIANT
        if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
            out.tables[out.count] = &avx2_table;
            out.names[out.count++] = avx2_table.name;
        }
#endif
        return out;
    }();
    return c;
}

std::atomic<const KernelTable*> selected{nullptr};

}  // namespace

const KernelTable& kernels() noexcept {
    const KernelTable* t = selected.load(std::memory_order_acquire);
    if (t == nullptr) {
        const Candidates& c = candidates();
        t = c.tables[c.count - 1];
        selected.store(t, std::memory_order_release);
    }
    return *t;
}

const char* const* available_targets(int* count) noexcept {
    const Candidates& c = candidates();
    *count = c.count;
    return c.names;
}

bool set_target(const char* name) noexcept {
    const Candidates& c = candidates();
    for (int i = 0; i < c.count; ++i) {
        if (std::strcmp(c.names[i], name) == 0) {
            selected.store(c.tables[i], std::memory_order_release);
            return true;
        }
    }
    return false;
}

}  // namespace fastopt::dispatch
