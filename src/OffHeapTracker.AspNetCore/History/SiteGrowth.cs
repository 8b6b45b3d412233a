namespace OffHeapTracker.AspNetCore.History;

/// <summary>How one site's bytes moved over the samples since the monitor was last switched on, and whether it only grew.</summary>
/// <param name="Points">The samples that carried the site.</param>
/// <param name="FirstBytes">Its bytes in the first of them.</param>
/// <param name="LastBytes">Its bytes in the last.</param>
/// <param name="Minutes">The time between the two.</param>
/// <param name="OnlyGrows">True when it rose at least twice, ended at least 10 % above where it began, and never fell more than 5 % below the highest value before.</param>
/// <param name="RecentBytes">The change over the later half of the points: what an operator asks ("is it growing now?"), where a site that filled up once and then stayed flat shows 0.</param>
/// <param name="RecentMinutes">The time the later half spans.</param>
internal readonly record struct SiteGrowth(int Points, long FirstBytes, long LastBytes, double Minutes, bool OnlyGrows, long RecentBytes, double RecentMinutes)
{
    /// <summary>The fewest samples a verdict of growth needs: two rises take three points.</summary>
    public const int MinPoints = 3;

    public long GrowthBytes => LastBytes - FirstBytes;

    public double BytesPerMinute => Minutes > 0 ? GrowthBytes / Minutes : 0;

    public double RecentBytesPerMinute => RecentMinutes > 0 ? RecentBytes / RecentMinutes : 0;

    /// <summary>Reads <paramref name="key"/>'s series from <paramref name="samples"/> (oldest first), starting at <paramref name="from"/>.</summary>
    /// <remarks>
    /// A sample without the site (it fell out of the top sites) is skipped, not read as zero. The tolerances are for
    /// budgeted stacks, where a site's bytes are estimated and wobble by a few percent between samples while the true
    /// count only rises; a flat workload that churns (connections closing and opening) falls by more than that, or
    /// does not end 10 % higher.
    /// </remarks>
    public static SiteGrowth Of(HistorySample[] samples, int from, ulong key)
    {
        int points = 0, rises = 0;
        long first = 0, last = 0, max = 0, firstTime = 0, lastTime = 0;
        bool fell = false;
        var series = new List<(long Time, long Bytes)>();
        for (int i = from; i < samples.Length; i++)
        {
            if (!TryFind(samples[i].Sites, key, out long bytes))
            {
                continue;
            }

            if (points == 0)
            {
                first = bytes;
                firstTime = samples[i].UnixMilliseconds;
            }
            else
            {
                if (bytes > last)
                {
                    rises++;
                }

                fell |= bytes < max * 0.95;
            }

            points++;
            series.Add((samples[i].UnixMilliseconds, bytes));
            last = bytes;
            lastTime = samples[i].UnixMilliseconds;
            max = Math.Max(max, bytes);
        }

        bool grows = points >= MinPoints && rises >= 2 && !fell && last >= first * 1.1 && last > first;
        (long Time, long Bytes) middle = points > 0 ? series[(points - 1) / 2] : default;
        return new SiteGrowth(points, first, last, (lastTime - firstTime) / 60_000.0, grows, last - middle.Bytes, (lastTime - middle.Time) / 60_000.0);
    }

    private static bool TryFind(SiteSample[] sites, ulong key, out long bytes)
    {
        foreach (SiteSample site in sites)
        {
            if (site.Key == key)
            {
                bytes = site.Bytes;
                return true;
            }
        }

        bytes = 0;
        return false;
    }
}
