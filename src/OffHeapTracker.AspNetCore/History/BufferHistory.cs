using OffHeapTracker.Monitoring;

namespace OffHeapTracker.AspNetCore.History;

/// <summary>A bounded ring of samples of every live pool and the monitor, taken on a timer: what <c>GET {prefix}/history</c> serves.</summary>
/// <remarks>
/// <para>
/// The ring holds <c>length / interval</c> samples (720 at the defaults, at most <see cref="MaxSamples"/>); the oldest
/// is overwritten. A sample holds, per pool (at most <see cref="MaxPools"/>), eight numbers and a reference to the
/// pool's name; and, while the monitor is on, the bytes and count of its <see cref="TopSites"/> largest sites by the
/// key of their stack, and the count of NORMAL buffers older than <see cref="OldAge"/>. Stack texts are kept for the
/// latest sample only. So at the defaults, with a handful of pools, the history takes well under 1 MiB, whatever the
/// monitor's table holds.
/// </para>
/// <para>
/// Thread-safe: the timer samples on a thread pool thread (a tick that finds the previous one still running is
/// skipped), readers copy references out of the ring under <see cref="_lock"/>, which guards the ring, the latest
/// sites and the switch events, and write them outside it. Nothing here may throw into the timer: a failed sample
/// is skipped and its message kept in <see cref="LastError"/>.
/// </para>
/// </remarks>
internal sealed partial class BufferHistory : IDisposable
{
    /// <summary>The most samples a ring holds: ten thousand bounds the ring near 10 MiB even with a dozen pools.</summary>
    public const int MaxSamples = 10_000;

    /// <summary>How many sites a sample follows: enough to hold a slow leak that is not yet among the largest.</summary>
    public const int TopSites = 32;

    /// <summary>How many pools a sample holds; more are counted in the totals of none and reported as truncated.</summary>
    public const int MaxPools = 64;

    /// <summary>How many monitor switches are remembered for the chart.</summary>
    private const int MaxSwitches = 32;

    /// <summary>The age past which a NORMAL buffer counts as old: the census's first threshold, and the health check's default.</summary>
    public static readonly TimeSpan OldAge = TimeSpan.FromMinutes(1);

    private readonly Lock _lock = new();
    private readonly HistorySample?[] _ring;
    private readonly Queue<SwitchEvent> _switches = new();
    private readonly Func<ResidentBufferMonitor> _monitor;
    private readonly TimeProvider _time;
    private readonly long _startedAt;
    private int _next;
    private int _count;
    private IReadOnlyList<LeakSite> _latestSites = [];
    private bool? _lastEnabled;
    private long? _enabledSince;
    private bool _enabledSinceExact;
    private long _lastSwitchAt = long.MinValue;
    private int _sampling;
    private ITimer? _timer;

    public BufferHistory(Func<ResidentBufferMonitor> monitor, TimeSpan interval, TimeSpan length, TimeProvider? time = null)
    {
        _monitor = monitor;
        _time = time ?? TimeProvider.System;
        Interval = interval;
        Length = length;
        _ring = new HistorySample?[Capacity(interval, length)];
        _startedAt = _time.GetUtcNow().ToUnixTimeMilliseconds();
    }

    public TimeSpan Interval { get; }

    public TimeSpan Length { get; }

    public int SampleCapacity => _ring.Length;

    /// <summary>Gets the message of the last sample that failed, or null.</summary>
    public string? LastError { get; private set; }

    /// <summary>The ring's size for an interval and a length, checked by <c>MapBufferMonitor</c> to be at most <see cref="MaxSamples"/>.</summary>
    public static int Capacity(TimeSpan interval, TimeSpan length) => (int)Math.Max(2, Math.Ceiling(length / interval));

    /// <summary>Starts sampling now and every <see cref="Interval"/>. Does nothing if started.</summary>
    public void Start()
    {
        lock (_lock)
        {
            _timer ??= _time.CreateTimer(static state => ((BufferHistory)state!).Sample(), this, TimeSpan.Zero, Interval);
        }
    }

    /// <summary>Stops the timer; the samples stay readable.</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            _timer?.Dispose();
            _timer = null;
        }
    }

    /// <summary>Notes a switch made through the endpoints, at its exact time, and samples at once so the chart shows it.</summary>
    public void NoteSwitch(bool enabled)
    {
        lock (_lock)
        {
            Switched(enabled, _time.GetUtcNow().ToUnixTimeMilliseconds(), exact: true);
        }

        Sample();
    }

    /// <summary>Takes one sample, unless one is being taken.</summary>
    public void Sample()
    {
        if (Interlocked.Exchange(ref _sampling, 1) == 1)
        {
            return;
        }

        try
        {
            // Sites count every record, young ones too: a one-second floor would show a flat workload rented at
            // once as growing for its first second, while its buffers crossed the floor.
            // The time is read before the switch, so a sample that started before a NoteSwitch is known to be stale (see below).
            long now = _time.GetUtcNow().ToUnixTimeMilliseconds();
            ResidentBufferMonitor monitor = _monitor();
            bool enabled = monitor.IsEnabled;
            IReadOnlyList<LeakSite> sites = enabled ? monitor.GetLeakSites(TimeSpan.Zero, type: null, TopSites) : [];
            OldNormalSample? old = enabled ? OldNormal(monitor) : null;
            var siteSamples = new SiteSample[sites.Count];
            for (int i = 0; i < sites.Count; i++)
            {
                siteSamples[i] = new SiteSample(SiteKey.Of(sites[i].StackTrace), sites[i].EstimatedBytes, sites[i].EstimatedCount);
            }

            var sample = new HistorySample(now, enabled, monitor.Count, monitor.DroppedRecords, Pools(), siteSamples, old);
            lock (_lock)
            {
                // A sample that read the switch before a NoteSwitch that has since been recorded must not undo it.
                bool stale = _lastSwitchAt > now;
                if (!stale && _lastEnabled is { } was && was != enabled)
                {
                    // Switched by someone else (code, another endpoint): known only to within one interval.
                    Switched(enabled, now, exact: false);
                }
                else if (!stale)
                {
                    _lastEnabled = enabled;
                }

                _ring[_next] = sample;
                _next = (_next + 1) % _ring.Length;
                _count = Math.Min(_count + 1, _ring.Length);
                _latestSites = sites;
            }

            LastError = null;
        }
        catch (Exception e)
        {
            // A timer callback that throws ends the process; a history with a gap is the lesser harm.
            LastError = e.GetType().Name + ": " + e.Message;
        }
        finally
        {
            Volatile.Write(ref _sampling, 0);
        }
    }

    /// <summary>Copies the samples newer than <paramref name="since"/> (oldest first), and everything else a reader needs, out of the ring.</summary>
    public HistoryView Read(long since = long.MinValue)
    {
        lock (_lock)
        {
            var all = new HistorySample[_count];
            int start = (_next - _count + _ring.Length) % _ring.Length;
            for (int i = 0; i < _count; i++)
            {
                all[i] = _ring[(start + i) % _ring.Length]!;
            }

            return new HistoryView(all, since, _latestSites, [.. _switches], _lastEnabled ?? false, _enabledSince, _enabledSinceExact, _startedAt, _time.GetUtcNow().ToUnixTimeMilliseconds());
        }
    }

    private void Switched(bool enabled, long at, bool exact)
    {
        _lastEnabled = enabled;
        _enabledSince = enabled ? at : null;
        _enabledSinceExact = exact;
        _lastSwitchAt = at;
        _switches.Enqueue(new SwitchEvent(at, enabled, exact));
        if (_switches.Count > MaxSwitches)
        {
            _switches.Dequeue();
        }
    }

    private static PoolSample[] Pools()
    {
        IReadOnlyList<DirectBufferPool> live = DirectBufferPool.GetLivePools();
        var pools = new PoolSample[Math.Min(live.Count, MaxPools)];
        for (int i = 0; i < pools.Length; i++)
        {
            DirectBufferPool pool = live[i];
            DirectBufferPoolStatistics s = pool.GetStatistics();
            pools[i] = new PoolSample(pool.Id, pool.Name, s.InUseBytes, s.PoolTypeInUseBytes, s.OutstandingCount, s.LeakedCount, s.FallbackCount, s.DoubleDisposeCount);
        }

        return pools;
    }

    private static OldNormalSample OldNormal(ResidentBufferMonitor monitor)
    {
        long count = 0, bytes = 0;
        double oldest = 0;
        foreach (LeakSite site in monitor.GetLeakSites(OldAge, BufferType.Normal, top: 10_000))
        {
            count += site.Count;
            bytes += site.TotalBytes;
            oldest = Math.Max(oldest, site.OldestAgeSeconds);
        }

        return new OldNormalSample(count, bytes, oldest);
    }

    /// <summary>A switch of the monitor: when, which way, and whether the time is exact or known to within one interval.</summary>
    internal readonly record struct SwitchEvent(long At, bool Enabled, bool Exact);
}
