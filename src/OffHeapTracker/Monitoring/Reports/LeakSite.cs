using System.Text.Json.Serialization;

namespace OffHeapTracker.Monitoring;

/// <summary>The buffers still out that were allocated from one stack: an answer to "which code holds the most".</summary>
public sealed record LeakSite
{
    /// <summary>The text used for records whose stack was not captured (stacks off, or not sampled).</summary>
    public const string NoStack = "(no stack captured)";

    /// <summary>Gets the allocation stack shared by the buffers, innermost frame first; <see cref="NoStack"/> for buffers without one.</summary>
    [JsonPropertyName("stacktrace")]
    public required string StackTrace { get; init; }

    /// <summary>Gets how many buffers are out from this site.</summary>
    public required int Count { get; init; }

    /// <summary>Gets their total size in bytes (block sizes).</summary>
    public required long TotalBytes { get; init; }

    /// <summary>Gets the age of the oldest of them, in seconds.</summary>
    [JsonPropertyName("oldest_alive_second")]
    public required double OldestAgeSeconds { get; init; }

    /// <summary>Gets the age of the youngest of them, in seconds.</summary>
    [JsonPropertyName("newest_alive_second")]
    public required double NewestAgeSeconds { get; init; }

    /// <summary>Gets the buffer types among them.</summary>
    public required IReadOnlyList<BufferType> BufferTypes { get; init; }

    /// <summary>Gets the ids of up to five of them, oldest first, to look up in <see cref="ResidentBufferMonitor.GetResident"/>.</summary>
    public required IReadOnlyList<long> SampleIds { get; init; }
}
