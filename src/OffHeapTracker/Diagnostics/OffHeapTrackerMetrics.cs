using System.Diagnostics.Metrics;
using System.Runtime.CompilerServices;

namespace OffHeapTracker.Diagnostics;

/// <summary>The <c>OffHeapTracker</c> meter: observable instruments that read pool and monitor statistics when collected.</summary>
/// <remarks>
/// <para>
/// Every level is an observable instrument, so <c>Rent</c> and <c>Dispose</c> do no metric work at all; the
/// cost is paid by the collector (<c>dotnet-counters</c>, OpenTelemetry, a <see cref="MeterListener"/>). Names
/// follow the OpenTelemetry rules: lowercase, dotted, unit <c>By</c> for bytes and <c>{buffer}</c> for counts,
/// no <c>_total</c>.
/// </para>
/// <para>
/// Instruments are created once per <see cref="Meter"/> and enumerate the pools registered with it through
/// weak references: metrics never keep a pool alive (a tracker that holds what it tracks becomes a leak of its
/// own, as a registry of every connection does), and a disposed pool stops reporting.
/// </para>
/// </remarks>
internal static class OffHeapTrackerMetrics
{
    public const string MeterName = "OffHeapTracker";

    public const string PoolNameTag = "offheaptracker.pool.name";

    public const string BufferTypeTag = "offheaptracker.buffer.type";

    /// <summary>The pool's <see cref="DirectBufferPool.Id"/>: two pools with one name (Kestrel makes several named <c>kestrel</c>) stay two series.</summary>
    public const string PoolIdTag = "offheaptracker.pool.id";

    /// <summary>The monitor's instance number in the process, given when its instruments are first read: two monitors stay two series.</summary>
    public const string MonitorIdTag = "offheaptracker.monitor.id";

    /// <summary>Whether the series is <see cref="BufferMonitor.Shared"/>'s (<c>true</c>) or a monitor of the application's own.</summary>
    public const string MonitorSharedTag = "offheaptracker.monitor.shared";

    private static int s_lastMonitorId;

    /// <summary>The census age a count is over, in seconds (60, 600, 3600).</summary>
    public const string MinAgeTag = "offheaptracker.buffer.min_age";

    private static readonly Meter s_meter = new(MeterName, typeof(OffHeapTrackerMetrics).Assembly.GetName().Version?.ToString());
    private static readonly ConditionalWeakTable<Meter, WeakRegistry<DirectBufferPool>> s_pools = [];
    private static readonly ConditionalWeakTable<Meter, WeakRegistry<Monitoring.ResidentBufferMonitor>> s_monitors = [];
    private static readonly ConditionalWeakTable<Monitoring.ResidentBufferMonitor, StrongBox<int>> s_monitorIds = [];

    public static Meter GetMeter(IMeterFactory? factory) => factory?.Create(new MeterOptions(MeterName)) ?? s_meter;

    public static void Register(Meter meter, DirectBufferPool pool) => s_pools.GetValue(meter, CreatePoolInstruments).Add(pool);

    public static void Unregister(Meter meter, DirectBufferPool pool)
    {
        if (s_pools.TryGetValue(meter, out WeakRegistry<DirectBufferPool>? registry))
        {
            registry.Remove(pool);
        }
    }

    /// <summary>Adds a monitor to a meter's instruments; adding it again to the same meter does nothing.</summary>
    public static void Register(Meter meter, Monitoring.ResidentBufferMonitor monitor)
    {
        WeakRegistry<Monitoring.ResidentBufferMonitor> registry = s_monitors.GetValue(meter, CreateMonitorInstruments);

        // Remove first: a monitor listed twice on one meter would report every figure twice, under identical tags.
        registry.Remove(monitor);
        registry.Add(monitor);
    }

    public static void Unregister(Meter meter, Monitoring.ResidentBufferMonitor monitor)
    {
        if (s_monitors.TryGetValue(meter, out WeakRegistry<Monitoring.ResidentBufferMonitor>? registry))
        {
            registry.Remove(monitor);
        }
    }

    /// <summary>Gets the monitor's instance number, given the first time it is asked for.</summary>
    public static int MonitorId(Monitoring.ResidentBufferMonitor monitor) =>
        s_monitorIds.GetValue(monitor, static _ => new StrongBox<int>(Interlocked.Increment(ref s_lastMonitorId))).Value;

    private static WeakRegistry<DirectBufferPool> CreatePoolInstruments(Meter meter)
    {
        var pools = new WeakRegistry<DirectBufferPool>();
        meter.CreateObservableUpDownCounter("offheaptracker.pool.capacity", () => PerPool(pools, s => s.CapacityBytes), "By", "The most native memory each pool may hold in slabs.");
        meter.CreateObservableUpDownCounter("offheaptracker.pool.reserved", () => PerPool(pools, s => s.ReservedBytes), "By", "The native memory each pool holds in slabs, rented or free.");
        meter.CreateObservableUpDownCounter("offheaptracker.pool.free", () => PerPool(pools, s => s.FreeBytes), "By", "Slab memory reserved and free to rent.");
        meter.CreateObservableUpDownCounter("offheaptracker.pool.in_use", () => InUseByType(pools), "By", "Bytes of buffers rented now, pooled and unpooled, by buffer type.");
        meter.CreateObservableCounter("offheaptracker.pool.rented", () => PerPool(pools, s => s.RentedBytes), "By", "Bytes rented since each pool was created.");
        meter.CreateObservableCounter("offheaptracker.pool.fallback", () => PerPool(pools, s => s.FallbackCount), "{buffer}", "Rents served by an unpooled native allocation.");
        meter.CreateObservableCounter("offheaptracker.pool.trimmed", () => PerPool(pools, s => s.TrimmedBytes), "By", "Slab memory given back to the operating system after staying idle.");
        meter.CreateObservableUpDownCounter("offheaptracker.leak.in_use", () => PerPool(pools, s => s.LeakedBytes), "By", "Bytes of leases garbage-collected without Dispose, kept out of circulation.");
        meter.CreateObservableCounter("offheaptracker.leak.detected", () => PerPool(pools, s => s.LeakedCount), "{buffer}", "Leases garbage-collected without Dispose.");
        meter.CreateObservableCounter("offheaptracker.buffer.double_dispose", () => PerPool(pools, s => s.DoubleDisposeCount), "{buffer}", "Leases disposed again after they were returned.");
        AddCensusInstruments(meter, pools);
        return pools;
    }

    private static WeakRegistry<Monitoring.ResidentBufferMonitor> CreateMonitorInstruments(Meter meter)
    {
        var monitors = new WeakRegistry<Monitoring.ResidentBufferMonitor>();
        meter.CreateObservableUpDownCounter("offheaptracker.monitor.resident", () => PerMonitor(monitors, m => m.Count), "{buffer}", "Buffers the monitor holds a record of now.");
        meter.CreateObservableCounter("offheaptracker.monitor.dropped", () => PerMonitor(monitors, m => m.DroppedRecords), "{buffer}", "Buffers not recorded because the monitor's bounds were reached.");
        return monitors;
    }

    // The age census works with the monitor off. Each instrument walks each pool's blocks once per collection
    // (O(blocks), no allocation; see DirectBufferPool.TakeCensus): kept out of GetStatistics, which every other
    // instrument calls, so that the walk is paid twice per collection, not a dozen times.
    private static void AddCensusInstruments(Meter meter, WeakRegistry<DirectBufferPool> pools)
    {
        meter.CreateObservableGauge("offheaptracker.census.oldest_normal_age", () => OldestNormalAge(pools), "s", "Age of the oldest Normal buffer rented and not yet returned (0 when none), from the always-on census.");
        meter.CreateObservableUpDownCounter("offheaptracker.census.old_normal", () => OldNormalCounts(pools), "{buffer}", "Normal buffers rented and not yet returned for at least offheaptracker.buffer.min_age seconds (60, 600, 3600), from the always-on census.");
    }

    private static List<Measurement<double>> OldestNormalAge(WeakRegistry<DirectBufferPool> pools)
    {
        var measurements = new List<Measurement<double>>();
        foreach (DirectBufferPool pool in pools.Live())
        {
            double seconds = (double)pool.SummarizeNormalAges().OldestAgeTicks / TimeSpan.TicksPerSecond;
            measurements.Add(new Measurement<double>(seconds, new KeyValuePair<string, object?>(PoolNameTag, pool.Name), new KeyValuePair<string, object?>(PoolIdTag, pool.Id)));
        }

        return measurements;
    }

    private static List<Measurement<long>> OldNormalCounts(WeakRegistry<DirectBufferPool> pools)
    {
        var measurements = new List<Measurement<long>>();
        foreach (DirectBufferPool pool in pools.Live())
        {
            NormalAgeSummary summary = pool.SummarizeNormalAges();
            var name = new KeyValuePair<string, object?>(PoolNameTag, pool.Name);
            var id = new KeyValuePair<string, object?>(PoolIdTag, pool.Id);
            for (int i = 0; i < NormalAgeSummary.ThresholdSeconds.Length; i++)
            {
                measurements.Add(new Measurement<long>(summary.CountOlderThan(i), name, id, new KeyValuePair<string, object?>(MinAgeTag, NormalAgeSummary.ThresholdSeconds[i])));
            }
        }

        return measurements;
    }

    private static List<Measurement<long>> PerPool(WeakRegistry<DirectBufferPool> pools, Func<DirectBufferPoolStatistics, long> read)
    {
        var measurements = new List<Measurement<long>>();
        foreach (DirectBufferPool pool in pools.Live())
        {
            measurements.Add(new Measurement<long>(read(pool.GetStatistics()), new KeyValuePair<string, object?>(PoolNameTag, pool.Name), new KeyValuePair<string, object?>(PoolIdTag, pool.Id)));
        }

        return measurements;
    }

    private static List<Measurement<long>> InUseByType(WeakRegistry<DirectBufferPool> pools)
    {
        var measurements = new List<Measurement<long>>();
        foreach (DirectBufferPool pool in pools.Live())
        {
            DirectBufferPoolStatistics stats = pool.GetStatistics();
            var name = new KeyValuePair<string, object?>(PoolNameTag, pool.Name);
            var id = new KeyValuePair<string, object?>(PoolIdTag, pool.Id);
            measurements.Add(new Measurement<long>(stats.PoolTypeInUseBytes, name, id, new KeyValuePair<string, object?>(BufferTypeTag, "pool")));
            measurements.Add(new Measurement<long>(Math.Max(0, stats.InUseBytes - stats.PoolTypeInUseBytes), name, id, new KeyValuePair<string, object?>(BufferTypeTag, "normal")));
        }

        return measurements;
    }

    private static List<Measurement<long>> PerMonitor(WeakRegistry<Monitoring.ResidentBufferMonitor> monitors, Func<Monitoring.ResidentBufferMonitor, long> read)
    {
        var measurements = new List<Measurement<long>>();
        foreach (Monitoring.ResidentBufferMonitor monitor in monitors.Live())
        {
            measurements.Add(new Measurement<long>(
                read(monitor),
                new KeyValuePair<string, object?>(MonitorIdTag, MonitorId(monitor)),
                new KeyValuePair<string, object?>(MonitorSharedTag, BufferMonitor.IsShared(monitor))));
        }

        return measurements;
    }
}
