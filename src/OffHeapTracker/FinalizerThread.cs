namespace OffHeapTracker;

/// <summary>Recognises the finalizer thread, on which a disposed lease object must never be recycled.</summary>
/// <remarks>
/// An object whose finalizer disposes a lease (a wrapper that owns one) runs in the same finalization pass as the
/// lease itself, in no set order. A lease disposed there may still be waiting for its own finalizer; were it put
/// back in the lease cache and rented again, that pending finalizer would then run on a live lease, and the lease
/// would carry no safety net for its next renter. So leases disposed on the finalizer thread are not recycled.
/// .NET has no API that names the finalizer thread; every <see cref="DirectBuffer"/> finalizer marks the thread
/// it runs on. Before the first of them has run, <see cref="LeaseCache.Rent"/> covers the gap: it never lends a
/// lease object whose finalizer has run.
/// </remarks>
internal static class FinalizerThread
{
    [ThreadStatic]
    private static bool t_isFinalizerThread;

    /// <summary>Gets a value indicating whether the current thread has run a lease finalizer.</summary>
    public static bool IsCurrent => t_isFinalizerThread;

    /// <summary>Called by the lease finalizer: from now on the lease cache keeps nothing returned on this thread.</summary>
    public static void MarkCurrent()
    {
        if (!t_isFinalizerThread)
        {
            t_isFinalizerThread = true;
            LeaseCache.RefuseOnCurrentThread();
        }
    }
}
