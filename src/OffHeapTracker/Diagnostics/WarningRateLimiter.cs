namespace OffHeapTracker.Diagnostics;

/// <summary>Lets one warning through per interval and counts the occurrences in between.</summary>
/// <remarks>dble's users complained of log floods from exactly the events we rate-limit (heap fallbacks).</remarks>
internal sealed class WarningRateLimiter(TimeProvider timeProvider, TimeSpan interval)
{
    private const long NeverLogged = long.MinValue;

    private long _lastLogged = NeverLogged;
    private long _occurrences;

    /// <summary>Counts one occurrence and says whether to log it now.</summary>
    /// <param name="occurrences">When this returns true: the occurrences since the last logged one, this one included.</param>
    public bool ShouldLog(out long occurrences)
    {
        Interlocked.Increment(ref _occurrences);
        long now = timeProvider.GetTimestamp();
        long last = Volatile.Read(ref _lastLogged);
        if ((last != NeverLogged && timeProvider.GetElapsedTime(last, now) < interval)
            || Interlocked.CompareExchange(ref _lastLogged, now, last) != last)
        {
            occurrences = 0;
            return false;
        }

        occurrences = Interlocked.Exchange(ref _occurrences, 0);
        return true;
    }
}
