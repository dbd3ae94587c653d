// Compiled with -mavx2 (see CMakeLists.txt) and used only when the CPU reports AVX2.
#define FASTOPT_ISA avx2
#define FASTOPT_TABLE avx2_table
#include "dispatch/kernels.inc"
