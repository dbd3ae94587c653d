// Losses and minibatch gradients of linear, logistic and softmax regression, by topic:
//
//   simd.hpp           dot, axpy, axpy_rows, madd, the finiteness checks
//   logistic_math.hpp  exp_nonpositive, log1p_unit, logistic_loss, logistic_loss4
//   losses.hpp         loss_and_residual, penalty_value, add_penalty_gradient
//   rows.hpp           row access (dense, CSR, standardised), prefetching, RowStream,
//                      accumulate_row, accumulate_sparse_row, finish_gradient, tick
//   row_loops.hpp      the lean loops of dense one-output X (row by row, four rows at a time)
//   row_sums.hpp       sum_rows, batch_gradient, lane_gradient
//
// The objective, parameter layout and formulas are specified in fastopt/reference/models.py.
#pragma once

#include "fastopt/row_sums.hpp"
