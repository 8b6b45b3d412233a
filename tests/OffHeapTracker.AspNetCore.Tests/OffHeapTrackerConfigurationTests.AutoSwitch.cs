using System.Runtime.CompilerServices;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using OffHeapTracker.AspNetCore.Tests.Support;
using OffHeapTracker.Monitoring;

namespace OffHeapTracker.AspNetCore.Tests;

/// <summary><c>OffHeapTracker:Monitor:AutoSwitch</c>: bound like the other keys, started with the host, stopped with it.</summary>
public sealed partial class OffHeapTrackerConfigurationTests
{
    [Fact]
    public void AutoSwitchSection_BindsEveryRule_UnderTheOptionsNames()
    {
        OffHeapTrackerHostOptions options = BindHostOptions(new()
        {
            ["OffHeapTracker:Monitor:AutoSwitch:InUseGrowthBytes"] = "67108864",
            ["OffHeapTracker:Monitor:AutoSwitch:GrowthWindow"] = "00:30:00",
            ["OffHeapTracker:Monitor:AutoSwitch:OldNormalBuffers"] = "100",
            ["OffHeapTracker:Monitor:AutoSwitch:OldNormalAge"] = "00:02:00",
            ["OffHeapTracker:Monitor:AutoSwitch:SwitchOffAfter"] = "00:15:00",
            ["OffHeapTracker:Monitor:AutoSwitch:CheckInterval"] = "00:00:05",
        });

        MonitorAutoSwitchOptions rules = options.AutoSwitch;
        Assert.Equal(64L << 20, rules.InUseGrowthBytes);
        Assert.Equal(TimeSpan.FromMinutes(30), rules.GrowthWindow);
        Assert.Equal(100, rules.OldNormalBuffers);
        Assert.Equal(TimeSpan.FromMinutes(2), rules.OldNormalAge);
        Assert.Equal(TimeSpan.FromMinutes(15), rules.SwitchOffAfter);
        Assert.Equal(TimeSpan.FromSeconds(5), rules.CheckInterval);
    }

    [Fact]
    public void AutoSwitchSection_WithALongWindowAndNoCheckInterval_ChecksLessOften_AsTheEnvironmentVariablesDo()
    {
        OffHeapTrackerHostOptions options = BindHostOptions(new()
        {
            ["OffHeapTracker:Monitor:AutoSwitch:InUseGrowthBytes"] = "1048576",
            ["OffHeapTracker:Monitor:AutoSwitch:GrowthWindow"] = "2.00:00:00",
        });

        // 2 days at the default 10 s would be 17,280 checks; the switch keeps 4,096 samples.
        Assert.True(options.AutoSwitch.CheckInterval > TimeSpan.FromSeconds(10), $"CheckInterval stayed {options.AutoSwitch.CheckInterval}");
        Assert.True(options.AutoSwitch.GrowthWindow.Ticks / options.AutoSwitch.CheckInterval.Ticks <= MonitorAutoSwitch.MaxSamples);
    }

    [Fact]
    public void NoAutoSwitchSection_SetsNoRule()
    {
        OffHeapTrackerHostOptions options = BindHostOptions(new() { ["OffHeapTracker:Monitor:Enabled"] = "false" });

        Assert.False(options.AutoSwitch.HasRules);
    }

    [Fact]
    public async Task ConfiguredRules_SwitchTheMonitorOnWithTheHost_AndOffAfterSwitchOffAfter_LoggingTheSite()
    {
        var logs = new RecordingLoggerProvider();
        var monitor = new ResidentBufferMonitor(new ResidentBufferMonitorOptions { Stacks = StackPolicy.Every });
        using var pool = new DirectBufferPool(new DirectBufferPoolOptions { Name = "autoswitch", Monitor = monitor });
        await using var host = ConfiguredHost.Build("{}", b =>
        {
            b.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
            {
                ["OffHeapTracker:Monitor:AutoSwitch:OldNormalBuffers"] = "2",
                ["OffHeapTracker:Monitor:AutoSwitch:OldNormalAge"] = "00:00:01",
                ["OffHeapTracker:Monitor:AutoSwitch:SwitchOffAfter"] = "00:00:01",
                ["OffHeapTracker:Monitor:AutoSwitch:CheckInterval"] = "00:00:00.1",
            });
            b.Logging.AddProvider(logs);
            b.Services.AddDirectBufferPool(o => o.Monitor = monitor);
        });
        DirectBuffer[] old = [Keep(pool), Keep(pool)];
        await host.App.StartAsync();
        Assert.False(monitor.IsEnabled);

        // The census sees the two buffers age past 1 s (the monitor is off), and the rule as configured fires.
        await Eventually.WaitForAsync(() => monitor.EnabledReason, reason => reason is not null, "the configured age rule to switch the monitor on");
        Assert.Equal("2 Normal buffers have been out longer than 00:00:01 (threshold 2)", monitor.EnabledReason);
        Assert.Contains(logs.Events, e => e.EventName == "MonitorSwitchedOnAutomatically" && e.Category == typeof(MonitorAutoSwitch).FullName);

        // Recorded from the switch-on: a buffer kept now is the site the switch-off logs before it drops the records.
        DirectBuffer recorded = Keep(pool);
        // The switch disables the monitor, then logs: wait for the log.
        await Eventually.WaitForAsync(() => logs.Events, events => events.Any(e => e.EventName == "MonitorSwitchedOffAutomatically"), "SwitchOffAfter (1 s) to switch the monitor off");
        Assert.False(monitor.IsEnabled);
        (string _, string? _, string switchedOff) = Assert.Single(logs.Events, e => e.EventName == "MonitorSwitchedOffAutomatically");
        Assert.Contains($"{nameof(OffHeapTrackerConfigurationTests)}.{nameof(Keep)}(DirectBufferPool)", switchedOff, StringComparison.Ordinal);

        foreach (DirectBuffer buffer in old)
        {
            buffer.Dispose();
        }

        recorded.Dispose();
    }

    [Fact]
    public async Task StoppingTheHost_StopsItsSwitch()
    {
        var monitor = new ResidentBufferMonitor();
        using var pool = new DirectBufferPool(new DirectBufferPoolOptions { Name = "autoswitch-stop", Monitor = monitor });
        await using var host = ConfiguredHost.Build(
            """{ "OffHeapTracker": { "Monitor": { "AutoSwitch": { "OldNormalBuffers": 1, "OldNormalAge": "00:00:01", "CheckInterval": "01:00:00" } } } }""",
            b => b.Services.AddDirectBufferPool(o => o.Monitor = monitor));
        await host.App.StartAsync();
        MonitorAutoSwitch autoSwitch = Assert.IsType<MonitorAutoSwitch>(HostedService(host).AutoSwitch);
        using DirectBuffer old = Keep(pool);
        await Eventually.WaitForAsync(() => pool.TakeCensus().CountOlderThan(TimeSpan.FromSeconds(1)), count => count == 1, "the kept buffer to age past 1 s");

        await host.App.StopAsync();

        Assert.Null(HostedService(host).AutoSwitch);
        autoSwitch.Check();
        Assert.False(monitor.IsEnabled, "a switch the host stopped still switched the monitor on");
    }

    [Fact]
    public async Task OnTheSharedMonitor_TheConfiguredSwitchIsBufferMonitorAutoSwitch_UntilTheHostStops()
    {
        ResidentBufferMonitor shared = BufferMonitor.Shared;
        MonitorAutoSwitch? before = BufferMonitor.AutoSwitch;
        await using var host = ConfiguredHost.Build(
            """{ "OffHeapTracker": { "Monitor": { "AutoSwitch": { "OldNormalBuffers": 1000000, "OldNormalAge": "7.00:00:00" } } } }""");
        await host.App.StartAsync();

        MonitorAutoSwitch? started = HostedService(host).AutoSwitch;
        Assert.NotNull(started);
        Assert.NotSame(before, started);
        Assert.Same(started, BufferMonitor.AutoSwitch);
        Assert.Same(shared, host.Factory.Monitor);

        await host.App.StopAsync();

        Assert.Null(BufferMonitor.AutoSwitch);
    }

    [Fact]
    public async Task AutoSwitch_OnAMonitorItCannotSwitch_FailsTheStart_NamingTheSection()
    {
        await using var host = ConfiguredHost.Build(
            """{ "OffHeapTracker": { "Monitor": { "AutoSwitch": { "OldNormalBuffers": 10 } } } }""",
            b => b.Services.AddDirectBufferPool(o => o.Monitor = new NoMonitor()));

        OptionsValidationException error = await Assert.ThrowsAsync<OptionsValidationException>(() => host.App.StartAsync());

        Assert.Contains("OffHeapTracker:Monitor:AutoSwitch: the pools report to a NoMonitor", error.Message, StringComparison.Ordinal);
        Assert.Contains("it needs a ResidentBufferMonitor", error.Message, StringComparison.Ordinal);
    }

    private static OffHeapTrackerHostOptions BindHostOptions(Dictionary<string, string?> settings)
    {
        IConfiguration section = new ConfigurationBuilder().AddInMemoryCollection(settings).Build().GetSection("OffHeapTracker");
        var services = new ServiceCollection();
        services.AddDirectBufferPool(section, o => o.Monitor = new ResidentBufferMonitor());
        using ServiceProvider provider = services.BuildServiceProvider();
        return provider.GetRequiredService<IOptions<OffHeapTrackerHostOptions>>().Value;
    }

    private static OffHeapTrackerHostedService HostedService(ConfiguredHost host) =>
        host.App.Services.GetServices<IHostedService>().OfType<OffHeapTrackerHostedService>().Single();

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static DirectBuffer Keep(DirectBufferPool pool) => pool.Rent(4096);

    private sealed class NoMonitor : IBufferMonitor
    {
        public bool IsEnabled => false;

        public bool OnAllocated(in BufferAllocation allocation) => false;

        public void OnReturned(long id)
        {
        }
    }
}
