namespace OffHeapTracker.Monitoring;

/// <summary>The rules under which a <see cref="MonitorAutoSwitch"/> switches a monitor on (and, optionally, off again): dble's runbook, automated.</summary>
/// <remarks>
/// dble's manual tells the operator to watch the pool's used memory and to switch the monitor on when it is large
/// or keeps growing without falling back off-peak. Each rule here is off until its threshold is set; at least one
/// must be set for the switch to do anything.
/// </remarks>
public sealed class MonitorAutoSwitchOptions
{
    /// <summary>The default <see cref="CheckInterval"/>: 10 seconds.</summary>
    internal static readonly TimeSpan DefaultCheckInterval = TimeSpan.FromSeconds(10);

    private long? _inUseGrowthBytes;
    private TimeSpan _growthWindow = TimeSpan.FromMinutes(10);
    private int? _oldNormalBuffers;
    private TimeSpan _oldNormalAge = TimeSpan.FromMinutes(5);
    private TimeSpan? _switchOffAfter;
    private TimeSpan _checkInterval = DefaultCheckInterval;
    private TimeProvider _timeProvider = TimeProvider.System;

    /// <summary>Gets or sets by how many bytes the pools' in-use memory must grow, without falling back, over <see cref="GrowthWindow"/> to switch the monitor on.</summary>
    /// <value>The default is null: the growth rule is off. From 1 to <see cref="long.MaxValue"/>.</value>
    /// <remarks>
    /// "Without falling back" is measured on the low points: the lowest in-use figure of the window's second half must
    /// exceed the lowest of its first half by this much. A busy but healthy service swings up and down and comes
    /// back to the same floor; a leak raises the floor. A large, flat figure never fires.
    /// </remarks>
    public long? InUseGrowthBytes
    {
        get => _inUseGrowthBytes;
        set
        {
            if (value is { } bytes)
            {
                Guard.InRange(bytes, 1, long.MaxValue, nameof(InUseGrowthBytes));
            }

            _inUseGrowthBytes = value;
        }
    }

    /// <summary>Gets or sets the window the growth rule looks back over.</summary>
    /// <value>The default is 10 minutes. From two <see cref="CheckInterval"/>s to 7 days.</value>
    public TimeSpan GrowthWindow
    {
        get => _growthWindow;
        set
        {
            Guard.InRange(value, TimeSpan.FromSeconds(2), TimeSpan.FromDays(7), nameof(GrowthWindow));
            _growthWindow = value;
        }
    }

    /// <summary>Gets or sets how many <see cref="BufferType.Normal"/> buffers older than <see cref="OldNormalAge"/> switch the monitor on (from the pools' age census).</summary>
    /// <value>The default is null: the age rule is off. From 1 to <see cref="int.MaxValue"/>.</value>
    public int? OldNormalBuffers
    {
        get => _oldNormalBuffers;
        set
        {
            if (value is { } count)
            {
                Guard.InRange(count, 1, int.MaxValue, nameof(OldNormalBuffers));
            }

            _oldNormalBuffers = value;
        }
    }

    /// <summary>Gets or sets the age past which a <see cref="BufferType.Normal"/> buffer counts for <see cref="OldNormalBuffers"/>.</summary>
    /// <value>The default is 5 minutes. From 1 second to 7 days.</value>
    public TimeSpan OldNormalAge
    {
        get => _oldNormalAge;
        set
        {
            Guard.InRange(value, TimeSpan.FromSeconds(1), TimeSpan.FromDays(7), nameof(OldNormalAge));
            _oldNormalAge = value;
        }
    }

    /// <summary>Gets or sets how long after an automatic switch-on the monitor is switched off again; null to leave it on.</summary>
    /// <value>The default is null. From 1 second to 7 days.</value>
    /// <remarks>
    /// Switching off drops every record, so the switch logs the top leak sites first. Only a switch-on this switch
    /// made is undone: a monitor someone enabled by hand stays on. After switching off, the switch waits as long
    /// again before its rules may switch the monitor back on, so a leak that goes on keeps the monitor on at most
    /// half the time, with a fresh report each round.
    /// </remarks>
    public TimeSpan? SwitchOffAfter
    {
        get => _switchOffAfter;
        set
        {
            if (value is { } after)
            {
                Guard.InRange(after, TimeSpan.FromSeconds(1), TimeSpan.FromDays(7), nameof(SwitchOffAfter));
            }

            _switchOffAfter = value;
        }
    }

    /// <summary>Gets or sets how often the rules are evaluated.</summary>
    /// <value>The default is 10 seconds. From 100 milliseconds to 1 hour.</value>
    public TimeSpan CheckInterval
    {
        get => _checkInterval;
        set
        {
            Guard.InRange(value, TimeSpan.FromMilliseconds(100), TimeSpan.FromHours(1), nameof(CheckInterval));
            _checkInterval = value;
        }
    }

    /// <summary>Gets or sets the clock that spaces the checks and measures the window.</summary>
    /// <value>The default is <see cref="TimeProvider.System"/>.</value>
    public TimeProvider TimeProvider
    {
        get => _timeProvider;
        set => _timeProvider = value ?? throw new ArgumentNullException(nameof(TimeProvider));
    }

    /// <summary>Gets a value indicating whether any rule is set.</summary>
    public bool HasRules => _inUseGrowthBytes is not null || _oldNormalBuffers is not null;
}
