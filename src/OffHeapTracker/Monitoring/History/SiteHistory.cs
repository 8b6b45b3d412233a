using System.Runtime.InteropServices;

namespace OffHeapTracker.Monitoring;

/// <summary>A bounded ring of samples of one monitor session's largest sites: what <see cref="LeakSite.Growth"/> is read from.</summary>
/// <remarks>
/// <para>
/// One history belongs to one session of the monitor (one <see cref="ResidentBufferMonitor.Enable()"/> to the next
/// <see cref="ResidentBufferMonitor.Disable"/>) and to that session's table: a new session starts a new history, so
/// bytes held before a switch-off are never read as growth, and a sample that raced with the switch lands in a
/// history no one reads again.
/// </para>
/// <para>
/// Bounded whatever the number of distinct stacks: at most <see cref="Capacity"/> samples of at most
/// <see cref="TopSites"/> readings each (a key shared with the interned stacks, and two numbers).
/// </para>
/// <para>
/// Thread-safe. <see cref="_lock"/> guards the ring (<see cref="_ring"/>, <see cref="_next"/>, <see cref="_count"/>);
/// <see cref="_samplingLock"/> makes samples one at a time, so they enter the ring in the order of their timestamps.
/// </para>
/// </remarks>
internal sealed class SiteHistory
{
    private readonly Lock _lock = new();
    private readonly Lock _samplingLock = new();
    private readonly (long Timestamp, SiteReading[] Sites)[] _ring;
    private int _next;
    private int _count;
    private int _failureLogged;

    public SiteHistory(ResidentTable table, int capacity, int topSites, TimeSpan length)
    {
        Table = table;
        TopSites = topSites;
        Length = length;
        _ring = new (long, SiteReading[])[capacity];
    }

    /// <summary>Gets the session's table, the one sampled.</summary>
    public ResidentTable Table { get; }

    /// <summary>Gets how many sites a sample keeps.</summary>
    public int TopSites { get; }

    /// <summary>Gets how far back growth is read.</summary>
    public TimeSpan Length { get; }

    /// <summary>Gets the most samples kept.</summary>
    public int Capacity => _ring.Length;

    /// <summary>Gets or sets the timer that samples this history; null when it is sampled only on request.</summary>
    public SiteHistoryTimer? Timer { get; set; }

    /// <summary>Gets how many samples are held.</summary>
    public int SampleCount
    {
        get
        {
            lock (_lock)
            {
                return _count;
            }
        }
    }

    /// <summary>Gets how many site readings are held, across every sample: what the history's memory grows with.</summary>
    public int ReadingCount
    {
        get
        {
            lock (_lock)
            {
                int readings = 0;
                for (int i = 0; i < _ring.Length; i++)
                {
                    readings += _ring[i].Sites?.Length ?? 0;
                }

                return readings;
            }
        }
    }

    /// <summary>Gets the lock that makes samples one at a time: held from reading the clock to <see cref="Add"/>.</summary>
    public Lock SamplingLock => _samplingLock;

    /// <summary>Returns true the first time it is called: a failing sample is logged once per session, and counted every time.</summary>
    public bool FirstFailure() => Interlocked.Exchange(ref _failureLogged, 1) == 0;

    /// <summary>Adds a sample, overwriting the oldest when the ring is full.</summary>
    public void Add(long timestamp, SiteReading[] sites)
    {
        lock (_lock)
        {
            _ring[_next] = (timestamp, sites);
            _next = (_next + 1) % _ring.Length;
            _count = Math.Min(_count + 1, _ring.Length);
        }
    }

    /// <summary>Reads every site's growth over the samples no older than <see cref="Length"/>, keyed by site.</summary>
    /// <remarks>At most <see cref="Capacity"/> times <see cref="TopSites"/> readings are walked, under the lock; no table is touched.</remarks>
    public Dictionary<string, LeakSiteGrowth> Growths(TimeProvider time)
    {
        long now = time.GetTimestamp();
        var series = new Dictionary<string, GrowthSeries>(StringComparer.Ordinal);
        lock (_lock)
        {
            int start = (_next - _count + _ring.Length) % _ring.Length;
            for (int i = 0; i < _count; i++)
            {
                (long timestamp, SiteReading[] sites) = _ring[(start + i) % _ring.Length];
                if (time.GetElapsedTime(timestamp, now) > Length)
                {
                    continue;
                }

                foreach (SiteReading site in sites)
                {
                    CollectionsMarshal.GetValueRefOrAddDefault(series, site.Key, out _).Add(timestamp, site.Bytes, site.Count);
                }
            }
        }

        var growths = new Dictionary<string, LeakSiteGrowth>(series.Count, StringComparer.Ordinal);
        foreach ((string key, GrowthSeries points) in series)
        {
            growths[key] = points.ToGrowth(time);
        }

        return growths;
    }
}
