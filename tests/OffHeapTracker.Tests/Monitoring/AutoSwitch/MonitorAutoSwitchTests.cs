using OffHeapTracker.Monitoring;
using OffHeapTracker.Tests.Support;

namespace OffHeapTracker.Tests.Monitoring.AutoSwitch;

public sealed class MonitorAutoSwitchTests : IDisposable
{
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(5);
    private readonly ManualTimeProvider _time = new();
    private readonly CapturingLoggerFactory _logs = new();

    [Fact]
    public void GrowingInUse_WhoseLowPointRises_SwitchesTheMonitorOn_WithTheReasonLogged()
    {
        var monitor = new ResidentBufferMonitor();
        using DirectBufferPool pool = Pools.Create(monitor);
        using MonitorAutoSwitch autoSwitch = Create(monitor, o => o.InUseGrowthBytes = 64 * 1024);
        var kept = new List<DirectBuffer>();

        // A leak under a busy load: every step swings up by a burst and back, and keeps one more 16 KiB buffer.
        for (int step = 0; step < 12 && !monitor.IsEnabled; step++)
        {
            kept.Add(pool.Rent(16 * 1024));
            using (pool.Rent(256 * 1024))
            {
                _time.Advance(Interval / 2);
            }

            _time.Advance(Interval / 2);
        }

        Assert.True(monitor.IsEnabled, "a floor rising by 16 KiB every 5 s never switched the monitor on");
        Assert.StartsWith("in-use memory grew without falling back", monitor.EnabledReason, StringComparison.Ordinal);
        Assert.Equal(monitor.EnabledReason, autoSwitch.LastReason);
        Assert.Equal(_time.GetUtcNow(), autoSwitch.LastSwitchedOn);
        LogEntry entry = Assert.Single(_logs.WithEvent("MonitorSwitchedOnAutomatically"));
        Assert.Equal(13, entry.EventId.Id);
        Assert.Contains("low point rose", entry.Message, StringComparison.Ordinal);

        // From now on buffers are recorded, the ones that predate the switch-on are not.
        kept.Add(pool.Rent(16 * 1024));
        Assert.Equal(1, monitor.Count);
        kept.ForEach(k => k.Dispose());
    }

    [Fact]
    public void LargeButFlatInUse_WithBusySwings_NeverSwitchesTheMonitorOn()
    {
        var monitor = new ResidentBufferMonitor();
        using DirectBufferPool pool = Pools.Create(monitor);
        using MonitorAutoSwitch autoSwitch = Create(monitor, o => o.InUseGrowthBytes = 64 * 1024);

        // A connection's resident read buffers: big and flat. Over them, bursts that come and go.
        var resident = Enumerable.Range(0, 64).Select(_ => pool.Rent(64 * 1024)).ToList();
        for (int step = 0; step < 40; step++)
        {
            using (pool.Rent((step % 4) * 128 * 1024))
            {
                _time.Advance(Interval / 2);
            }

            _time.Advance(Interval / 2);
        }

        Assert.False(monitor.IsEnabled, monitor.EnabledReason);
        Assert.Null(autoSwitch.LastReason);
        Assert.Empty(_logs.WithEvent("MonitorSwitchedOnAutomatically"));
        resident.ForEach(r => r.Dispose());
    }

    [Theory]
    [InlineData(3, true)]
    [InlineData(4, false)]
    public void OldNormalBuffers_FromTheCensus_SwitchTheMonitorOn_PoolBuffersDoNotCount(int threshold, bool expectOn)
    {
        var monitor = new ResidentBufferMonitor();
        using DirectBufferPool pool = Pools.Create(monitor, o => o.TimeProvider = _time);
        using MonitorAutoSwitch autoSwitch = Create(monitor, o =>
        {
            o.OldNormalBuffers = threshold;
            o.OldNormalAge = TimeSpan.FromMinutes(5);
        });
        var old = Enumerable.Range(0, 3).Select(_ => pool.Rent(4096)).Concat(Enumerable.Range(0, 5).Select(_ => pool.Rent(4096, BufferType.Pool))).ToList();
        _time.Advance(TimeSpan.FromMinutes(4));
        var young = Enumerable.Range(0, 5).Select(_ => pool.Rent(4096)).ToList();
        _time.Advance(TimeSpan.FromMinutes(1) + Interval);

        Assert.Equal(expectOn, monitor.IsEnabled);
        if (expectOn)
        {
            Assert.Equal("3 Normal buffers have been out longer than 00:05:00 (threshold 3)", monitor.EnabledReason);
        }

        old.Concat(young).ToList().ForEach(b => b.Dispose());
    }

    [Fact]
    public void SwitchOffAfter_DisablesOnlyWhatTheSwitchEnabled_LoggingTheTopSitesFirst()
    {
        var monitor = new ResidentBufferMonitor(new ResidentBufferMonitorOptions { TimeProvider = _time });
        using DirectBufferPool pool = Pools.Create(monitor, o => o.TimeProvider = _time);
        using MonitorAutoSwitch autoSwitch = Create(monitor, o =>
        {
            o.OldNormalBuffers = 1;
            o.OldNormalAge = TimeSpan.FromSeconds(10);
            o.SwitchOffAfter = TimeSpan.FromMinutes(1);
        });
        DirectBuffer old = pool.Rent(4096);
        _time.Advance(TimeSpan.FromSeconds(15));
        Assert.True(monitor.IsEnabled);
        DirectBuffer recorded = LeakSomething(pool);

        _time.Advance(TimeSpan.FromMinutes(1) + Interval);

        Assert.False(monitor.IsEnabled);
        LogEntry off = Assert.Single(_logs.WithEvent("MonitorSwitchedOffAutomatically"));
        Assert.Equal(14, off.EventId.Id);
        Assert.Contains("dropping 1 records", off.Message, StringComparison.Ordinal);
        Assert.Contains(nameof(LeakSomething), off.Message, StringComparison.Ordinal);

        // Off as long as it was on, then re-armed: the old buffer is still there, so the rule fires again...
        _time.Advance(TimeSpan.FromSeconds(50));
        Assert.False(monitor.IsEnabled);
        _time.Advance(TimeSpan.FromSeconds(15));
        Assert.True(monitor.IsEnabled);

        // ...but a monitor someone switched on by hand is never switched off by the switch.
        monitor.Disable();
        monitor.Enable();
        _time.Advance(TimeSpan.FromMinutes(3));
        Assert.True(monitor.IsEnabled);
        Assert.Equal("manual", monitor.EnabledReason);
        old.Dispose();
        recorded.Dispose();
    }

    [Fact]
    public void Options_RejectValuesOutOfRange_NamingTheOptionAndTheRange()
    {
        var options = new MonitorAutoSwitchOptions();
        Assert.Equal("InUseGrowthBytes", Assert.Throws<ArgumentOutOfRangeException>(() => options.InUseGrowthBytes = 0).ParamName);
        Assert.Equal("OldNormalBuffers", Assert.Throws<ArgumentOutOfRangeException>(() => options.OldNormalBuffers = -1).ParamName);
        Assert.Equal("GrowthWindow", Assert.Throws<ArgumentOutOfRangeException>(() => options.GrowthWindow = TimeSpan.FromSeconds(1)).ParamName);
        Assert.Equal("CheckInterval", Assert.Throws<ArgumentOutOfRangeException>(() => options.CheckInterval = TimeSpan.Zero).ParamName);
        ArgumentOutOfRangeException age = Assert.Throws<ArgumentOutOfRangeException>(() => options.OldNormalAge = TimeSpan.FromDays(8));
        Assert.Contains("7.00:00:00", age.Message, StringComparison.Ordinal);

        var monitor = new ResidentBufferMonitor();
        Assert.Equal("options", Assert.Throws<ArgumentException>(() => new MonitorAutoSwitch(monitor, new MonitorAutoSwitchOptions())).ParamName);
        var tooLong = new MonitorAutoSwitchOptions { InUseGrowthBytes = 1, CheckInterval = TimeSpan.FromMilliseconds(100), GrowthWindow = TimeSpan.FromHours(1) };
        Assert.Contains("4096 checks", Assert.Throws<ArgumentException>(() => new MonitorAutoSwitch(monitor, tooLong)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void StartupVariables_SetTheRules_AndIgnoreWhatIsOutOfRange()
    {
        var environment = new Dictionary<string, string>
        {
            ["OFFHEAPTRACKER_MONITOR_AUTO_GROWTH_BYTES"] = "67108864",
            ["OFFHEAPTRACKER_MONITOR_AUTO_GROWTH_WINDOW_SECONDS"] = "86400",
            ["OFFHEAPTRACKER_MONITOR_AUTO_OLD_NORMAL_BUFFERS"] = "0",
            ["OFFHEAPTRACKER_MONITOR_AUTO_OLD_NORMAL_AGE_SECONDS"] = "soon",
            ["OFFHEAPTRACKER_MONITOR_AUTO_OFF_AFTER_SECONDS"] = "1800",
        };

        MonitorAutoSwitchOptions options = AutoSwitchStartupSettings.Read(name => environment.GetValueOrDefault(name))!;

        Assert.Equal(64L * 1024 * 1024, options.InUseGrowthBytes);
        Assert.Equal(TimeSpan.FromDays(1), options.GrowthWindow);
        Assert.True(options.GrowthWindow.Ticks / options.CheckInterval.Ticks <= MonitorAutoSwitch.MaxSamples, "a day's window must fit the samples");
        Assert.Null(options.OldNormalBuffers);
        Assert.Equal(TimeSpan.FromMinutes(5), options.OldNormalAge);
        Assert.Equal(TimeSpan.FromMinutes(30), options.SwitchOffAfter);
        Assert.Null(AutoSwitchStartupSettings.Read(_ => null));
    }

    [Fact]
    public void StartupVariables_OverAHostsRules_WinSettingBySetting()
    {
        var environment = new Dictionary<string, string>
        {
            ["OFFHEAPTRACKER_MONITOR_AUTO_OLD_NORMAL_BUFFERS"] = "7",
            ["OFFHEAPTRACKER_MONITOR_AUTO_GROWTH_WINDOW_SECONDS"] = "172800",
            ["OFFHEAPTRACKER_MONITOR_AUTO_OFF_AFTER_SECONDS"] = "never",
        };
        var options = new MonitorAutoSwitchOptions
        {
            InUseGrowthBytes = 1 << 20,
            OldNormalBuffers = 100,
            OldNormalAge = TimeSpan.FromMinutes(2),
            SwitchOffAfter = TimeSpan.FromMinutes(15),
            CheckInterval = TimeSpan.FromSeconds(1),
        };

        AutoSwitchStartupSettings.ApplyEnvironment(name => environment.GetValueOrDefault(name), options);

        Assert.Equal(7, options.OldNormalBuffers);
        Assert.Equal(TimeSpan.FromDays(2), options.GrowthWindow);
        Assert.Equal(1 << 20, options.InUseGrowthBytes);
        Assert.Equal(TimeSpan.FromMinutes(2), options.OldNormalAge);
        Assert.Equal(TimeSpan.FromMinutes(15), options.SwitchOffAfter);

        // The operator's window wins over the host's interval: checks are spaced out to fit it.
        Assert.True(options.GrowthWindow.Ticks / options.CheckInterval.Ticks <= MonitorAutoSwitch.MaxSamples, $"{options.CheckInterval} is too short for a 2-day window");
    }

    public void Dispose() => _logs.Dispose();

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static DirectBuffer LeakSomething(DirectBufferPool pool) => pool.Rent(4096);

    private MonitorAutoSwitch Create(ResidentBufferMonitor monitor, Action<MonitorAutoSwitchOptions> configure)
    {
        var options = new MonitorAutoSwitchOptions { TimeProvider = _time, CheckInterval = Interval, GrowthWindow = TimeSpan.FromSeconds(40) };
        configure(options);
        return new MonitorAutoSwitch(monitor, options, _logs);
    }
}
