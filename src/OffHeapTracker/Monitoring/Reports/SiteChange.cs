using System.Text.Json.Serialization;

namespace OffHeapTracker.Monitoring;

/// <summary>One allocation site's buffers across two snapshots.</summary>
public sealed record SiteChange
{
    /// <summary>Gets the allocation stack; <see cref="LeakSite.NoStack"/> for buffers without one.</summary>
    [JsonPropertyName("stacktrace")]
    public required string StackTrace { get; init; }

    /// <summary>Gets the buffers out in the later snapshot but not the earlier.</summary>
    public int AddedCount { get; init; }

    /// <summary>Gets their bytes.</summary>
    public long AddedBytes { get; init; }

    /// <summary>Gets the buffers out in the earlier snapshot and returned by the later.</summary>
    public int FreedCount { get; init; }

    /// <summary>Gets their bytes.</summary>
    public long FreedBytes { get; init; }

    /// <summary>Gets the buffers out in both.</summary>
    public int StillResidentCount { get; init; }

    /// <summary>Gets their bytes.</summary>
    public long StillResidentBytes { get; init; }

    /// <summary>Gets <see cref="AddedBytes"/> less <see cref="FreedBytes"/>: how much this site grew.</summary>
    public long NetBytes => AddedBytes - FreedBytes;
}
