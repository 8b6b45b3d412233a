namespace OffHeapTracker.Monitoring;

/// <summary>Every record a monitor held at one moment, of any age: one side of a before/after comparison.</summary>
/// <remarks>Holds copies of the records, never leases; comparing two snapshots touches neither the pool nor the monitor.</remarks>
public sealed class BufferSnapshot
{
    internal BufferSnapshot(DateTimeOffset takenAt, IReadOnlyList<ResidentBuffer> buffers)
    {
        TakenAt = takenAt;
        Buffers = buffers;
    }

    /// <summary>Gets when the snapshot was taken.</summary>
    public DateTimeOffset TakenAt { get; }

    /// <summary>Gets the records, oldest first.</summary>
    public IReadOnlyList<ResidentBuffer> Buffers { get; }

    /// <summary>Compares this snapshot with a later one, site by site: what was added, what was freed, what stayed.</summary>
    /// <param name="after">The later snapshot.</param>
    /// <returns>One entry per allocation site that changed or stayed, most net growth first.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="after"/> is null.</exception>
    public SnapshotComparison CompareTo(BufferSnapshot after)
    {
        ArgumentNullException.ThrowIfNull(after);
        var before = new Dictionary<long, ResidentBuffer>(Buffers.Count);
        foreach (ResidentBuffer buffer in Buffers)
        {
            before[buffer.Id] = buffer;
        }

        var sites = new Dictionary<string, SiteChange>(StringComparer.Ordinal);
        var stillThere = new HashSet<long>();
        foreach (ResidentBuffer buffer in after.Buffers)
        {
            SiteChange site = SiteOf(sites, buffer);
            if (before.ContainsKey(buffer.Id))
            {
                stillThere.Add(buffer.Id);
                sites[site.StackTrace] = site with { StillResidentCount = site.StillResidentCount + 1, StillResidentBytes = site.StillResidentBytes + buffer.ActualSize };
            }
            else
            {
                sites[site.StackTrace] = site with { AddedCount = site.AddedCount + 1, AddedBytes = site.AddedBytes + buffer.ActualSize };
            }
        }

        foreach (ResidentBuffer buffer in Buffers)
        {
            if (!stillThere.Contains(buffer.Id))
            {
                SiteChange site = SiteOf(sites, buffer);
                sites[site.StackTrace] = site with { FreedCount = site.FreedCount + 1, FreedBytes = site.FreedBytes + buffer.ActualSize };
            }
        }

        var ordered = sites.Values.ToList();
        ordered.Sort(static (a, b) =>
        {
            int byNet = b.NetBytes.CompareTo(a.NetBytes);
            return byNet != 0 ? byNet : string.CompareOrdinal(a.StackTrace, b.StackTrace);
        });
        return new SnapshotComparison { Before = TakenAt, After = after.TakenAt, Sites = ordered };
    }

    private static SiteChange SiteOf(Dictionary<string, SiteChange> sites, ResidentBuffer buffer)
    {
        string stack = buffer.StackTrace.Length > 0 ? buffer.StackTrace : LeakSite.NoStack;
        return sites.TryGetValue(stack, out SiteChange? site) ? site : new SiteChange { StackTrace = stack };
    }
}
