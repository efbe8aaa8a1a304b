#include "commands.h"
#include "common.h"

#include "sinkscope/runtime/runtime.h"

#include <nlohmann/json.hpp>

#include <iomanip>

namespace sinkscope::cli {
namespace {

struct DoctorOptions {
    bool json = false;
};

constexpr const char *kProse =
    R"(Prints the LibTorch version, thread settings, the BLAS library and its measured matmul speed; exits 1 when
the BLAS is the slow reference implementation.
)";

int runDoctor(const DoctorOptions &o, std::ostream &out)
{
    const BlasCheck check = checkBlas();
    if (o.json) {
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

Command addDoctorCommand(CLI::App &cli)
{
    auto o = std::make_shared<DoctorOptions>();
    CLI::App *cmd = cli.add_subcommand("doctor", "check the runtime: LibTorch, threads, BLAS speed");
    cmd->footer(kProse);
    cmd->add_flag("--json", o->json, "print JSON instead of text: runtime, BLAS, matmul speed, devices");
    return {cmd, [o](std::ostream &out, std::ostream &) { return runDoctor(*o, out); }};
}

} // namespace sinkscope::cli
