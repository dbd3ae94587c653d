// Plain data shared by the kernels, the dispatch table and the bindings.
#pragma once

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
inline int state_size(const OptimConfig& c) noexcept {
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

}  // namespace fastopt
