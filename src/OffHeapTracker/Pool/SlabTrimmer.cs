namespace OffHeapTracker;

/// <summary>Runs a pool's trim pass every <see cref="DirectBufferPoolOptions.TrimAfter"/> on the pool's clock.</summary>
internal static class SlabTrimmer
{
    /// <summary>Starts the timer, or returns null when trimming is off (<see cref="Timeout.InfiniteTimeSpan"/>).</summary>
    /// <remarks>The timer holds the pool weakly: an undisposed, unreachable pool must stay collectable.</remarks>
    public static ITimer? Start(DirectBufferPool pool, TimeProvider clock, TimeSpan trimAfter) =>
        trimAfter == Timeout.InfiniteTimeSpan
            ? null
            : clock.CreateTimer(static state => Tick((WeakReference<DirectBufferPool>)state!), new WeakReference<DirectBufferPool>(pool), trimAfter, trimAfter);

    private static void Tick(WeakReference<DirectBufferPool> pool)
    {
        if (pool.TryGetTarget(out DirectBufferPool? target))
        {
            target.TrimOnTimer();
        }
    }
}
