namespace OffHeapTracker.Tests.Support;

internal static class Gc
{
    /// <summary>Collects until finalizers of everything unreachable have run.</summary>
    public static void CollectAndFinalize()
    {
        for (int i = 0; i < 2; i++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
        }

        GC.Collect();
    }
}
