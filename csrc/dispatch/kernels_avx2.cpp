// Compiled with -mavx2 -mfma (see CMakeLists.txt), used only when the CPU reports both.
#define FASTOPT_ISA avx2
#define FASTOPT_TABLE avx2_table
#include "dispatch/kernels.inc"
