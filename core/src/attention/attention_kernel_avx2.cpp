// The fused attention block kernel for avx2 (compiled with its -m flags: core/CMakeLists.txt; called only when the CPU
// has it).
#define SINKSCOPE_ISA_NS isa_avx2
#define SINKSCOPE_VECTOR_BYTES 32
#include "attention/attention_kernel.inc"
