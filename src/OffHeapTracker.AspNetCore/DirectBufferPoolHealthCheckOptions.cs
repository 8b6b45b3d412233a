namespace OffHeapTracker.AspNetCore;

/// <summary>Thresholds for the health check <c>AddDirectBufferPools</c> registers.</summary>
public sealed class DirectBufferPoolHealthCheckOptions
{
    private double _inUseDegradedShare = 0.9;
    private TimeSpan _oldBufferAge = TimeSpan.FromMinutes(1);
    private long _maxNewLeaks;
    private long _maxNewDoubleDisposes;
    private long _maxNewFallbacks;

    /// <summary>Gets or sets the share of a pool's capacity in use (pooled buffers only) above which the check reports Degraded.</summary>
    /// <value>The default is 0.9; from 0.01 to 1. Pools with no capacity are not judged by it.</value>
    /// <exception cref="ArgumentOutOfRangeException">The value is not from 0.01 to 1.</exception>
    public double InUseDegradedShare
    {
        get => _inUseDegradedShare;
        set
        {
            if (!(value >= 0.01 && value <= 1))
            {
                throw new ArgumentOutOfRangeException(nameof(InUseDegradedShare), value, "InUseDegradedShare must be from 0.01 to 1.");
            }

            _inUseDegradedShare = value;
        }
    }

    /// <summary>Gets or sets how old a <see cref="BufferType.Normal"/> buffer the monitor holds a record of must be to count as old (a census of what should have come back).</summary>
    /// <value>The default is one minute; from 1 second to 1 day. Only buffers a monitor recorded are seen, so nothing is found while it is off.</value>
    /// <exception cref="ArgumentOutOfRangeException">The value is not from 1 second to 1 day.</exception>
    public TimeSpan OldBufferAge
    {
        get => _oldBufferAge;
        set
        {
            if (value < TimeSpan.FromSeconds(1) || value > TimeSpan.FromDays(1))
            {
                throw new ArgumentOutOfRangeException(nameof(OldBufferAge), value, "OldBufferAge must be from 00:00:01 to 1.00:00:00.");
            }

            _oldBufferAge = value;
        }
    }

    /// <summary>Gets or sets how many leaks (leases garbage-collected without <c>Dispose</c>) since the last check are tolerated before Degraded.</summary>
    /// <value>The default is 0: any new leak degrades.</value>
    /// <exception cref="ArgumentOutOfRangeException">The value is negative.</exception>
    public long MaxNewLeaks
    {
        get => _maxNewLeaks;
        set => _maxNewLeaks = NotNegative(value, nameof(MaxNewLeaks));
    }

    /// <summary>Gets or sets how many double disposes since the last check are tolerated before Degraded.</summary>
    /// <value>The default is 0.</value>
    /// <exception cref="ArgumentOutOfRangeException">The value is negative.</exception>
    public long MaxNewDoubleDisposes
    {
        get => _maxNewDoubleDisposes;
        set => _maxNewDoubleDisposes = NotNegative(value, nameof(MaxNewDoubleDisposes));
    }

    /// <summary>Gets or sets how many fallback (unpooled) allocations since the last check are tolerated before Degraded.</summary>
    /// <value>The default is 0.</value>
    /// <exception cref="ArgumentOutOfRangeException">The value is negative.</exception>
    public long MaxNewFallbacks
    {
        get => _maxNewFallbacks;
        set => _maxNewFallbacks = NotNegative(value, nameof(MaxNewFallbacks));
    }

    /// <summary>Gets or sets which pools are checked.</summary>
    /// <value>The default is null: every pool alive in the process (<see cref="DirectBufferPool.GetLivePools"/>).</value>
    public Func<DirectBufferPool, bool>? Pools { get; set; }

    private static long NotNegative(long value, string name) =>
        value >= 0 ? value : throw new ArgumentOutOfRangeException(name, value, $"{name} must be from 0 to {long.MaxValue}.");
}
