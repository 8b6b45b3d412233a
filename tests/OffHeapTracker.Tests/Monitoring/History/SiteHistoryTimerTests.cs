using System.Runtime.CompilerServices;
using OffHeapTracker.Monitoring;
using OffHeapTracker.Tests.Support;

namespace OffHeapTracker.Tests.Monitoring.History;

/// <summary>The history's timer must not keep a monitor alive: a timer queue (or a test clock) roots its state.</summary>
[Collection(ProcessWideState.Name)] // collects garbage: kept apart from tests that count finalized leases
public sealed class SiteHistoryTimerTests
{
    [Fact]
    public void EnabledMonitor_NoOneReferences_IsCollected_AndItsTimerStops()
    {
        var clock = new CountingTimeProvider(new ManualTimeProvider());
        WeakReference<ResidentBufferMonitor> monitor = EnabledMonitorNobodyKeeps(clock);
        Assert.Equal(1, clock.LiveTimers);

        Gc.CollectAndFinalize();

        Assert.False(monitor.TryGetTarget(out _), "the history's timer kept the monitor alive");
        clock.Advance(TimeSpan.FromSeconds(10));
        Assert.Equal(1, clock.Ticks);
        Assert.Equal(0, clock.LiveTimers);
    }

    [Fact]
    public void EnabledMonitor_OnTheSystemClock_IsCollected()
    {
        WeakReference<ResidentBufferMonitor> monitor = EnabledMonitorNobodyKeeps(TimeProvider.System);

        Gc.CollectAndFinalize();

        Assert.False(monitor.TryGetTarget(out _), "the history's timer kept the monitor alive");
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static WeakReference<ResidentBufferMonitor> EnabledMonitorNobodyKeeps(TimeProvider clock)
    {
        var monitor = new ResidentBufferMonitor(new ResidentBufferMonitorOptions { TimeProvider = clock });
        monitor.Enable();
        Assert.True(monitor.SampleSites());
        return new WeakReference<ResidentBufferMonitor>(monitor);
    }
}
