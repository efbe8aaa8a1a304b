// The fused attention block kernel for avx512 (compiled with its -m flags: core/CMakeLists.txt; called only when the
// CPU has it).
#define SINKSCOPE_ISA_NS isa_avx512
#define SINKSCOPE_VECTOR_BYTES 64
#include "attention/attention_kernel.inc"
