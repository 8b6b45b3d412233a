namespace OffHeapTracker.Monitoring;

/// <summary>What changed between two snapshots, per allocation site (see <see cref="BufferSnapshot.CompareTo"/>).</summary>
public sealed record SnapshotComparison
{
    /// <summary>Gets when the earlier snapshot was taken.</summary>
    public required DateTimeOffset Before { get; init; }

    /// <summary>Gets when the later snapshot was taken.</summary>
    public required DateTimeOffset After { get; init; }

    /// <summary>Gets the sites, most net growth (<see cref="SiteChange.NetBytes"/>) first.</summary>
    public required IReadOnlyList<SiteChange> Sites { get; init; }
}
