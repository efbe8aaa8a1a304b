#include "sinkscope/runtime/parallel.h"

#include <ATen/Parallel.h>

#include <algorithm>

namespace sinkscope {

void parallelFor(int64_t count, int64_t grain, const std::function<void(int64_t begin, int64_t end)> &body)
{
    if (count <= 0) {
        return;
    }
    at::parallel_for(0, count, std::max<int64_t>(1, grain), [&body](int64_t begin, int64_t end) { body(begin, end); });
}

int parallelThreads()
{
    return at::get_num_threads();
}

} // namespace sinkscope
