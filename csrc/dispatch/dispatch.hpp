// Runtime choice between the builds of the kernels for different instruction sets.
#pragma once

#include <cstdint>

#include "fastopt/config.hpp"
#include "fastopt/many_config.hpp"

namespace fastopt::dispatch {

template <class T>
using OptimizerStep = void (*)(const OptimConfig&, OptimScalars&, double, T*, const T*,
                               T* const*, int64_t) noexcept;

template <class T>
using RunEpoch = EpochOutcome (*)(const ModelSpec&, const Dataset<T>&, const OptimConfig&,
                                  OptimScalars&, T*, T* const*, const EpochSpec&, Workspace<T>&,
                                  StopCheck&) noexcept;

// objective.hpp: the full objective, and the two halves of a Hessian-vector product.
template <class T>
using Objective = double (*)(const ModelSpec&, const Dataset<T>&, const T*, Workspace<T>&,
                             double*, int64_t, StopCheck&) noexcept;

template <class T>
using HessianCurvature = bool (*)(const ModelSpec&, const Dataset<T>&, const T*, double*,
                                  double*, double*, double*, int64_t, StopCheck&) noexcept;

template <class T>
using HessianProduct = bool (*)(const ModelSpec&, const Dataset<T>&, const double*,
                                const double*, double*, double*, double*, int64_t,
                                StopCheck&) noexcept;

// objective.hpp: dense_hessian.
template <class T>
using DenseHessian = bool (*)(const ModelSpec&, const Dataset<T>&, const double*, double*,
                              double*, StopCheck&) noexcept;

template <class T>
using SagaEpoch = EpochOutcome (*)(const ModelSpec&, const Dataset<T>&, const SagaSpec&,
                                   SagaArrays&, StopCheck&) noexcept;

// fastopt/many_epoch.hpp
template <class T>
using RunManyEpoch = EpochStatus (*)(const Dataset<T>&, ConfigSlot<T>*, int64_t,
                                     const EpochSpec&, uint32_t*, StopCheck&) noexcept;

template <class T>
using ManyObjective = bool (*)(const ModelSpec&, const Dataset<T>&, const T* const*, int64_t,
                               double*, double*, double*, StopCheck&) noexcept;

template <class T>
struct TypedKernels {
    OptimizerStep<T> optimizer_step;
    RunEpoch<T> run_epoch;
    Objective<T> objective;
    SagaEpoch<T> saga_epoch;
    HessianCurvature<T> hessian_curvature;
    HessianProduct<T> hessian_product;
    RunManyEpoch<T> run_many_epoch;
    ManyObjective<T> many_objective;
    DenseHessian<T> dense_hessian;
};

struct KernelTable {
    const char* name;
    TypedKernels<float> f32;
    TypedKernels<double> f64;

    template <class T>
    const TypedKernels<T>& of() const noexcept {
        if constexpr (sizeof(T) == 4) return f32;
        else return f64;
    }
};

extern const KernelTable baseline_table;
#if FASTOPT_HAVE_AVX2_VARIANT
extern const KernelTable avx2_table;
#endif

// The table in use: the widest the CPU supports, unless set_target chose another.
const KernelTable& kernels() noexcept;
// Names of the builds this CPU can run, widest last.
const char* const* available_targets(int* count) noexcept;
// Select a build by name; false when unknown or unsupported by this CPU.
bool set_target(const char* name) noexcept;

}  // namespace fastopt::dispatch
