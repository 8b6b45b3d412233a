using OffHeapTracker.Monitoring;

namespace OffHeapTracker.Tests.Monitoring;

public sealed class MonitorStartupSettingsTests
{
    public static TheoryData<string?, bool?, bool> EnabledCases => new()
    {
        { null, null, false },
        { "1", null, true },
        { "true", null, true },
        { " TRUE ", null, true },
        { "0", true, false },
        { "false", true, false },
        { null, true, true },
        { "yes", true, true },
        { "garbage", null, false },
    };

    [Theory]
    [MemberData(nameof(EnabledCases))]
    public void Enabled_ComesFromTheEnvironment_ThenTheAppContextSwitch(string? environment, bool? appSwitch, bool expected)
    {
        MonitorStartupSettings settings = MonitorStartupSettings.Read(
            name => name == "OFFHEAPTRACKER_MONITOR" ? environment : null,
            name => name == "OffHeapTracker.Monitor.Enabled" ? appSwitch : null);
        Assert.Equal(expected, settings.Enabled);
        Assert.True(settings.RecordPool);
    }

    [Theory]
    [InlineData(null, null, true)]
    [InlineData("0", null, false)]
    [InlineData("1", false, true)]
    [InlineData(null, false, false)]
    public void RecordPool_ComesFromTheEnvironment_ThenTheAppContextSwitch(string? environment, bool? appSwitch, bool expected)
    {
        MonitorStartupSettings settings = MonitorStartupSettings.Read(
            name => name == "OFFHEAPTRACKER_MONITOR_RECORD_POOL" ? environment : null,
            name => name == "OffHeapTracker.Monitor.RecordPool" ? appSwitch : null);
        Assert.Equal(expected, settings.RecordPool);
        Assert.False(settings.Enabled);
    }

    [Fact]
    public void FromProcess_ReadsRealAppContextSwitches()
    {
        AppContext.SetSwitch(BufferMonitor.RecordPoolSwitch, false);
        try
        {
            Assert.False(MonitorStartupSettings.FromProcess().RecordPool);
        }
        finally
        {
            AppContext.SetSwitch(BufferMonitor.RecordPoolSwitch, true);
        }

        Assert.True(MonitorStartupSettings.FromProcess().RecordPool);
    }
}
