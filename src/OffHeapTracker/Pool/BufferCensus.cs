using OffHeapTracker.Slabs;

namespace OffHeapTracker;

/// <summary>The buffers of one pool outstanding at one moment, by age and <see cref="BufferType"/>: what <see cref="DirectBufferPool.TakeCensus"/> returns.</summary>
/// <remarks>
/// <para>
/// Ages are measured from a coarse rent time: with the system clock, the pool stamps each rent with a time
/// republished every 0.1 s, so an age is never understated and is overstated by about 0.1 s. Bytes are what the
/// pool holds for a buffer: its whole block when pooled, its length when unpooled (as in
/// <see cref="DirectBufferPoolStatistics.InUseBytes"/>).
/// </para>
/// <para>
/// The census is a snapshot taken while rents and returns go on (see <see cref="DirectBufferPool.TakeCensus"/>);
/// once taken it never changes, and all its members are thread-safe.
/// </para>
/// </remarks>
public sealed class BufferCensus
{
    private static readonly TimeSpan[] s_bucketStarts =
    [
        TimeSpan.Zero,
        TimeSpan.FromSeconds(1),
        TimeSpan.FromSeconds(10),
        TimeSpan.FromMinutes(1),
        TimeSpan.FromMinutes(10),
        TimeSpan.FromHours(1),
    ];

    // Per BufferType (index = the enum value): ages in TimeSpan ticks, ascending, and their bytes as prefix sums
    // (_bytesBefore[t][i] = bytes of the i youngest), so each query is a binary search.
    private readonly long[][] _ages;
    private readonly long[][] _bytesBefore;

    private BufferCensus(string poolName, DateTimeOffset takenAt, long[][] ages, long[][] bytesBefore)
    {
        PoolName = poolName;
        TakenAt = takenAt;
        _ages = ages;
        _bytesBefore = bytesBefore;
    }

    /// <summary>Gets the name of the pool the census was taken of.</summary>
    public string PoolName { get; }

    /// <summary>Gets when the census was taken, by the pool's clock.</summary>
    public DateTimeOffset TakenAt { get; }

    /// <summary>Gets the number of outstanding buffers at least <paramref name="age"/> old.</summary>
    /// <param name="age">The least age counted, zero or more; <see cref="TimeSpan.Zero"/> counts every outstanding buffer.</param>
    /// <param name="type">The buffer type to count, or null for both.</param>
    /// <returns>The number of buffers.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="age"/> is negative, or <paramref name="type"/> is not a defined <see cref="BufferType"/>.</exception>
    public long CountOlderThan(TimeSpan age, BufferType? type = null)
    {
        ValidateAge(age);
        long count = 0;
        foreach (int t in TypesOf(type))
        {
            count += _ages[t].Length - FirstAtLeast(_ages[t], age.Ticks);
        }

        return count;
    }

    /// <summary>Gets the bytes held for outstanding buffers at least <paramref name="age"/> old.</summary>
    /// <param name="age">The least age counted, zero or more; <see cref="TimeSpan.Zero"/> counts every outstanding buffer.</param>
    /// <param name="type">The buffer type to count, or null for both.</param>
    /// <returns>The bytes: whole blocks for pooled buffers, the length for unpooled ones.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="age"/> is negative, or <paramref name="type"/> is not a defined <see cref="BufferType"/>.</exception>
    public long BytesOlderThan(TimeSpan age, BufferType? type = null)
    {
        ValidateAge(age);
        long bytes = 0;
        foreach (int t in TypesOf(type))
        {
            long[] before = _bytesBefore[t];
            bytes += before[^1] - before[FirstAtLeast(_ages[t], age.Ticks)];
        }

        return bytes;
    }

    /// <summary>Gets the age of the oldest outstanding buffer.</summary>
    /// <param name="type">The buffer type, or null for both.</param>
    /// <returns>The oldest age, or null when no buffer of that type is outstanding.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="type"/> is not a defined <see cref="BufferType"/>.</exception>
    public TimeSpan? GetOldestAge(BufferType? type = null)
    {
        long oldest = -1;
        foreach (int t in TypesOf(type))
        {
            if (_ages[t].Length > 0)
            {
                oldest = Math.Max(oldest, _ages[t][^1]);
            }
        }

        return oldest < 0 ? null : TimeSpan.FromTicks(oldest);
    }

    /// <summary>Gets the age histogram: six buckets starting at 0, 1 s, 10 s, 1 min, 10 min and 1 h, youngest first, empty ones included.</summary>
    /// <param name="type">The buffer type, or null for both.</param>
    /// <returns>A new list of six buckets.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="type"/> is not a defined <see cref="BufferType"/>.</exception>
    public IReadOnlyList<BufferAgeBucket> GetHistogram(BufferType? type = null)
    {
        TypesOf(type); // validates before any work
        var buckets = new BufferAgeBucket[s_bucketStarts.Length];
        for (int i = 0; i < s_bucketStarts.Length; i++)
        {
            TimeSpan start = s_bucketStarts[i];
            TimeSpan end = i + 1 < s_bucketStarts.Length ? s_bucketStarts[i + 1] : TimeSpan.MaxValue;
            long count = CountOlderThan(start, type) - (end == TimeSpan.MaxValue ? 0 : CountOlderThan(end, type));
            long bytes = BytesOlderThan(start, type) - (end == TimeSpan.MaxValue ? 0 : BytesOlderThan(end, type));
            buckets[i] = new BufferAgeBucket(start, end, count, bytes);
        }

        return buckets;
    }

    /// <inheritdoc/>
    public override string ToString() =>
        $"Census of {PoolName}: {CountOlderThan(TimeSpan.Zero, BufferType.Normal)} Normal buffers out (oldest {GetOldestAge(BufferType.Normal)?.ToString() ?? "-"}), {CountOlderThan(TimeSpan.Zero, BufferType.Pool)} Pool buffers out";

    private static void ValidateAge(TimeSpan age)
    {
        if (age < TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(age), age, "age must be TimeSpan.Zero or more (TimeSpan.Zero counts every outstanding buffer).");
        }
    }

    private static ReadOnlySpan<int> TypesOf(BufferType? type) => type switch
    {
        null => [(int)BufferType.Normal, (int)BufferType.Pool],
        BufferType.Normal => [(int)BufferType.Normal],
        BufferType.Pool => [(int)BufferType.Pool],
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "type must be BufferType.Normal, BufferType.Pool, or null for both."),
    };

    // The index of the first age >= ticks in an ascending array (its length when there is none).
    private static int FirstAtLeast(long[] ages, long ticks)
    {
        int low = 0;
        int high = ages.Length;
        while (low < high)
        {
            int middle = low + ((high - low) >> 1);
            if (ages[middle] < ticks)
            {
                low = middle + 1;
            }
            else
            {
                high = middle;
            }
        }

        return low;
    }

    /// <summary>Collects what a census walk finds (see <see cref="DirectBufferPool.TakeCensus"/>).</summary>
    internal struct Builder(CensusTime time) : IRentStampVisitor
    {
        private readonly CensusTime _time = time;
        private readonly List<long>[] _ages = [[], []];
        private readonly List<int>[] _bytes = [[], []];

        public readonly void Visit(long stamp, int bytes)
        {
            int type = (int)RentStamp.TypeOf(stamp);
            _ages[type].Add(_time.AgeTicksOf(stamp));
            _bytes[type].Add(bytes);
        }

        public readonly BufferCensus Build(string poolName, DateTimeOffset takenAt)
        {
            var ages = new long[_ages.Length][];
            var bytesBefore = new long[_ages.Length][];
            for (int t = 0; t < _ages.Length; t++)
            {
                long[] typeAges = [.. _ages[t]];
                int[] typeBytes = [.. _bytes[t]];
                Array.Sort(typeAges, typeBytes);
                var before = new long[typeAges.Length + 1];
                for (int i = 0; i < typeBytes.Length; i++)
                {
                    before[i + 1] = before[i] + typeBytes[i];
                }

                ages[t] = typeAges;
                bytesBefore[t] = before;
            }

            return new BufferCensus(poolName, takenAt, ages, bytesBefore);
        }
    }
}
