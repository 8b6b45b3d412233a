using OffHeapTracker.Monitoring;

namespace OffHeapTracker.Benchmarks;

/// <summary>Measures the managed memory the monitor's table holds per tracked buffer, interned stacks excluded (`-- --record-bytes`).</summary>
/// <remarks>
/// Since a pool's record lives in the lease's core, the table holds one reference per core, which this measures.
/// Not measured here, because it outlives <c>Disable</c>: each core's weak reference (a 24-byte object and a GC
/// handle, made on its first monitored rent and kept for the core's life), and the record's fields in the core
/// (there whether the monitor is on or not).
/// </remarks>
internal static class RecordSize
{
    public static void Measure()
    {
        const int Count = 200_000;
        var monitor = Subjects.On(depth: 16);
        using var pool = new DirectBufferPool(new DirectBufferPoolOptions { Name = "bench", Monitor = monitor, CapacityBytes = 1L << 30 });
        var live = new List<DirectBuffer>(Count);

        using (BufferMonitor.BeginContext("GET /measure"))
        {
            for (int i = 0; i < Count; i++)
            {
                live.Add(pool.Rent(512));
            }
        }

        long tracked = Settled();

        // Disable drops the table; the leases (with their cores and records), their shared stack and the list stay.
        // The difference is the table.
        monitor.Disable();
        long untracked = Settled();
        Console.WriteLine($"{Environment.Version} {System.Runtime.InteropServices.RuntimeInformation.OSDescription} {System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture}");
        Console.WriteLine($"interned stacks: {monitor.InternedStackCount}");
        Console.WriteLine($"monitor table for {Count:N0} tracked buffers: {(tracked - untracked) / (double)Count:0.0} bytes per buffer");
        GC.KeepAlive(live);
        live.ForEach(lease => lease.Dispose());
    }

    private static long Settled()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        return GC.GetTotalMemory(forceFullCollection: true);
    }
}
