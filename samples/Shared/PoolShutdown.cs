namespace OffHeapTracker.Samples;

/// <summary>The last line a sample prints: its pools, disposed, and what they still had out.</summary>
internal static class PoolShutdown
{
    /// <summary>Disposes <paramref name="pools"/> and describes them, such as <c>pool tcpproxy disposed, 0 buffers outstanding, 0 bytes in use, high water 65536 bytes</c>.</summary>
    /// <returns>The description, and whether every pool came back empty.</returns>
    public static (string Summary, bool Clean) DisposeAll(params IEnumerable<DirectBufferPool> pools)
    {
        var names = new List<string>();
        long outstanding = 0, inUse = 0, highWater = 0;
        bool disposed = true;
        foreach (DirectBufferPool pool in pools)
        {
            pool.Dispose();
            DirectBufferPoolStatistics stats = pool.GetStatistics();
            names.Add(stats.Name);
            outstanding += stats.OutstandingCount;
            inUse += stats.InUseBytes;
            highWater += stats.HighWaterBytes;
            disposed &= stats.IsDisposed;
        }

        string summary = $"{(names.Count == 1 ? "pool" : "pools")} {string.Join(", ", names)} {(disposed ? "disposed" : "NOT disposed")}, "
            + $"{outstanding} buffers outstanding, {inUse} bytes in use, high water {highWater} bytes";
        return (summary, disposed && outstanding == 0);
    }
}
