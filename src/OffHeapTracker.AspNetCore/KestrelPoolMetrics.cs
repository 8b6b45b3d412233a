using System.Diagnostics.Metrics;

namespace OffHeapTracker.AspNetCore;

/// <summary>Kestrel's own pool instruments (<c>aspnetcore.memory_pool.*</c> on <c>Microsoft.AspNetCore.MemoryPool</c>), read from the statistics of one factory's pools.</summary>
/// <remarks>
/// <para>
/// Names, kinds, units and the owner tag are those of aspnetcore's <c>src/Shared/Buffers.MemoryPool/MemoryPoolMetrics.cs</c>
/// (.NET 10): <c>pooled</c> (up-down counter), <c>allocated</c>, <c>evicted</c> and <c>rented</c> (counters), all in
/// <c>By</c>, tagged <c>aspnetcore.memory_pool.owner</c> when the pool has an owner. Kestrel's are updated on every
/// rent; these are observable, read when a collector asks, so renting does no metric work. Each series also
/// carries <c>offheaptracker.pool.id</c>: Kestrel creates several pools named <c>kestrel</c>, and without it their
/// series would carry identical tags and an exporter would keep one of them.
/// </para>
/// <para>
/// What each means here: <c>pooled</c> is slab memory reserved and free to rent; <c>allocated</c> is slab memory
/// ever reserved (held now plus given back), so it only grows, as Kestrel's does; <c>evicted</c> is slab memory given
/// back after staying idle; <c>rented</c> is the block bytes rented. Unpooled fallback allocations are counted by
/// <c>offheaptracker.pool.fallback</c>, not by <c>allocated</c>.
/// </para>
/// </remarks>
internal sealed class KestrelPoolMetrics : IDisposable
{
    public const string MeterName = "Microsoft.AspNetCore.MemoryPool";

    public const string OwnerTag = "aspnetcore.memory_pool.owner";

    private readonly Meter _meter;
    private readonly bool _ownsMeter;

    public KestrelPoolMetrics(IMeterFactory? meterFactory, DirectBufferPoolFactory factory)
    {
        // Without a host's factory, each pool factory gets its own meter (disposed with it), so two factories in one
        // process never report each other's pools twice.
        _ownsMeter = meterFactory is null;
        _meter = meterFactory?.Create(new MeterOptions(MeterName)) ?? new Meter(MeterName);

        // The factory is held weakly: the meter may outlive it (a host's meter factory caches meters by name).
        var weak = new WeakReference<DirectBufferPoolFactory>(factory);
        _meter.CreateObservableUpDownCounter("aspnetcore.memory_pool.pooled", () => Read(weak, static s => s.FreeBytes), "By", "Number of bytes currently pooled and available for reuse.");
        _meter.CreateObservableCounter("aspnetcore.memory_pool.allocated", () => Read(weak, static s => s.ReservedBytes + s.TrimmedBytes), "By", "Total number of bytes allocated by the memory pool. Allocation occurs when a memory rental request exceeds the available pooled memory.");
        _meter.CreateObservableCounter("aspnetcore.memory_pool.evicted", () => Read(weak, static s => s.TrimmedBytes), "By", "Total number of bytes evicted from the memory pool. Eviction occurs when idle pooled memory is reclaimed.");
        _meter.CreateObservableCounter("aspnetcore.memory_pool.rented", () => Read(weak, static s => s.RentedBytes), "By", "Total number of bytes rented from the memory pool.");
    }

    public void Dispose()
    {
        if (_ownsMeter)
        {
            _meter.Dispose();
        }
    }

    private static List<Measurement<long>> Read(WeakReference<DirectBufferPoolFactory> weak, Func<DirectBufferPoolStatistics, long> read)
    {
        var measurements = new List<Measurement<long>>();
        if (!weak.TryGetTarget(out DirectBufferPoolFactory? factory))
        {
            return measurements;
        }

        foreach (DirectBufferPool pool in factory.Pools)
        {
            var id = new KeyValuePair<string, object?>("offheaptracker.pool.id", pool.Id);
            measurements.Add(pool.Name == DirectBufferPoolFactory.DefaultOwner
                ? new Measurement<long>(read(pool.GetStatistics()), id)
                : new Measurement<long>(read(pool.GetStatistics()), new KeyValuePair<string, object?>(OwnerTag, pool.Name), id));
        }

        return measurements;
    }
}
