using OffHeapTracker.Monitoring;

namespace OffHeapTracker.Tests.Support;

/// <summary>Builds pools wired to a private monitor, so tests never touch the process-wide one.</summary>
internal static class Pools
{
    public static DirectBufferPool Create(IBufferMonitor monitor, Action<DirectBufferPoolOptions>? configure = null)
    {
        var options = new DirectBufferPoolOptions { Monitor = monitor, Name = "test" };
        configure?.Invoke(options);
        return new DirectBufferPool(options);
    }

    public static ResidentBufferMonitor EnabledMonitor(ManualTimeProvider? time = null, Action<ResidentBufferMonitorOptions>? configure = null)
    {
        var options = new ResidentBufferMonitorOptions();
        if (time is not null)
        {
            options.TimeProvider = time;
        }

        configure?.Invoke(options);
        var monitor = new ResidentBufferMonitor(options);
        monitor.Enable();
        return monitor;
    }
}
