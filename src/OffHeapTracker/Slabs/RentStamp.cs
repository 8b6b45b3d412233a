namespace OffHeapTracker.Slabs;

/// <summary>Packs what the age census keeps of a rented block into one <see cref="long"/>: when it was rented and as which <see cref="BufferType"/>.</summary>
/// <remarks>
/// Bit 0 is always 1 (so a stamp is never 0, which means "not rented"), bit 1 is the buffer type, and the rest is
/// the rent time in the pool's census clock ticks (see <see cref="CoarseClock"/>). Timestamps keep 61 bits: a
/// <see cref="System.Diagnostics.Stopwatch"/> counting nanoseconds since boot wraps after 36 years.
/// </remarks>
internal static class RentStamp
{
    public static long Encode(long timestamp, BufferType type) => (timestamp << 2) | ((long)type << 1) | 1;

    public static long TimestampOf(long stamp) => stamp >> 2;

    public static BufferType TypeOf(long stamp) => (BufferType)((stamp >> 1) & 1);
}
