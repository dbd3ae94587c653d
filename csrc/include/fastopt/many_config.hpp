// Plain data of the multi-configuration epoch (many_epoch.hpp), shared with the dispatch table
// and the bindings: types only, as in config.hpp.
#pragma once

#include <cstdint>

#include "fastopt/config.hpp"

namespace fastopt {

// Parameter vectors whose objectives one pass of many_objective takes (its `params` scratch
// holds that many): no gradients, so 64 of them (64 x (d + 1) doubles) stay in L2 for d up to
// a few thousand.
constexpr int64_t max_objective_group = 64;

// One configuration of a multi-configuration epoch: what one run_epoch call takes, with its
// own scratch memory. The configurations of an epoch share the data, the model and the
// minibatches; they differ in penalty (spec), optimizer and learning rates.
template <class T>
struct ConfigSlot {
    ModelSpec spec;  // the data's model, with this configuration's penalty
    OptimConfig opt;
    OptimScalars scalars;
    T* w = nullptr;                               // n_params(spec), updated in place
    T* state[3] = {nullptr, nullptr, nullptr};    // state_size(opt) arrays of n_params
    const double* lrs = nullptr;                  // one learning rate per update
    Workspace<T> ws{};  // params, grad, grad_t, scores, row, center, residual_sum (not order)
    // Whether it trains: a configuration that fails (non-finite loss or gradient) stops where
    // it failed, with out.status nonfinite, and the others go on.
    bool active = true;
    EpochOutcome out;
};

}  // namespace fastopt
