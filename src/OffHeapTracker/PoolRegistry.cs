namespace OffHeapTracker;

/// <summary>The pools alive in the process, held weakly, so a diagnostics endpoint can list them all without keeping any alive.</summary>
internal static class PoolRegistry
{
    private static readonly Lock s_lock = new();
    private static readonly List<WeakReference<DirectBufferPool>> s_pools = [];

    public static void Add(DirectBufferPool pool)
    {
        lock (s_lock)
        {
            s_pools.RemoveAll(static weak => !weak.TryGetTarget(out _));
            s_pools.Add(new WeakReference<DirectBufferPool>(pool));
        }
    }

    public static void Remove(DirectBufferPool pool)
    {
        lock (s_lock)
        {
            s_pools.RemoveAll(weak => !weak.TryGetTarget(out DirectBufferPool? target) || ReferenceEquals(target, pool));
        }
    }

    /// <summary>Returns the pools not yet disposed or collected, in creation order.</summary>
    public static List<DirectBufferPool> Live()
    {
        var live = new List<DirectBufferPool>();
        lock (s_lock)
        {
            foreach (WeakReference<DirectBufferPool> weak in s_pools)
            {
                if (weak.TryGetTarget(out DirectBufferPool? pool))
                {
                    live.Add(pool);
                }
            }
        }

        return live;
    }
}
