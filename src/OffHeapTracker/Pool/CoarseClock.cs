using System.Diagnostics;

namespace OffHeapTracker;

/// <summary>A process-wide clock that is cheap to read on every rent: a <see cref="Stopwatch"/> timestamp republished every 100 ms.</summary>
/// <remarks>
/// <para>
/// The age census stamps every rent with the time. Reading <see cref="Stopwatch.GetTimestamp"/> or
/// <see cref="Environment.TickCount64"/> costs 20–90 ns on a virtual machine (a clock_gettime that may leave the
/// vDSO), more than half of a whole monitor-off Rent+Dispose; reading a static field costs one load.
/// </para>
/// <para>
/// The ticker is a dedicated background thread, not a thread-pool timer: when the thread pool starves (exactly
/// when a proxy is in trouble and someone looks at the census), timer callbacks queue behind the starved work, the
/// published time stops, and every buffer rented during the stall would be stamped with the time the stall began,
/// so it would look older than it is. A thread of its own is scheduled by the OS alone; it sleeps almost always
/// and costs one thread stack. It runs above normal priority for the same reason: to keep ticking on a busy box.
/// </para>
/// <para>
/// A stamp trails the true rent time by at most one period (plus any scheduling delay of the ticker), and a
/// census measures ages against a precise "now", so census ages are never understated and overstated by about
/// 0.1 s: fine for questions asked in seconds to hours.
/// </para>
/// </remarks>
internal static class CoarseClock
{
    /// <summary>How often the time is republished, in milliseconds.</summary>
    public const int PeriodMilliseconds = 100;

    private static readonly Lock s_startLock = new();
    private static long s_now;
    private static int s_state; // 0 = not started, 1 = running, 2 = could not start

    /// <summary>Gets the last published <see cref="Stopwatch"/> timestamp; valid once <see cref="TryStart"/> returned true.</summary>
    public static long Now => Volatile.Read(ref s_now);

    /// <summary>Says whether <see cref="Now"/> may be read instead of <paramref name="clock"/>: only for the system clock (an injected one is read as given), and only once the ticker runs.</summary>
    /// <param name="clock">The clock a pool or monitor was given.</param>
    /// <returns>True if <paramref name="clock"/> is <see cref="TimeProvider.System"/> and the ticker runs (started here if need be).</returns>
    public static bool CanStandInFor(TimeProvider clock) => ReferenceEquals(clock, TimeProvider.System) && TryStart();

    /// <summary>Starts the ticker thread if it has not started yet.</summary>
    /// <returns>True if the clock runs; false if its thread could not be created (the caller then reads a precise clock instead).</returns>
    public static bool TryStart()
    {
        int state = Volatile.Read(ref s_state);
        if (state != 0)
        {
            return state == 1;
        }

        lock (s_startLock)
        {
            if (s_state != 0)
            {
                return s_state == 1;
            }

            // Published before the state, so a pool that sees the clock running never reads a 0 time.
            Volatile.Write(ref s_now, Stopwatch.GetTimestamp());
            try
            {
                var thread = new Thread(Tick)
                {
                    IsBackground = true,
                    Name = "OffHeapTracker coarse clock",
                    Priority = ThreadPriority.AboveNormal,
                };

                // No ExecutionContext to flow: the ticker reads nothing ambient, and must not keep anything alive.
                thread.UnsafeStart();
                Volatile.Write(ref s_state, 1);
            }
            catch (Exception e) when (e is OutOfMemoryException or ThreadStartException)
            {
                // A pool must still be creatable; it falls back to reading its TimeProvider per rent.
                Volatile.Write(ref s_state, 2);
            }

            return s_state == 1;
        }
    }

    private static void Tick()
    {
        while (true)
        {
            Thread.Sleep(PeriodMilliseconds);
            Volatile.Write(ref s_now, Stopwatch.GetTimestamp());
        }
    }
}
