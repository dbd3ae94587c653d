// Plain data shared by the kernels, the dispatch table and the bindings.
//
// Kernel headers are compiled once per instruction set; any function defined here would exist
// once per build under the same name, and the linker could keep an AVX2 copy for everyone. So
// this header holds types without member functions, and its few helpers have internal linkage.
#pragma once

#include <algorithm>
#include <cstdint>

namespace fastopt {

enum class Optim : int32_t { sgd, adagrad, rmsprop, adadelta, adam, nadam, radam };

// Hyperparameters of every optimizer, named and defaulted as in torch.optim. A kernel reads only
// the fields of its own kind.
struct OptimConfig {
    Optim kind = Optim::sgd;
    double lr = 1e-3;
    double weight_decay = 0.0;
    bool decoupled_weight_decay = false;  // AdamW, and NAdam/RAdam when asked
    double momentum = 0.0;                // SGD, RMSprop
    double dampening = 0.0;               // SGD
    bool nesterov = false;                // SGD
    double lr_decay = 0.0;                // Adagrad
    double initial_accumulator_value = 0.0;
    double alpha = 0.99;                  // RMSprop
    bool centered = false;
    double rho = 0.9;                     // Adadelta
    double beta1 = 0.9, beta2 = 0.999;    // Adam family
    bool amsgrad = false;
    double momentum_decay = 4e-3;         // NAdam
    double eps = 1e-8;
};

// Scalar optimizer state: the update counter (as torch's state["step"]) and NAdam's running
// product of momentum coefficients, kept in double whatever T is.
struct OptimScalars {
    int64_t step = 0;
    double mu_product = 1.0;
};

// Number of per-parameter state arrays the kernel of `c` reads and writes.
[[maybe_unused]] static inline int state_size(const OptimConfig& c) noexcept {
    switch (c.kind) {
        case Optim::sgd: return c.momentum != 0.0 ? 1 : 0;
        case Optim::adagrad: return 1;
        case Optim::rmsprop: return 1 + (c.centered ? 1 : 0) + (c.momentum > 0.0 ? 1 : 0);
        case Optim::adadelta: return 2;
        case Optim::adam: return c.amsgrad ? 3 : 2;
        case Optim::nadam: return 2;
        case Optim::radam: return 2;
    }
    return 0;
}

enum class Model : int32_t { linear, logistic, softmax };
enum class Penalty : int32_t { none, l2, l1, elasticnet };

// What is fitted. Parameters are one flat vector: W (n_outputs x n_features, row-major), then
// the n_outputs intercepts when fit_intercept.
struct ModelSpec {
    Model model = Model::linear;
    int64_t n_features = 0;
    int64_t n_outputs = 1;
    bool fit_intercept = true;
    Penalty penalty = Penalty::none;
    double alpha = 0.0;
    double l1_ratio = 0.15;
};

[[maybe_unused]] static inline int64_t n_params(const ModelSpec& s) noexcept {
    return s.n_outputs * (s.n_features + (s.fit_intercept ? 1 : 0));
}

// Weight of the L1 term inside the penalty (the rest is L2).
[[maybe_unused]] static inline double l1_share(const ModelSpec& s) noexcept {
    switch (s.penalty) {
        case Penalty::l1: return 1.0;
        case Penalty::elasticnet: return s.l1_ratio;
        default: return 0.0;
    }
}

// Compressed sparse rows: row r's entries are values[indptr[r] .. indptr[r + 1]) in the
// columns indices[...]; 32- or 64-bit indices (as SciPy makes them), both arrays alike.
template <class T>
struct SparseRows {
    const T* values = nullptr;
    const int32_t* indptr32 = nullptr;
    const int32_t* indices32 = nullptr;
    const int64_t* indptr64 = nullptr;
    const int64_t* indices64 = nullptr;
    // Every row's columns strictly increase (so no column appears twice in a row).
    bool unique_columns = false;
};

// Rows of X, read-only: dense (X) or sparse (csr.values set, X null). `mean`/`inv_std`
// (length d, or null) standardise on the fly.
template <class T>
struct Dataset {
    const T* X;
    const double* y;              // target, 0/1 label, or class index
    const double* sample_weight;  // null: all ones
    const double* mean;
    const double* inv_std;
    int64_t n;
    int64_t prefetch_rows = 4;  // rows requested this far ahead of use (dense, or shuffled)
    int64_t prefetch_l2_rows = 0;  // and rows requested into L2 this far ahead (dense X; 0: none)
    bool row_blocks = false;  // dense single-output X: rows four at a time (row_loops.hpp)
    int64_t row_chunk = 0;    // dense single-output X, row by row: updates deferred (row_loops.hpp)
    SparseRows<T> csr = {};
};

// Standardised copies of rows the dense row loop keeps (Workspace::row): up to 64, 32 KB.
inline int64_t standardized_rows(int64_t n_features) noexcept {
    return std::min<int64_t>(64, std::max<int64_t>(1, 4096 / std::max<int64_t>(n_features, 1)));
}

// Scratch memory the caller allocates once: no allocation inside the loops.
template <class T>
struct Workspace {
    double* params;                       // n_params: the parameters as double
    double* grad;                         // n_params
    T* grad_t;                            // n_params: the gradient in the parameters' type
    double* scores;                       // n_outputs: one row's scores, then residuals
    double* row;  // standardized_rows(n_features) * n_features: standardised rows
    uint32_t* order;                      // n (shuffled epochs): the rows in visiting order
    // Sparse standardised X only (see rows.hpp): the centring terms of the scores at the
    // current parameters, and the minibatch's residual sums; n_outputs each.
    double* center = nullptr;
    double* residual_sum = nullptr;
};

// `poll` is called every few hundred rows once about `budget` multiply-adds were done since the
// last call; returning true abandons the work (Ctrl-C).
struct StopCheck {
    bool (*poll)(void*) noexcept = nullptr;
    void* context = nullptr;
    int64_t budget = int64_t(1) << 22;  // ~ multiply-adds between polls: a few ms
    int64_t since_poll = 0;
    bool stopped = false;
};

enum class EpochStatus : int32_t { ok = 0, nonfinite = 1, interrupted = 2 };

struct EpochSpec {
    int64_t batch_size;
    bool shuffle;
    uint64_t seed;
    uint64_t epoch;
    const double* lrs;  // one learning rate per update of the epoch
    // Lanes each minibatch is split into (contiguous row ranges, one thread each, partial sums
    // added in lane order). The result depends on `threads` (rounding), never on timing.
    int64_t threads = 1;
    // Sparse X only: update only the coordinates of the minibatch's columns (and the
    // intercepts); see run_epoch_lazy. One lane.
    bool lazy = false;
    // With `shuffle`: blocks of batch_size consecutive rows in a shuffled order instead of
    // shuffled rows (shuffle="batches"; shuffled_batch_order).
    bool shuffle_batches = false;
};

struct EpochOutcome {
    double loss_sum = 0.0;  // sum over rows of the minibatch objective (divide by n)
    int64_t steps = 0;
    EpochStatus status = EpochStatus::ok;
    int64_t failed_step = -1;
};

// SAGA (saga.hpp, fastopt/reference/saga.py): one epoch's constants, and its arrays, all
// float64 whatever X's type. The caller allocates them; the kernel allocates nothing.
struct SagaSpec {
    double step;  // the step size eta
    uint64_t seed;
    uint64_t epoch;  // the epoch's rows: shuffled_order(n, seed, epoch)
};

struct SagaArrays {
    double* w;       // n_params: the iterate
    double* table;   // n * n_outputs: each row's s_i dl/df at its last visit
    double* sums;    // n_params: sum over rows of table_i x~_i, then of table_i (intercepts)
    uint32_t* order;  // n: the visiting order
    double* row;     // n_features: a standardised (or densified) row
    int64_t* last;   // n_features (sparse X): the step up to which each column's updates are done
    double* scores;  // n_outputs
    // n + 1, or null (sparse X with an L2 part only): expm1(k log(1 - step l2)), k = 0..n,
    // the decay of a column that waited k rows, computed once an epoch instead of per wait.
    double* decay = nullptr;
};

}  // namespace fastopt
