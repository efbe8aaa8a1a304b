// The device registry: what SinkScope can compute on in this process (style guide "Backends"). The CPU
// is always listed first and always works; it is the oracle every GPU result is tested against.
// CUDA devices are listed when this build can use them: LibTorch built with CUDA (the model can run
// there: LoadOptions::device = DeviceInfo::id) and/or SinkScope's CUDA kernels compiled in
// (-DSINKSCOPE_ENABLE_CUDA=ON; docs/gpu.md).
//
// Threading: availableDevices() may be called from any thread; it queries the driver each call (a few
// milliseconds), so callers cache it (e.g. once per window).
#pragma once

#include "sinkscope/common/result.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace sinkscope {

enum class DeviceKind { Cpu, Cuda };

struct DeviceInfo {
    DeviceKind kind = DeviceKind::Cpu;
    int index = 0;           // CUDA ordinal; 0 for the CPU
    std::string id;          // "cpu", "cuda:0": what LoadOptions::device takes
    std::string name;        // CPU model name or CUDA device name
    int64_t totalMemory = 0; // bytes: RAM for the CPU, device memory for CUDA; 0 when unknown
    int64_t freeMemory = 0;  // bytes available now; 0 when unknown
    int computeMajor = 0;    // CUDA compute capability (0 for the CPU)
    int computeMinor = 0;
    bool runsModel = false; // forward passes can run here (CPU: always; CUDA: LibTorch has CUDA)
    bool kernels = false;   // SinkScope's attention kernels run here (CPU: the reference; CUDA: compiled in)
    std::string note;       // what is missing and why, empty when everything works
};

struct BuildCapabilities {
    bool cudaKernels = false;      // kernels/ compiled in (SINKSCOPE_ENABLE_CUDA)
    bool torchCuda = false;        // LibTorch built with CUDA (SINKSCOPE_HAS_CUDA_TORCH)
    std::string cudaArchitectures; // the kernels' architectures, e.g. "80;90"; empty without kernels
    std::string torchVersion;      // e.g. "1.13.1"
};

BuildCapabilities buildCapabilities();

// The CPU first, then every CUDA device this build can use (none on a CPU-only build or machine).
std::vector<DeviceInfo> availableDevices();

// One line per device, for `sinkscope-cli doctor` and logs.
std::string describeDevices();

// What a device chosen by the user (`--device`, the window's picker) means for a run: where the model
// runs and where the attention statistics run. A CUDA device whose LibTorch is CPU-only still runs the
// statistics kernels (the model stays on the CPU); one without the kernels still runs the model (the
// statistics take the CPU path).
struct DevicePlan {
    DeviceInfo device;                // the entry of `devices` that was chosen
    std::string modelDevice = "cpu";  // LoadOptions::device
    std::string kernelDevice = "cpu"; // MetricsOptions::device
};

// The CUDA ordinal of "cuda" (0) or "cuda:N"; nullopt for anything else ("cpu" included).
std::optional<int> cudaOrdinal(const std::string &id);

// `id` is "cpu", "cuda" (= "cuda:0") or "cuda:N", looked up in `devices` (availableDevices()).
// InvalidArgument when the id is malformed, not listed, or listed but usable for nothing; the message
// names the id, says why (the device's note) and lists the devices there are.
Result<DevicePlan> planDevice(const std::string &id, const std::vector<DeviceInfo> &devices);

} // namespace sinkscope
