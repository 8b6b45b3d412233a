namespace OffHeapTracker;

/// <summary>The pools alive in the process, held weakly, so a diagnostics endpoint can list them all without keeping any alive.</summary>
internal static class PoolRegistry
{
    private static readonly WeakRegistry<DirectBufferPool> s_pools = new();

    public static void Add(DirectBufferPool pool) => s_pools.Add(pool);

    public static void Remove(DirectBufferPool pool) => s_pools.Remove(pool);

    /// <summary>Returns the pools not yet disposed or collected, in creation order.</summary>
    public static List<DirectBufferPool> Live() => s_pools.Live();
}
