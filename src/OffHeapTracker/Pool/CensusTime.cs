using OffHeapTracker.Slabs;

namespace OffHeapTracker;

/// <summary>The "now" of one census and the clock's frequency: turns a <see cref="RentStamp"/> into an age.</summary>
internal readonly struct CensusTime(long now, long frequency)
{
    /// <summary>Gets the age of a stamped buffer in <see cref="TimeSpan"/> ticks, never negative.</summary>
    public long AgeTicksOf(long stamp)
    {
        // Unchecked: a misdated stamp (an injected clock that threw) must give a wrong age, not an exception.
        long elapsed = unchecked(now - RentStamp.TimestampOf(stamp));
        if (elapsed <= 0)
        {
            // A rent stamped by a precise clock after this census read its "now".
            return 0;
        }

        if (frequency == TimeSpan.TicksPerSecond)
        {
            return elapsed;
        }

        // Capped below long.MaxValue so the conversion cannot overflow (checked builds would throw).
        double ticks = elapsed * ((double)TimeSpan.TicksPerSecond / frequency);
        return ticks >= 9e18 ? 9_000_000_000_000_000_000 : (long)ticks;
    }
}
