// Precompiled header for the core files that include LibTorch.
#pragma once
#include <torch/script.h>
#include <torch/torch.h>
