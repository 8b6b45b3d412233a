using OffHeapTracker.Monitoring;
using OffHeapTracker.Tests.Support;

namespace OffHeapTracker.Tests.Monitoring;

// FromProcess_ReadsRealAppContextSwitches flips a process-wide switch: a shared monitor created meanwhile by a
// test running in parallel would start with RecordPool off.
[Collection(ProcessWideState.Name)]
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

    [Theory]
    [InlineData(null, null, 1)]
    [InlineData("16", null, 16)]
    [InlineData(" 64 ", "8", 64)]
    [InlineData(null, "8", 8)]
    [InlineData("0", "8", 8)]
    [InlineData("-3", null, 1)]
    [InlineData("2000000", null, 1)]
    [InlineData("many", null, 1)]
    public void StackTraceSampling_ComesFromTheEnvironment_ThenAppContextData(string? environment, string? data, int expected)
    {
        MonitorStartupSettings settings = MonitorStartupSettings.Read(
            name => name == "OFFHEAPTRACKER_MONITOR_STACK_SAMPLING" ? environment : null,
            _ => null,
            name => name == "OffHeapTracker.Monitor.StackTraceSampling" ? data : null);
        Assert.Equal(expected, settings.StackTraceSampling);
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

    [Theory]
    [InlineData(null, null, StackPolicy.Budgeted)]
    [InlineData("every", null, StackPolicy.Every)]
    [InlineData(" NONE ", "every", StackPolicy.None)]
    [InlineData("Budgeted", "none", StackPolicy.Budgeted)]
    [InlineData(null, "every", StackPolicy.Every)]
    [InlineData("sometimes", "none", StackPolicy.None)]
    [InlineData("sometimes", null, StackPolicy.Budgeted)]
    public void Stacks_ComeFromTheEnvironment_ThenTheAppContextData_DefaultingToBudgeted(string? environment, string? appData, StackPolicy expected)
    {
        MonitorStartupSettings settings = MonitorStartupSettings.Read(
            name => name == "OFFHEAPTRACKER_MONITOR_STACKS" ? environment : null,
            _ => null,
            name => name == "OffHeapTracker.Monitor.Stacks" ? appData : null);

        Assert.Equal(expected, settings.Stacks);
    }

    [Theory]
    [InlineData(null, null, true)]
    [InlineData("0", null, false)]
    [InlineData("false", true, false)]
    [InlineData(null, false, false)]
    [InlineData("1", false, true)]
    [InlineData("maybe", null, true)]
    public void FastStacks_AreOnUnlessTheEnvironment_OrTheAppContextSwitch_SayOff(string? environment, bool? appSwitch, bool expected)
    {
        MonitorStartupSettings settings = MonitorStartupSettings.Read(
            name => name == "OFFHEAPTRACKER_MONITOR_FAST_STACKS" ? environment : null,
            name => name == "OffHeapTracker.Monitor.FastStacks" ? appSwitch : null);

        Assert.Equal(expected, settings.FastStacks);
    }

    [Theory]
    [InlineData(null, null, 0.01)]
    [InlineData("0.005", null, 0.005)]
    [InlineData(" 0.5% ", "0.002", 0.005)]
    [InlineData("2 %", null, 0.02)]
    [InlineData(null, "0.002", 0.002)]
    [InlineData("1", null, 1.0)]
    [InlineData("0", "0.002", 0.002)]
    [InlineData("-0.01", null, 0.01)]
    [InlineData("150%", null, 0.01)]
    [InlineData("0.00001", null, 0.01)]
    [InlineData("lots", null, 0.01)]
    [InlineData("0,5", null, 0.01)]
    public void StackBudget_ComesFromTheEnvironment_ThenAppContextData_AsAShareOrAPercentage(string? environment, string? data, double expected)
    {
        MonitorStartupSettings settings = MonitorStartupSettings.Read(
            name => name == "OFFHEAPTRACKER_MONITOR_STACK_BUDGET" ? environment : null,
            _ => null,
            name => name == "OffHeapTracker.Monitor.StackBudget" ? data : null);

        Assert.Equal(expected, settings.StackBudget, precision: 12);
    }

    [Fact]
    public void ApplyEnvironment_SetsTheStackBudget_AndLeavesItWhenTheValueIsNotUnderstood()
    {
        var options = new ResidentBufferMonitorOptions { StackBudget = 0.03 };
        bool enabled = false;
        MonitorStartupSettings.ApplyEnvironment(name => name == "OFFHEAPTRACKER_MONITOR_STACK_BUDGET" ? "0.25%" : null, options, ref enabled);
        Assert.Equal(0.0025, options.StackBudget, precision: 12);

        MonitorStartupSettings.ApplyEnvironment(name => name == "OFFHEAPTRACKER_MONITOR_STACK_BUDGET" ? "half" : null, options, ref enabled);
        Assert.Equal(0.0025, options.StackBudget, precision: 12);
        Assert.False(enabled);
    }
}
