using System.Diagnostics;

namespace OffHeapTracker.AspNetCore.Tests.Support;

/// <summary>Waits for something the server does on its own threads, such as returning a closed connection's buffers.</summary>
internal static class Eventually
{
    /// <summary>How long a test waits for the server before it fails.</summary>
    /// <remarks>
    /// What the tests wait for takes milliseconds on an idle machine. A shared 2-core runner that is also building or
    /// running a browser can stall a thread pool thread for seconds, so the bound is 30 s; a poll ends as soon as its
    /// condition holds, so only a broken implementation waits that long.
    /// </remarks>
    public static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    /// <summary>Reads <paramref name="probe"/> every 20 ms until <paramref name="done"/> accepts it, and fails after <see cref="Patience"/>.</summary>
    /// <returns>The first value accepted.</returns>
    public static async Task<T> WaitForAsync<T>(Func<T> probe, Func<T, bool> done, string waitingFor)
    {
        long started = Stopwatch.GetTimestamp();
        while (true)
        {
            T value = probe();
            if (done(value))
            {
                return value;
            }

            if (Stopwatch.GetElapsedTime(started) > Patience)
            {
                Assert.Fail($"Still waiting after {Patience.TotalSeconds:F0} s for {waitingFor}.");
            }

            await Task.Delay(20);
        }
    }
}
