// The device registry (sinkscope/device.h): the CPU from the OS, CUDA devices from the kernels library's
// driver query (names, memory, compute capability) and from LibTorch (whether the model can run there).
#include "sinkscope/runtime/device.h"

#include "sinkscope/config.h"

#include <torch/cuda.h>
#include <torch/version.h>

#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#if SINKSCOPE_ENABLE_CUDA
#include "sinkscope/kernels/cuda_status.h"
#endif

namespace sinkscope {

namespace {

std::string cpuName()
{
    std::ifstream f("/proc/cpuinfo");
    std::string line;
    while (std::getline(f, line)) {
        if (line.rfind("model name", 0) == 0) {
            if (const auto colon = line.find(':'); colon != std::string::npos) {
                return line.substr(line.find_first_not_of(" \t", colon + 1));
            }
        }
    }
    return "CPU";
}

int64_t memAvailable()
{
    std::ifstream f("/proc/meminfo");
    std::string key;
    int64_t kb = 0;
    std::string unit;
    while (f >> key >> kb) {
        std::getline(f, unit);
        if (key == "MemAvailable:") {
            return kb * 1024;
        }
    }
    return 0;
}

int torchCudaDevices()
{
    try {
        return torch::cuda::is_available() ? static_cast<int>(torch::cuda::device_count()) : 0;
    } catch (...) {
        return 0; // a broken driver must not take the registry down: the CPU still works
    }
}

std::string gib(int64_t bytes)
{
    std::ostringstream s;
    s.precision(1);
    s << std::fixed << static_cast<double>(bytes) / (1024.0 * 1024.0 * 1024.0) << " GiB";
    return s.str();
}

} // namespace

BuildCapabilities buildCapabilities()
{
    BuildCapabilities b;
    b.cudaKernels = SINKSCOPE_ENABLE_CUDA;
    b.torchCuda = SINKSCOPE_HAS_CUDA_TORCH;
#if SINKSCOPE_ENABLE_CUDA
    b.cudaArchitectures = cuda::compiledArchitectures();
#endif
    b.torchVersion = TORCH_VERSION;
    return b;
}

std::vector<DeviceInfo> availableDevices()
{
    std::vector<DeviceInfo> out;
    DeviceInfo cpu;
    cpu.kind = DeviceKind::Cpu;
    cpu.id = "cpu";
    cpu.name = cpuName();
    cpu.totalMemory = static_cast<int64_t>(sysconf(_SC_PHYS_PAGES)) * sysconf(_SC_PAGESIZE);
    cpu.freeMemory = memAvailable();
    cpu.runsModel = true;
    cpu.kernels = true; // the CPU reference of every kernel
    out.push_back(cpu);

    const int torchCount = torchCudaDevices();
#if SINKSCOPE_ENABLE_CUDA
    std::string why;
    for (const auto &d : cuda::listDevices(&why)) {
        DeviceInfo g;
        g.kind = DeviceKind::Cuda;
        g.index = d.index;
        g.id = "cuda:" + std::to_string(d.index);
        g.name = d.name;
        g.totalMemory = d.totalMemory;
        g.freeMemory = d.freeMemory;
        g.computeMajor = d.major;
        g.computeMinor = d.minor;
        g.runsModel = d.index < torchCount;
        g.kernels = d.supported;
        if (!g.runsModel) {
            g.note = "LibTorch is built without CUDA: the model runs on the CPU (build against a CUDA LibTorch, "
                     "docs/gpu.md)";
        } else if (!g.kernels) {
            g.note = "compute capability " + std::to_string(d.major) + "." + std::to_string(d.minor) +
                     " is below 8.0: the kernels need sm_80 or newer";
        }
        out.push_back(g);
    }
#else
    for (int i = 0; i < torchCount; ++i) {
        DeviceInfo g;
        g.kind = DeviceKind::Cuda;
        g.index = i;
        g.id = "cuda:" + std::to_string(i);
        g.name = "CUDA device " + std::to_string(i);
        g.runsModel = true;
        g.note = "SinkScope's CUDA kernels are not built (-DSINKSCOPE_ENABLE_CUDA=ON): statistics use the CPU path";
        out.push_back(g);
    }
#endif
    return out;
}

std::string describeDevices()
{
    std::ostringstream s;
    for (const auto &d : availableDevices()) {
        s << d.id << ": " << d.name;
        if (d.totalMemory > 0) {
            s << ", " << gib(d.totalMemory);
            if (d.freeMemory > 0) {
                s << " (" << gib(d.freeMemory) << " free)";
            }
        }
        if (d.kind == DeviceKind::Cuda) {
            s << ", sm_" << d.computeMajor << d.computeMinor << ", model " << (d.runsModel ? "yes" : "no")
              << ", kernels " << (d.kernels ? "yes" : "no");
        }
        if (!d.note.empty()) {
            s << " -- " << d.note;
        }
        s << "\n";
    }
    const BuildCapabilities b = buildCapabilities();
    s << "build: LibTorch " << b.torchVersion << (b.torchCuda ? " (CUDA)" : " (CPU)") << ", CUDA kernels "
      << (b.cudaKernels ? "compiled for " + b.cudaArchitectures : std::string("not built"));
    return s.str();
}

std::optional<int> cudaOrdinal(const std::string &id)
{
    if (id == "cuda") {
        return 0;
    }
    if (id.rfind("cuda:", 0) == 0 && id.size() > 5 && id.size() < 9 &&
        id.find_first_not_of("0123456789", 5) == std::string::npos) {
        return std::stoi(id.substr(5));
    }
    return std::nullopt;
}

Result<DevicePlan> planDevice(const std::string &id, const std::vector<DeviceInfo> &devices)
{
    auto offered = [&] {
        std::string list;
        for (const auto &d : devices) {
            list += (list.empty() ? "" : ", ") + d.id;
        }
        return list.empty() ? std::string("none") : list;
    };
    const std::optional<int> ordinal = cudaOrdinal(id);
    const std::string wanted = ordinal ? "cuda:" + std::to_string(*ordinal) : id;
    if (!ordinal && id != "cpu") {
        return makeError(ErrorCode::InvalidArgument,
                         "device '" + id + "' is not cpu, cuda or cuda:N (devices here: " + offered() + ")");
    }
    const auto it = std::find_if(devices.begin(), devices.end(), [&](const DeviceInfo &d) { return d.id == wanted; });
    if (it == devices.end()) {
        const BuildCapabilities b = buildCapabilities();
        const std::string why = b.cudaKernels || b.torchCuda
                                    ? "no such GPU on this machine"
                                    : "this build has neither a CUDA LibTorch nor the CUDA kernels (docs/gpu.md)";
        return makeError(ErrorCode::InvalidArgument,
                         "device '" + id + "' is not available: " + why + " (devices here: " + offered() + ")");
    }
    if (!it->runsModel && !it->kernels) {
        return makeError(ErrorCode::InvalidArgument,
                         "device '" + id + "' can run neither the model nor the kernels: " + it->note);
    }
    DevicePlan plan;
    plan.device = *it;
    plan.modelDevice = it->runsModel ? it->id : "cpu";
    plan.kernelDevice = it->kernels ? it->id : "cpu";
    return plan;
}

} // namespace sinkscope
