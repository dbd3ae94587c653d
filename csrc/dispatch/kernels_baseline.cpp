#define FASTOPT_ISA baseline
#define FASTOPT_TABLE baseline_table
#include "dispatch/kernels.inc"
