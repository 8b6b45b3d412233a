using System.Buffers;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using OffHeapTracker.AspNetCore.Tests.Support;
using OffHeapTracker.Monitoring;

namespace OffHeapTracker.AspNetCore.Tests;

/// <summary>The <c>OffHeapTracker</c> configuration section, named options per owner, validation, and the hosted service.</summary>
[Collection(KestrelHosts.Name)]
public sealed partial class OffHeapTrackerConfigurationTests
{
    private const long MiB = 1024 * 1024;

    public static TheoryData<string, string, string> BadSettings => new()
    {
        { """{ "Pools": { "kestrel": { "CapacityBytes": -1 } } }""", "OffHeapTracker:Pools:kestrel:CapacityBytes", "between 0 and" },
        { """{ "MaxPooledBufferSize": 1000 }""", "OffHeapTracker:MaxPooledBufferSize", "power of two between 512 and 16777216" },
        { """{ "CapacityBytes": "lots" }""", "OffHeapTracker:CapacityBytes", "must be a whole number of bytes from 0" },
        { """{ "Capacity": 5 }""", "OffHeapTracker:Capacity: unknown key", "CapacityBytes" },
        { """{ "Pools": { "kestrel": { "Monitor": 1 } } }""", "OffHeapTracker:Pools:kestrel:Monitor: unknown key", "TrimAfter" },
        { """{ "TrimAfter": "00:00:00.01" }""", "OffHeapTracker:TrimAfter", "TrimAfter must be between" },
        { """{ "Backing": "Disk" }""", "OffHeapTracker:Backing", "Native, PinnedArray" },
        { """{ "Monitor": { "Stacks": "sometimes" } }""", "OffHeapTracker:Monitor:Stacks", "Budgeted, Every, None" },
        { """{ "Monitor": { "StackTraceSampling": 0 } }""", "OffHeapTracker:Monitor:StackTraceSampling", "between 1 and 1000000" },
        { """{ "Monitor": { "Enable": true } }""", "OffHeapTracker:Monitor:Enable: unknown key", "Enabled" },
        { """{ "ShutdownTimeout": "01:00:00" }""", "OffHeapTracker:ShutdownTimeout", "between 00:00:00 and 00:05:00" },
        { """{ "Monitor": { "AutoSwitch": { "OldNormalBuffers": 0 } } }""", "OffHeapTracker:Monitor:AutoSwitch:OldNormalBuffers", "between 1 and 2147483647" },
        { """{ "Monitor": { "AutoSwitch": { "InUseGrowthBytes": "64MB" } } }""", "OffHeapTracker:Monitor:AutoSwitch:InUseGrowthBytes", "a whole number of bytes from 1" },
        { """{ "Monitor": { "AutoSwitch": { "OldNormalBuffers": 5, "OldNormalAge": "00:00:00.5" } } }""", "OffHeapTracker:Monitor:AutoSwitch:OldNormalAge", "between 00:00:01 and 7.00:00:00" },
        { """{ "Monitor": { "AutoSwitch": { "OldNormalBuffers": 5, "SwitchOffAfter": "8.00:00:00" } } }""", "OffHeapTracker:Monitor:AutoSwitch:SwitchOffAfter", "between 00:00:01 and 7.00:00:00" },
        { """{ "Monitor": { "AutoSwitch": { "OldNormalBuffers": 5, "CheckInterval": "soon" } } }""", "OffHeapTracker:Monitor:AutoSwitch:CheckInterval", "a duration from 00:00:00.1 to 01:00:00" },
        { """{ "Monitor": { "AutoSwitch": { "OldBuffers": 5 } } }""", "OffHeapTracker:Monitor:AutoSwitch:OldBuffers: unknown key", "OldNormalBuffers" },
        { """{ "Monitor": { "AutoSwitch": { "SwitchOffAfter": "00:30:00" } } }""", "OffHeapTracker:Monitor:AutoSwitch: no rule is set", "set InUseGrowthBytes, OldNormalBuffers or both" },
        {
            """{ "Monitor": { "AutoSwitch": { "InUseGrowthBytes": 1048576, "GrowthWindow": "01:00:00", "CheckInterval": "00:00:00.1" } } }""",
            "OffHeapTracker:Monitor:AutoSwitch:GrowthWindow", "at most 4096 times CheckInterval"
        },
    };

    [Fact]
    public async Task AppSettings_SetEveryPoolsCapacity_AndOneOwnersOverIt()
    {
        await using var host = ConfiguredHost.Build(
            """{ "OffHeapTracker": { "CapacityBytes": 8388608, "Pools": { "kestrel": { "CapacityBytes": 1048576, "TrimAfter": "Infinite" } } } }""",
            b => b.Services.AddDirectBufferPool(o => o.Monitor = new ResidentBufferMonitor()));
        await host.App.StartAsync();

        List<DirectBufferPool> kestrel = [.. host.Factory.Pools.Where(p => p.Name == "kestrel")];
        Assert.NotEmpty(kestrel);
        Assert.All(kestrel, p => Assert.Equal(1 * MiB, p.GetStatistics().CapacityBytes));
        using var app = (DirectBufferPool)host.Factory.Create(new MemoryPoolOptions { Owner = "app" });
        Assert.Equal(8 * MiB, app.GetStatistics().CapacityBytes);
    }

    [Theory]
    [MemberData(nameof(BadSettings))]
    public async Task BadConfiguration_FailsTheStart_NamingTheKeyAndWhatItMayBe(string section, string key, string allowed)
    {
        await using var host = ConfiguredHost.Build($$"""{ "OffHeapTracker": {{section}} }""", b => b.Services.AddDirectBufferPool(o => o.Monitor = new ResidentBufferMonitor()));

        OptionsValidationException error = await Assert.ThrowsAsync<OptionsValidationException>(() => host.App.StartAsync());

        Assert.Contains(key, error.Message, StringComparison.Ordinal);
        Assert.Contains(allowed, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void NamedOptions_ConfigureOnlyTheirOwner()
    {
        var services = new ServiceCollection();
        services.AddDirectBufferPool(o => o.Monitor = new ResidentBufferMonitor());
        services.Configure<DirectBufferPoolOptions>("kestrel", o => o.CapacityBytes = 1 * MiB);

        using ServiceProvider provider = services.BuildServiceProvider();
        IMemoryPoolFactory<byte> factory = provider.GetRequiredService<IMemoryPoolFactory<byte>>();
        using var kestrel = (DirectBufferPool)factory.Create(new MemoryPoolOptions { Owner = "kestrel" });
        using var other = (DirectBufferPool)factory.Create(new MemoryPoolOptions { Owner = "app" });

        Assert.Equal(1 * MiB, kestrel.GetStatistics().CapacityBytes);
        Assert.Equal(DirectBufferPoolOptions.DefaultCapacityBytes, other.GetStatistics().CapacityBytes);
        Assert.Equal("kestrel", kestrel.Name);
        Assert.Equal(BufferBacking.PinnedArray, other.Backing);
    }

    [Fact]
    public void ConfigurationThenCallbacksThenPostConfigure_InThatOrder()
    {
        var services = new ServiceCollection();
        IConfiguration section = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["OffHeapTracker:CapacityBytes"] = (8 * MiB).ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["OffHeapTracker:MaxPooledBufferSize"] = "65536",
        }).Build().GetSection("OffHeapTracker");
        services.PostConfigureAll<DirectBufferPoolOptions>(o => o.CapacityBytes /= 2);
        services.AddDirectBufferPool(section, o =>
        {
            o.Monitor = new ResidentBufferMonitor();
            o.CapacityBytes -= 2 * MiB;
        });

        using ServiceProvider provider = services.BuildServiceProvider();
        using var pool = (DirectBufferPool)provider.GetRequiredService<IMemoryPoolFactory<byte>>().Create();

        // 8 MiB from the section, less 2 MiB in the callback, halved after everything: 3 MiB.
        Assert.Equal(3 * MiB, pool.GetStatistics().CapacityBytes);
        Assert.Equal(65536, pool.MaxPooledBufferSize);
    }

    [Fact]
    public async Task AValidatorOfTheApplications_FailsTheStart_ForKestrelsOptions()
    {
        await using var host = ConfiguredHost.Build("{}", b =>
        {
            b.Services.AddDirectBufferPool(o => o.Monitor = new ResidentBufferMonitor());
            b.Services.AddOptions<DirectBufferPoolOptions>("kestrel").Validate(o => o.CapacityBytes <= 64 * MiB, "Kestrel's pools must stay within 64 MiB.");
        });

        OptionsValidationException error = await Assert.ThrowsAsync<OptionsValidationException>(() => host.App.StartAsync());

        Assert.Contains("Kestrel's pools must stay within 64 MiB.", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AFactoryOutsideAHost_ThrowsTheValidationError_WhenThePoolIsCreated()
    {
        var services = new ServiceCollection();
        services.AddDirectBufferPool(o => o.Monitor = new ResidentBufferMonitor());
        services.AddOptions<DirectBufferPoolOptions>("kestrel").Validate(o => o.CapacityBytes == 0, "must be zero");

        using ServiceProvider provider = services.BuildServiceProvider();
        IMemoryPoolFactory<byte> factory = provider.GetRequiredService<IMemoryPoolFactory<byte>>();

        Assert.Throws<OptionsValidationException>(() => factory.Create(new MemoryPoolOptions { Owner = "kestrel" }));
        using MemoryPool<byte> other = factory.Create(new MemoryPoolOptions { Owner = "other" });
    }

    [Fact]
    public async Task MonitorSection_SwitchesTheSharedMonitor_AndItLogsThroughTheHost()
    {
        ResidentBufferMonitor shared = BufferMonitor.Shared;
        shared.Disable();
        var logs = new RecordingLoggerProvider();
        try
        {
            await using var host = ConfiguredHost.Build(
                """{ "OffHeapTracker": { "Monitor": { "Enabled": true, "RecordPool": false } } }""",
                b => b.Logging.AddProvider(logs));
            await host.App.StartAsync();

            Assert.Same(shared, host.Factory.Monitor);
            Assert.True(shared.IsEnabled);
            Assert.False(shared.RecordPool);
            Assert.Contains(logs.Events, e => e.EventName == "MonitorEnabled" && e.Category == typeof(ResidentBufferMonitor).FullName);

            // Created before this host, the shared monitor keeps its stack policy; the keys it could not take are
            // named (no key set here: nothing to report).
            Assert.Empty(host.Factory.MonitorKeysNotApplied);
        }
        finally
        {
            shared.Disable();
            shared.RecordPool = true;
        }
    }

    [Fact]
    public async Task MonitorKeysTheSharedMonitorCannotTakeAnyMore_AreLogged()
    {
        _ = BufferMonitor.Shared;
        var logs = new RecordingLoggerProvider();
        string other = BufferMonitor.Shared.Stacks == StackPolicy.None ? "Every" : "None";
        await using var host = ConfiguredHost.Build($$"""{ "OffHeapTracker": { "Monitor": { "Stacks": "{{other}}" } } }""", b => b.Logging.AddProvider(logs));
        await host.App.StartAsync();

        Assert.Equal(["Stacks"], host.Factory.MonitorKeysNotApplied);
        Assert.Contains(logs.Events, e => e.EventName == "MonitorKeysNotApplied" && e.Message.Contains("Stacks", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Stopping_WaitsBoundedForBuffers_ThenLogsWhatIsStillOut()
    {
        var logs = new RecordingLoggerProvider();
        var monitor = new ResidentBufferMonitor(new ResidentBufferMonitorOptions { Stacks = StackPolicy.Every });
        monitor.Enable();
        await using var host = ConfiguredHost.Build(
            """{ "OffHeapTracker": { "ShutdownTimeout": "00:00:00.2" } }""",
            b =>
            {
                b.Logging.AddProvider(logs);
                b.Services.AddDirectBufferPool(o => o.Monitor = monitor);
            });
        await host.App.StartAsync();
        MemoryPool<byte> pool = host.Factory.Create(new MemoryPoolOptions { Owner = "app" });
        IMemoryOwner<byte> kept = pool.Rent(100);

        await host.App.StopAsync();

        (string _, string? _, string message) = Assert.Single(logs.Events, e => e.EventName == "BuffersOutAtShutdown");
        Assert.Contains("Pool 'app' has 1 lease outstanding", message, StringComparison.Ordinal);
        Assert.Contains(nameof(Stopping_WaitsBoundedForBuffers_ThenLogsWhatIsStillOut), message, StringComparison.Ordinal);
        kept.Dispose();
    }

    [Fact]
    public async Task Stopping_WithEverythingBack_LogsNothing()
    {
        var logs = new RecordingLoggerProvider();
        await using var host = ConfiguredHost.Build("{}", b =>
        {
            b.Logging.AddProvider(logs);
            b.Services.AddDirectBufferPool(o => o.Monitor = new ResidentBufferMonitor());
        });
        await host.App.StartAsync();
        MemoryPool<byte> pool = host.Factory.Create(new MemoryPoolOptions { Owner = "app" });
        pool.Rent(100).Dispose();

        await host.App.StopAsync();

        Assert.DoesNotContain(logs.Events, e => e.EventName == "BuffersOutAtShutdown");
    }
}
