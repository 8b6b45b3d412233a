namespace OffHeapTracker;

/// <summary>One bar of a <see cref="BufferCensus"/> age histogram: the outstanding buffers whose age falls in [<see cref="MinAge"/>, <see cref="MaxAge"/>).</summary>
public sealed class BufferAgeBucket
{
    internal BufferAgeBucket(TimeSpan minAge, TimeSpan maxAge, long count, long bytes)
    {
        MinAge = minAge;
        MaxAge = maxAge;
        Count = count;
        Bytes = bytes;
    }

    /// <summary>Gets the youngest age in the bucket (inclusive).</summary>
    public TimeSpan MinAge { get; }

    /// <summary>Gets the age where the next bucket starts (exclusive); <see cref="TimeSpan.MaxValue"/> for the last bucket.</summary>
    public TimeSpan MaxAge { get; }

    /// <summary>Gets the number of buffers in the bucket.</summary>
    public long Count { get; }

    /// <summary>Gets the bytes the pool holds for them (whole blocks for pooled buffers).</summary>
    public long Bytes { get; }

    /// <inheritdoc/>
    public override string ToString() =>
        MaxAge == TimeSpan.MaxValue ? $">= {MinAge}: {Count} buffers, {Bytes} bytes" : $"[{MinAge}, {MaxAge}): {Count} buffers, {Bytes} bytes";
}
