#include "commands.h"
#include "common.h"
#include "sinkscope/runtime/runtime.h"

#include <nlohmann/json.hpp>

#include <iomanip>

namespace sinkscope::cli {
namespace {

constexpr const char *kDoctorHelp = R"(Usage: sinkscope-cli doctor [--json]

Prints the LibTorch version, thread settings, the BLAS library and its measured matmul speed; exits 1 when
the BLAS is the slow reference implementation.
)";

int cmdDoctor(const Args &a, std::ostream &out, std::ostream &)
{
    const BlasCheck check = checkBlas();
    if (a.has("--json")) {
        nlohmann::ordered_json j;
        j["runtime"] = runtimeSummary();
        j["blas_library"] = check.library;
        j["matmul_gflops"] = check.gflops;
        j["matmul_n"] = check.n;
        j["slow_blas"] = check.slow;
        for (const auto &d : availableDevices()) {
            j["devices"].push_back({{"id", d.id},
                                    {"name", d.name},
                                    {"total_memory", d.totalMemory},
                                    {"runs_model", d.runsModel},
                                    {"kernels", d.kernels},
                                    {"note", d.note}});
        }
        out << j.dump(2) << "\n";
    } else {
        out << runtimeSummary() << "\n";
        out << "matmul " << check.n << "x" << check.n << " fp32: " << std::fixed << std::setprecision(1) << check.gflops
            << " GFLOP/s" << (check.slow ? "  <-- SLOW" : "") << "\n";
        if (check.slow) {
            out << check.message << "\n";
        }
        out << describeDevices() << "\n";
    }
    return check.slow ? 1 : 0;
}

} // namespace

Command doctorCommand()
{
    return {"doctor", kDoctorHelp, {"--json"}, {}, cmdDoctor};
}

} // namespace sinkscope::cli
