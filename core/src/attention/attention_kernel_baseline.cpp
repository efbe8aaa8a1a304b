// The fused attention block kernel for the baseline instruction set (SSE2 on x86-64, NEON on ARM).
#define SINKSCOPE_ISA_NS isa_baseline
#define SINKSCOPE_VECTOR_BYTES 16
#include "attention/attention_kernel.inc"
