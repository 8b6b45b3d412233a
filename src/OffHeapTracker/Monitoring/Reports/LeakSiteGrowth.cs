namespace OffHeapTracker.Monitoring;

/// <summary>How a leak site's estimated bytes and buffers moved over the monitor's recent history samples, and whether they only grew.</summary>
/// <remarks>
/// <para>
/// Read from the samples the monitor takes every <see cref="ResidentBufferMonitorOptions.SiteHistoryInterval"/> while
/// it is on, over the last <see cref="ResidentBufferMonitorOptions.SiteHistoryLength"/> (and only since it was last
/// switched on). A sample in which the site was not among the <see cref="ResidentBufferMonitorOptions.SiteHistoryTopSites"/>
/// largest is skipped, not read as zero. The figures are the site's whole holding (both buffer types, every age),
/// whatever filter the report was asked with.
/// </para>
/// <para>
/// <see cref="OnlyGrows"/> is the rule the ASP.NET Core dashboard applies: at least <see cref="MinPoints"/> points, a
/// rise at least twice, an end at least 10 % above the start, and never a fall of more than 5 % below the highest
/// value before. The tolerances are for budgeted stacks, where a site's bytes are estimated and wobble by a few
/// percent between samples while the true count only rises; a flat workload that churns (connections closing and
/// opening) falls by more than that, or does not end 10 % higher. A connection's read buffers are big and flat; a
/// leak only grows.
/// </para>
/// </remarks>
public sealed record LeakSiteGrowth
{
    /// <summary>The fewest points a verdict of growth needs: two rises take three points.</summary>
    public const int MinPoints = 3;

    /// <summary>Gets how many history samples carried the site.</summary>
    public required int Points { get; init; }

    /// <summary>Gets the site's estimated bytes in the first of them.</summary>
    public required long FirstBytes { get; init; }

    /// <summary>Gets the site's estimated bytes in the last of them.</summary>
    public required long LastBytes { get; init; }

    /// <summary>Gets the site's estimated buffers in the first of them.</summary>
    public required long FirstCount { get; init; }

    /// <summary>Gets the site's estimated buffers in the last of them.</summary>
    public required long LastCount { get; init; }

    /// <summary>Gets the time from the first of them to the last.</summary>
    public required TimeSpan Span { get; init; }

    /// <summary>Gets a value indicating whether the site only grew over the points, by the rule in the remarks: a leak suspect.</summary>
    /// <value>Always false while <see cref="HasVerdict"/> is false.</value>
    public required bool OnlyGrows { get; init; }

    /// <summary>Gets how much the site's estimated bytes changed from the first point to the last (negative when they fell).</summary>
    public long GrowthBytes => LastBytes - FirstBytes;

    /// <summary>Gets <see cref="GrowthBytes"/> per minute of <see cref="Span"/>; 0 for a single point.</summary>
    public double BytesPerMinute => Span > TimeSpan.Zero ? GrowthBytes / Span.TotalMinutes : 0;

    /// <summary>Gets a value indicating whether there are enough points (<see cref="MinPoints"/>) for a verdict; without one, <see cref="OnlyGrows"/> is false.</summary>
    public bool HasVerdict => Points >= MinPoints;

    /// <summary>Judges a site's points, oldest first, by the rule in the remarks: the verdict the monitor gives its own history, for series kept elsewhere (the ASP.NET Core dashboard keeps an hour of them).</summary>
    /// <param name="points">Each point's time (from any fixed origin), the site's bytes and its buffers, oldest first.</param>
    /// <returns>The growth over the points; with fewer than <see cref="MinPoints"/>, no verdict.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="points"/> is null.</exception>
    /// <exception cref="ArgumentException">A point is earlier than the one before it.</exception>
    public static LeakSiteGrowth Of(IEnumerable<(TimeSpan At, long Bytes, long Count)> points)
    {
        ArgumentNullException.ThrowIfNull(points);
        var series = default(GrowthSeries);
        TimeSpan previous = TimeSpan.MinValue;
        foreach ((TimeSpan at, long bytes, long count) in points)
        {
            if (at < previous)
            {
                throw new ArgumentException($"points must be oldest first: a point at {at} follows one at {previous}.", nameof(points));
            }

            previous = at;
            series.Add(at.Ticks, bytes, count);
        }

        return series.ToGrowth(TimeSpan.TicksPerSecond);
    }
}
