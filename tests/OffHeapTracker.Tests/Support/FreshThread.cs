using System.Runtime.ExceptionServices;

namespace OffHeapTracker.Tests.Support;

internal static class FreshThread
{
    /// <summary>Runs <paramref name="action"/> on a new thread and waits for it; an exception or failed assertion there is rethrown here.</summary>
    /// <remarks>
    /// The lease cache and the pool's per-thread state are thread-local, and a test thread carries whatever earlier
    /// tests left in them. A new thread starts with them empty, so what a test sees does not depend on test order.
    /// </remarks>
    public static void Run(Action action)
    {
        ExceptionDispatchInfo? failure = null;
        var thread = new Thread(() =>
        {
            try
            {
                action();
            }
            catch (Exception ex)
            {
                failure = ExceptionDispatchInfo.Capture(ex);
            }
        });
        thread.Start();
        thread.Join();
        failure?.Throw();
    }

    /// <summary>Runs <paramref name="function"/> on a new thread, waits for it and returns its result; see <see cref="Run(Action)"/>.</summary>
    public static T Run<T>(Func<T> function)
    {
        T result = default!;
        Run(() => { result = function(); });
        return result;
    }
}
