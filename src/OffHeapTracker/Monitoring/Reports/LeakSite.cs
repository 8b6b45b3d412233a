using System.Text.Json.Serialization;

namespace OffHeapTracker.Monitoring;

/// <summary>The buffers still out that were allocated from one code path: an answer to "which code holds the most".</summary>
/// <remarks>
/// A site is the allocating code path as <see cref="CapturedStackTrace.Text"/> names it, not the exact stack: the
/// same handler leaking after being resumed by the thread pool, by the socket engine or inline by whoever completed
/// its task is one site. The stacks as captured are in <see cref="RawStackTraces"/>.
/// </remarks>
public sealed record LeakSite
{
    /// <summary>The text used for records whose stack was not captured (stacks off, or not sampled).</summary>
    public const string NoStack = "(no stack captured)";

    /// <summary>Gets the allocation site shared by the buffers, one frame a line, innermost first: the first line is the code that asked for memory; <see cref="NoStack"/> for buffers without a stack.</summary>
    [JsonPropertyName("stacktrace")]
    public required string StackTrace { get; init; }

    /// <summary>Gets up to five of the stacks folded into this site, as captured (every frame, the runtime's names), the one with the most buffers first.</summary>
    /// <value>Empty for <see cref="NoStack"/>, and for sites built by hand. The default JSON leaves them out; <see cref="BufferReportFormatter.ToJson(IReadOnlyList{LeakSite}, bool)"/> writes them on request.</value>
    [JsonPropertyName("raw_stacktraces")]
    public IReadOnlyList<string> RawStackTraces { get; init; } = [];

    /// <summary>Gets how many distinct captured stacks were folded into this site: more than <see cref="RawStackTraces"/> holds when it is over five (or when some differ only in IL offsets, which the text does not show).</summary>
    [JsonPropertyName("raw_stacktrace_count")]
    public int RawStackTraceCount { get; init; }

    /// <summary>Gets how many buffers are out from this site.</summary>
    public required int Count { get; init; }

    /// <summary>Gets their total size in bytes (block sizes).</summary>
    public required long TotalBytes { get; init; }

    /// <summary>Gets how many buffers this site is estimated to hold: equal to <see cref="Count"/> when every buffer got a stack.</summary>
    /// <remarks>
    /// Under a budgeted or sampled stack policy every buffer is still recorded, but only some carry a stack, each
    /// standing for the N rents it was drawn from. The matching records are then shared out between sites in
    /// proportion to their sampled records' weights: the total is exact, the split is estimated. The
    /// <see cref="NoStack"/> site then estimates 0 (its records belong to the sampled sites), unless nothing was
    /// sampled. See <see cref="IsEstimate"/>.
    /// </remarks>
    public long EstimatedCount { get; init; }

    /// <summary>Gets the bytes this site is estimated to hold, shared out as <see cref="EstimatedCount"/> is. Sites are ranked by it.</summary>
    public long EstimatedBytes { get; init; }

    /// <summary>Gets a value indicating whether <see cref="EstimatedCount"/> and <see cref="EstimatedBytes"/> are estimates (some records stood for more than one buffer) rather than exact counts.</summary>
    public bool IsEstimate { get; init; }

    /// <summary>Gets the age of the oldest of them, in seconds.</summary>
    [JsonPropertyName("oldest_alive_second")]
    public required double OldestAgeSeconds { get; init; }

    /// <summary>Gets the age of the youngest of them, in seconds.</summary>
    [JsonPropertyName("newest_alive_second")]
    public required double NewestAgeSeconds { get; init; }

    /// <summary>Gets the buffer types among them.</summary>
    public required IReadOnlyList<BufferType> BufferTypes { get; init; }

    /// <summary>Gets how the site's bytes moved over the monitor's recent history, and whether they only grew; null when the history holds no sample of it.</summary>
    /// <value>
    /// Null for a site not sampled yet (the monitor samples its largest sites every
    /// <see cref="ResidentBufferMonitorOptions.SiteHistoryInterval"/>), when the history is off
    /// (<see cref="ResidentBufferMonitorOptions.SiteHistoryTopSites"/> is 0), and for sites built by hand. The JSON
    /// leaves it out when null.
    /// </value>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public LeakSiteGrowth? Growth { get; init; }

    /// <summary>Gets a value indicating whether the site only grew over the monitor's recent history (<see cref="LeakSiteGrowth.OnlyGrows"/>): a leak suspect, listed ahead of sites that are merely big.</summary>
    [JsonIgnore]
    public bool IsSuspect => Growth is { OnlyGrows: true };

    /// <summary>Gets the ids of up to five of them, oldest first, to look up in <see cref="ResidentBufferMonitor.GetResident"/>.</summary>
    public required IReadOnlyList<long> SampleIds { get; init; }
}
