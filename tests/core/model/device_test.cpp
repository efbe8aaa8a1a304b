// The device registry (sinkscope/device.h): the CPU is always there, first, and runs everything.
#include "sinkscope/device.h"

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
