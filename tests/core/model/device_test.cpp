// The device registry (sinkscope/device.h): the CPU is always there, first, and runs everything.
#include "sinkscope/runtime/device.h"

#include <gtest/gtest.h>

using namespace sinkscope;

TEST(DeviceRegistry, CpuFirstAndAlwaysUsable)
{
    const auto devices = availableDevices();
    ASSERT_FALSE(devices.empty());
    const DeviceInfo &cpu = devices.front();
    EXPECT_EQ(cpu.kind, DeviceKind::Cpu);
    EXPECT_EQ(cpu.id, "cpu");
    EXPECT_TRUE(cpu.runsModel);
    EXPECT_TRUE(cpu.kernels);
    EXPECT_FALSE(cpu.name.empty());
    EXPECT_GT(cpu.totalMemory, 0);
    EXPECT_LE(cpu.freeMemory, cpu.totalMemory);
    for (size_t i = 1; i < devices.size(); ++i) {
        EXPECT_EQ(devices[i].kind, DeviceKind::Cuda);
        EXPECT_EQ(devices[i].id, "cuda:" + std::to_string(devices[i].index));
        // A listed GPU is usable for something, or says why not.
        EXPECT_TRUE(devices[i].runsModel || devices[i].kernels || !devices[i].note.empty());
    }
}

TEST(DeviceRegistry, DescriptionNamesEveryDeviceAndTheBuild)
{
    const auto devices = availableDevices();
    const std::string text = describeDevices();
    for (const auto &d : devices) {
        EXPECT_NE(text.find(d.id + ": "), std::string::npos) << text;
    }
    const BuildCapabilities b = buildCapabilities();
    EXPECT_NE(text.find("LibTorch " + b.torchVersion), std::string::npos) << text;
    EXPECT_EQ(b.cudaKernels, !b.cudaArchitectures.empty());
}

namespace {

DeviceInfo gpu(int index, bool runsModel, bool kernels, std::string note = {})
{
    DeviceInfo g;
    g.kind = DeviceKind::Cuda;
    g.index = index;
    g.id = "cuda:" + std::to_string(index);
    g.name = "Test GPU";
    g.runsModel = runsModel;
    g.kernels = kernels;
    g.note = std::move(note);
    return g;
}

} // namespace

TEST(DevicePlan, SplitsModelAndKernelDevices)
{
    std::vector<DeviceInfo> devices = availableDevices();
    devices.resize(1); // the CPU
    devices.push_back(gpu(0, true, true));
    devices.push_back(gpu(1, false, true, "LibTorch is built without CUDA"));
    devices.push_back(gpu(2, true, false, "compute capability 7.5 is below 8.0"));

    auto cpu = planDevice("cpu", devices);
    ASSERT_TRUE(cpu.ok()) << cpu.error().message;
    EXPECT_EQ(cpu->modelDevice, "cpu");
    EXPECT_EQ(cpu->kernelDevice, "cpu");

    auto both = planDevice("cuda", devices); // cuda means cuda:0
    ASSERT_TRUE(both.ok()) << both.error().message;
    EXPECT_EQ(both->device.id, "cuda:0");
    EXPECT_EQ(both->modelDevice, "cuda:0");
    EXPECT_EQ(both->kernelDevice, "cuda:0");

    auto kernelsOnly = planDevice("cuda:1", devices);
    ASSERT_TRUE(kernelsOnly.ok());
    EXPECT_EQ(kernelsOnly->modelDevice, "cpu");
    EXPECT_EQ(kernelsOnly->kernelDevice, "cuda:1");

    auto modelOnly = planDevice("cuda:2", devices);
    ASSERT_TRUE(modelOnly.ok());
    EXPECT_EQ(modelOnly->modelDevice, "cuda:2");
    EXPECT_EQ(modelOnly->kernelDevice, "cpu");
}

TEST(DevicePlan, ErrorsNameTheDeviceAndWhatThereIs)
{
    std::vector<DeviceInfo> devices = availableDevices();
    devices.resize(1);
    devices.push_back(gpu(0, false, false, "compute capability 6.0 is below 8.0"));

    for (const std::string bad : {"gpu", "cuda:", "cuda:x", "CPU", "cuda:-1", ""}) {
        auto r = planDevice(bad, devices);
        ASSERT_FALSE(r.ok()) << bad;
        EXPECT_EQ(r.error().code, ErrorCode::InvalidArgument);
        EXPECT_NE(r.error().message.find("'" + bad + "'"), std::string::npos) << r.error().message;
        EXPECT_NE(r.error().message.find("cpu, cuda:0"), std::string::npos) << r.error().message;
    }
    auto missing = planDevice("cuda:3", devices);
    ASSERT_FALSE(missing.ok());
    EXPECT_NE(missing.error().message.find("'cuda:3' is not available"), std::string::npos) << missing.error().message;

    auto useless = planDevice("cuda:0", devices);
    ASSERT_FALSE(useless.ok());
    EXPECT_NE(useless.error().message.find("below 8.0"), std::string::npos) << useless.error().message;
}
