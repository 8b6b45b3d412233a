using OffHeapTracker.Monitoring;

namespace OffHeapTracker.AspNetCore;

/// <summary>Settings for the shared monitor and the hosted service that <c>AddDirectBufferPool</c> registers; bound from the <c>OffHeapTracker</c> section (<c>Monitor</c>, <c>ShutdownTimeout</c>).</summary>
/// <remarks>
/// Applied when the host starts. Where an <c>OFFHEAPTRACKER_MONITOR*</c> environment variable is set, it wins over
/// these settings: it is the operator's override. <see cref="Monitor"/>'s settings that a monitor fixes at creation
/// (<see cref="ResidentBufferMonitorOptions.Stacks"/>, depths, bounds) apply only if nothing used
/// <see cref="BufferMonitor.Shared"/> before the host started; otherwise the hosted service logs which keys it could
/// not apply.
/// </remarks>
public sealed class OffHeapTrackerHostOptions
{
    /// <summary>The default <see cref="ShutdownTimeout"/>: 5 seconds.</summary>
    public static readonly TimeSpan DefaultShutdownTimeout = TimeSpan.FromSeconds(5);

    private TimeSpan _shutdownTimeout = DefaultShutdownTimeout;

    /// <summary>Gets or sets a value indicating whether the shared monitor records from the start (<c>OffHeapTracker:Monitor:Enabled</c>).</summary>
    /// <value>The default is null: left as the startup switches set it (off unless <c>OFFHEAPTRACKER_MONITOR=1</c>).</value>
    public bool? MonitorEnabled { get; set; }

    /// <summary>Gets the settings the shared monitor is created with (<c>OffHeapTracker:Monitor:*</c>): stack policy, sampling, depth, bounds, <c>RecordPool</c>.</summary>
    /// <remarks>Its logger and meter factories are replaced by the host's.</remarks>
    public ResidentBufferMonitorOptions Monitor { get; } = new();

    /// <summary>Gets the rules under which the monitor is switched on automatically (<c>OffHeapTracker:Monitor:AutoSwitch:*</c>); with no rule set, nothing is started.</summary>
    /// <remarks>
    /// When the host starts, a <see cref="MonitorAutoSwitch"/> with these rules watches the monitor the pools report to:
    /// the shared one (the switch is then <see cref="BufferMonitor.AutoSwitch"/>, and an
    /// <c>OFFHEAPTRACKER_MONITOR_AUTO_*</c> environment variable, where set, wins over its setting), or a
    /// <see cref="ResidentBufferMonitor"/> set through the pools' options. It stops when the host stops.
    /// </remarks>
    public MonitorAutoSwitchOptions AutoSwitch { get; } = new();

    /// <summary>Gets or sets how long the hosted service waits, when the host stops, for the pools' buffers to come back before it logs what is still out (<c>OffHeapTracker:ShutdownTimeout</c>).</summary>
    /// <value>The default is 5 seconds; from zero to 5 minutes. Zero logs what is out without waiting.</value>
    /// <exception cref="ArgumentOutOfRangeException">The value is negative or longer than 5 minutes.</exception>
    public TimeSpan ShutdownTimeout
    {
        get => _shutdownTimeout;
        set
        {
            if (value < TimeSpan.Zero || value > TimeSpan.FromMinutes(5))
            {
                throw new ArgumentOutOfRangeException(nameof(ShutdownTimeout), value, "ShutdownTimeout must be between 00:00:00 and 00:05:00.");
            }

            _shutdownTimeout = value;
        }
    }

    /// <summary>Gets the configuration keys under <c>Monitor</c> that set something, to name the ones that could not be applied to an existing monitor.</summary>
    internal List<string> MonitorKeysSet { get; } = [];
}
