using System.Globalization;
using System.Text;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using OffHeapTracker.Diagnostics;

namespace OffHeapTracker.Monitoring;

/// <summary>Switches a monitor on when the pools that report to it show dble's leak signs, and optionally off again: the runbook, automated.</summary>
/// <remarks>
/// <para>
/// Every <see cref="MonitorAutoSwitchOptions.CheckInterval"/> it reads the pools that report to its monitor (their
/// statistics, and their age census, which works with the monitor off) and applies the rules of its options: the
/// in-use memory's floor rose by <see cref="MonitorAutoSwitchOptions.InUseGrowthBytes"/> over
/// <see cref="MonitorAutoSwitchOptions.GrowthWindow"/>, or more than
/// <see cref="MonitorAutoSwitchOptions.OldNormalBuffers"/> Normal buffers are older than
/// <see cref="MonitorAutoSwitchOptions.OldNormalAge"/>. When one holds and the monitor is off, it switches it on with
/// the rule as <see cref="ResidentBufferMonitor.EnabledReason"/> and logs it (event 13). Buffers rented before then
/// are not recorded: the census still counts them, which is how the rules saw them.
/// </para>
/// <para>
/// Thread-safe. A check never throws: a failure is logged (event 15) and the next check tries again. Its memory is
/// bounded: one in-use figure per check over the window, at most <see cref="MaxSamples"/>.
/// </para>
/// </remarks>
public sealed class MonitorAutoSwitch : IDisposable
{
    /// <summary>The most in-use samples kept: <see cref="MonitorAutoSwitchOptions.GrowthWindow"/> may span at most this many checks.</summary>
    public const int MaxSamples = 4096;

    private readonly ResidentBufferMonitor _monitor;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly long? _growthBytes;
    private readonly TimeSpan _window;
    private readonly int? _oldCount;
    private readonly TimeSpan _oldAge;
    private readonly TimeSpan? _switchOffAfter;
    private readonly Lock _lock = new();
    private readonly Queue<(long Timestamp, long InUseBytes)> _samples = new();
    private readonly ITimer _timer;

    // Guarded by _lock.
    private long _windowStart;
    private long _switchedOnAt;
    private long _coolDownUntil;
    private string? _lastReason;
    private DateTimeOffset? _lastSwitchedOn;
    private bool _disposed;

    /// <summary>Starts checking the rules against the pools that report to <paramref name="monitor"/>.</summary>
    /// <param name="monitor">The monitor to switch.</param>
    /// <param name="options">The rules; at least one must be set.</param>
    /// <param name="loggerFactory">Where switch-ons and switch-offs are logged; null for none.</param>
    /// <exception cref="ArgumentNullException"><paramref name="monitor"/> or <paramref name="options"/> is null.</exception>
    /// <exception cref="ArgumentException">No rule is set, or the growth window spans more than <see cref="MaxSamples"/> checks.</exception>
    public MonitorAutoSwitch(ResidentBufferMonitor monitor, MonitorAutoSwitchOptions options, ILoggerFactory? loggerFactory = null)
    {
        ArgumentNullException.ThrowIfNull(monitor);
        ArgumentNullException.ThrowIfNull(options);
        if (!options.HasRules)
        {
            throw new ArgumentException("Set InUseGrowthBytes, OldNormalBuffers or both: with no rule the switch would never fire.", nameof(options));
        }

        if (options.InUseGrowthBytes is not null && options.GrowthWindow.Ticks / options.CheckInterval.Ticks > MaxSamples)
        {
            throw new ArgumentException(
                $"GrowthWindow ({options.GrowthWindow}) must span at most {MaxSamples} checks of CheckInterval ({options.CheckInterval}); lengthen CheckInterval or shorten the window.",
                nameof(options));
        }

        _monitor = monitor;
        _time = options.TimeProvider;
        _logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger<MonitorAutoSwitch>();
        _growthBytes = options.InUseGrowthBytes;
        _window = options.GrowthWindow;
        _oldCount = options.OldNormalBuffers;
        _oldAge = options.OldNormalAge;
        _switchOffAfter = options.SwitchOffAfter;
        _windowStart = _time.GetTimestamp();

        // The timer roots this switch until Dispose: an automatic switch is meant to watch for the life of the
        // process, like the pools it watches.
        _timer = _time.CreateTimer(static state => ((MonitorAutoSwitch)state!).Check(), this, options.CheckInterval, options.CheckInterval);
    }

    /// <summary>Gets the rule that last switched the monitor on, or null if this switch never has.</summary>
    public string? LastReason
    {
        get
        {
            lock (_lock)
            {
                return _lastReason;
            }
        }
    }

    /// <summary>Gets when this switch last switched the monitor on, or null if it never has.</summary>
    public DateTimeOffset? LastSwitchedOn
    {
        get
        {
            lock (_lock)
            {
                return _lastSwitchedOn;
            }
        }
    }

    /// <summary>Applies the rules once, now; the timer calls this every check interval. Never throws.</summary>
    public void Check()
    {
        try
        {
            lock (_lock)
            {
                if (!_disposed)
                {
                    CheckUnsynchronized();
                }
            }
        }
        catch (Exception ex)
        {
            try
            {
                Log.AutoSwitchFailed(_logger, ex);
            }
            catch
            {
                // A failing logger must not stop the timer thread either.
            }
        }
    }

    /// <summary>Stops checking. The monitor stays as it is; if this was <see cref="BufferMonitor.AutoSwitch"/>, that becomes null.</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            _disposed = true;
        }

        _timer.Dispose();
        BufferMonitor.ForgetAutoSwitch(this);
    }

    private void CheckUnsynchronized()
    {
        long now = _time.GetTimestamp();
        List<DirectBufferPool> pools = PoolsOfMonitor();
        if (_switchedOnAt != 0)
        {
            SwitchOffIfDue(now);
            return;
        }

        long inUse = 0;
        foreach (DirectBufferPool pool in pools)
        {
            inUse += pool.GetStatistics().InUseBytes;
        }

        _samples.Enqueue((now, inUse));
        while (_samples.Count > MaxSamples || _time.GetElapsedTime(_samples.Peek().Timestamp, now) > _window)
        {
            _samples.Dequeue();
        }

        if (_monitor.IsEnabled || now < _coolDownUntil)
        {
            // Someone switched it on by hand (nothing to do, and nothing of ours to undo later), or the switch
            // switched it off a moment ago and cools down, so a leak that goes on does not make it flap.
            return;
        }

        string? reason = GrowthReason(now) ?? OldBuffersReason(pools);
        if (reason is not null && _monitor.Enable(reason))
        {
            _switchedOnAt = now;
            _lastReason = reason;
            _lastSwitchedOn = _time.GetUtcNow();
            Log.MonitorSwitchedOnAutomatically(_logger, reason);
        }
    }

    private List<DirectBufferPool> PoolsOfMonitor()
    {
        var pools = new List<DirectBufferPool>();
        foreach (DirectBufferPool pool in DirectBufferPool.GetLivePools())
        {
            if (ReferenceEquals(pool.Monitor, _monitor))
            {
                pools.Add(pool);
            }
        }

        return pools;
    }

    /// <summary>The growth rule: the floor of the window's second half above the floor of its first half by the threshold.</summary>
    private string? GrowthReason(long now)
    {
        if (_growthBytes is not { } threshold || _time.GetElapsedTime(_windowStart, now) < _window)
        {
            // The window is not covered yet: half a window of history would compare two short stretches.
            return null;
        }

        TimeSpan half = _window / 2;
        long earlyFloor = long.MaxValue;
        long lateFloor = long.MaxValue;
        foreach ((long timestamp, long bytes) in _samples)
        {
            if (_time.GetElapsedTime(timestamp, now) > half)
            {
                earlyFloor = Math.Min(earlyFloor, bytes);
            }
            else
            {
                lateFloor = Math.Min(lateFloor, bytes);
            }
        }

        if (earlyFloor == long.MaxValue || lateFloor == long.MaxValue || lateFloor - earlyFloor < threshold)
        {
            return null;
        }

        return string.Create(
            CultureInfo.InvariantCulture,
            $"in-use memory grew without falling back: its low point rose from {earlyFloor:N0} to {lateFloor:N0} bytes over {_window} (threshold {threshold:N0})");
    }

    /// <summary>The age rule, from the census: Normal buffers older than the age, across the monitor's pools.</summary>
    private string? OldBuffersReason(List<DirectBufferPool> pools)
    {
        if (_oldCount is not { } threshold)
        {
            return null;
        }

        long old = 0;
        foreach (DirectBufferPool pool in pools)
        {
            old += pool.TakeCensus().CountOlderThan(_oldAge, BufferType.Normal);
        }

        return old < threshold
            ? null
            : string.Create(CultureInfo.InvariantCulture, $"{old:N0} Normal buffers have been out longer than {_oldAge} (threshold {threshold:N0})");
    }

    private void SwitchOffIfDue(long now)
    {
        if (!ReferenceEquals(_monitor.EnabledReason, _lastReason))
        {
            // Switched off by hand meanwhile (and perhaps on again, by hand: then it is not ours to switch off).
            Rearm(now);
            return;
        }

        TimeSpan onFor = _time.GetElapsedTime(_switchedOnAt, now);
        if (_switchOffAfter is not { } after || onFor < after)
        {
            return;
        }

        // Disable drops the evidence: put the top sites in the log first.
        IReadOnlyList<LeakSite> sites = _monitor.GetLeakSites(TimeSpan.Zero, top: 5);
        var text = new StringBuilder();
        foreach (LeakSite site in sites)
        {
            text.Append(CultureInfo.InvariantCulture, $"{site.EstimatedCount:N0} buffers, {site.EstimatedBytes:N0} bytes at ")
                .AppendLine(site.StackTrace.Split('\n', 2)[0]);
        }

        int records = _monitor.Count;
        _monitor.Disable();
        Log.MonitorSwitchedOffAutomatically(_logger, onFor, records, sites.Count == 0 ? "(none)" : text.ToString().TrimEnd());
        Rearm(now);

        // Off for as long as it was on: at most half the time on, whatever the leak does meanwhile.
        _coolDownUntil = now + (long)(after.TotalSeconds * _time.TimestampFrequency);
    }

    /// <summary>Forgets the window, so a leak that goes on fires again only after a whole new window (no on-off flapping).</summary>
    private void Rearm(long now)
    {
        _switchedOnAt = 0;
        _samples.Clear();
        _windowStart = now;
    }
}
