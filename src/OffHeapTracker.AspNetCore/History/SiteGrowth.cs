using OffHeapTracker.Monitoring;

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
        var series = new List<(TimeSpan At, long Bytes, long Count)>();
        for (int i = from; i < samples.Length; i++)
        {
            if (TryFind(samples[i].Sites, key, out SiteSample site))
            {
                series.Add((TimeSpan.FromMilliseconds(samples[i].UnixMilliseconds), site.Bytes, site.Count));
            }
        }

        // The verdict is the core monitor's own rule, so the dashboard and GetLeakSites never disagree on a suspect.
        LeakSiteGrowth growth = LeakSiteGrowth.Of(series);
        int points = series.Count;
        (TimeSpan At, long Bytes, long Count) middle = points > 0 ? series[(points - 1) / 2] : default;
        TimeSpan last = points > 0 ? series[^1].At : TimeSpan.Zero;
        return new SiteGrowth(
            points,
            growth.FirstBytes,
            growth.LastBytes,
            growth.Span.TotalMinutes,
            growth.OnlyGrows,
            growth.LastBytes - middle.Bytes,
            (last - middle.At).TotalMinutes);
    }

    private static bool TryFind(SiteSample[] sites, ulong key, out SiteSample found)
    {
        foreach (SiteSample site in sites)
        {
            if (site.Key == key)
            {
                found = site;
                return true;
            }
        }

        found = default;
        return false;
    }
}
