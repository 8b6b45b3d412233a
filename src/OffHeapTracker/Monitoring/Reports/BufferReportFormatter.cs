using System.Globalization;
using System.Text;
using System.Text.Json;

namespace OffHeapTracker.Monitoring;

/// <summary>Every export of the monitor's reports, in one place: dble's vertical text, JSON, and collapsed stacks.</summary>
/// <remarks>
/// JSON uses stable snake_case names matching dble's <c>dble_memory_resident</c> columns (<c>id</c>,
/// <c>alive_second</c>, <c>stacktrace</c>, <c>buffer_type</c>, <c>allocate_size</c>, <c>allocate_time</c>,
/// <c>context</c>) plus ours (<c>actual_size</c>, <c>pool_name</c>, <c>thread_id</c>, <c>address</c>), through a
/// source-generated serializer (no reflection, trimming-safe). Collapsed stacks (<c>frame;frame;frame bytes</c>,
/// root first, one site a line) load in flamegraph.pl and speedscope.
/// </remarks>
public static partial class BufferReportFormatter
{
    private static readonly string[] s_labels =
        ["id", "alive_second", "stacktrace", "buffer_type", "allocate_size", "actual_size", "allocate_time", "context", "pool_name", "thread_id"];

    private static readonly int s_labelWidth = s_labels.Max(static label => label.Length);

    /// <summary>Writes the records one block per row, labels right-aligned, the stack on the lines below its label.</summary>
    /// <remarks>
    /// Contexts, pool names and stack frames are written with their control characters escaped (<c>\n</c>,
    /// <c>\r</c>, <c>\t</c>, otherwise <c>\uXXXX</c>) and backslashes doubled, so a context such as a request path
    /// cannot add lines, or forge a row, in the report.
    /// </remarks>
    /// <param name="buffers">The rows, as <see cref="ResidentBufferMonitor.GetResident"/> returns them.</param>
    /// <returns>
    /// The text, ending with a <c>N rows in set</c> line; <c>Empty set</c> when there are none, followed by the
    /// reason when <paramref name="buffers"/> is an <see cref="EmptyReport{T}"/> (<c>Empty set: The monitor is off…</c>).
    /// </returns>
    /// <exception cref="ArgumentNullException"><paramref name="buffers"/> is null.</exception>
    public static string FormatVertical(IReadOnlyList<ResidentBuffer> buffers)
    {
        ArgumentNullException.ThrowIfNull(buffers);
        var text = new StringBuilder();
        for (int i = 0; i < buffers.Count; i++)
        {
            AppendVerticalRow(text, buffers[i], i + 1);
        }

        AppendVerticalFooter(text, buffers);
        return text.ToString();
    }

    /// <summary>Writes resident records as a JSON array.</summary>
    /// <param name="buffers">The rows.</param>
    /// <returns>The JSON text.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="buffers"/> is null.</exception>
    public static string ToJson(IReadOnlyList<ResidentBuffer> buffers)
    {
        ArgumentNullException.ThrowIfNull(buffers);
        return JsonSerializer.Serialize(buffers, ReportJsonContext.Default.IReadOnlyListResidentBuffer);
    }

    /// <summary>Reads resident records written by <see cref="ToJson(IReadOnlyList{ResidentBuffer})"/>, for example from a diagnostics endpoint.</summary>
    /// <param name="json">The JSON text.</param>
    /// <returns>The rows.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="json"/> is null.</exception>
    /// <exception cref="JsonException">The text is not such an array.</exception>
    public static IReadOnlyList<ResidentBuffer> ParseResidentJson(string json)
    {
        ArgumentNullException.ThrowIfNull(json);
        return JsonSerializer.Deserialize(json, ReportJsonContext.Default.IReadOnlyListResidentBuffer)
            ?? throw new JsonException("Expected a JSON array of resident buffers, found null.");
    }

    /// <summary>Writes leak sites as a JSON array, without their raw stacks.</summary>
    /// <param name="sites">The sites, as <see cref="ResidentBufferMonitor.GetLeakSites"/> returns them.</param>
    /// <returns>The JSON text.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="sites"/> is null.</exception>
    public static string ToJson(IReadOnlyList<LeakSite> sites) => ToJson(sites, includeRawStacks: false);

    /// <summary>Writes leak sites as a JSON array, with or without the stacks as captured (<see cref="LeakSite.RawStackTraces"/>, <c>raw_stacktraces</c>).</summary>
    /// <param name="sites">The sites, as <see cref="ResidentBufferMonitor.GetLeakSites"/> returns them.</param>
    /// <param name="includeRawStacks">True to write each site's raw stacks.</param>
    /// <returns>The JSON text.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="sites"/> is null.</exception>
    public static string ToJson(IReadOnlyList<LeakSite> sites, bool includeRawStacks)
    {
        ArgumentNullException.ThrowIfNull(sites);
        return JsonSerializer.Serialize(sites, includeRawStacks ? ReportJsonContext.Default.IReadOnlyListLeakSite : ReportJsonContext.LeakSitesWithoutRawStacks);
    }

    /// <summary>Writes a snapshot comparison as JSON.</summary>
    /// <param name="comparison">The comparison.</param>
    /// <returns>The JSON text.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="comparison"/> is null.</exception>
    public static string ToJson(SnapshotComparison comparison)
    {
        ArgumentNullException.ThrowIfNull(comparison);
        return JsonSerializer.Serialize(comparison, ReportJsonContext.Default.SnapshotComparison);
    }

    /// <summary>Writes a pool's statistics as JSON.</summary>
    /// <param name="statistics">The statistics, from <see cref="DirectBufferPool.GetStatistics"/>.</param>
    /// <returns>The JSON text.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="statistics"/> is null.</exception>
    public static string ToJson(DirectBufferPoolStatistics statistics)
    {
        ArgumentNullException.ThrowIfNull(statistics);
        return JsonSerializer.Serialize(statistics, ReportJsonContext.Default.DirectBufferPoolStatistics);
    }

    /// <summary>Writes leak sites as collapsed stacks, one line each: frames root first, separated by <c>;</c>, then a space and the bytes held.</summary>
    /// <param name="sites">The sites.</param>
    /// <returns>
    /// The text, which flamegraph.pl and speedscope load as is. When <paramref name="sites"/> is an
    /// <see cref="EmptyReport{T}"/>, one comment line says why (<c># No leak sites: …</c>); it does not end in a
    /// number, so both tools skip it.
    /// </returns>
    /// <exception cref="ArgumentNullException"><paramref name="sites"/> is null.</exception>
    public static string FormatCollapsed(IReadOnlyList<LeakSite> sites)
    {
        ArgumentNullException.ThrowIfNull(sites);
        var text = new StringBuilder();
        foreach (LeakSite site in sites)
        {
            AppendCollapsed(text, site);
        }

        AppendCollapsedFooter(text, sites);
        return text.ToString();
    }

    /// <summary>Writes leak sites for a person to read: per site, its bytes, buffers, types and ages, a <c>suspect:</c> line with its growth when it only grows, then its frames; optionally the stacks as captured.</summary>
    /// <param name="sites">The sites, as <see cref="ResidentBufferMonitor.GetLeakSites"/> returns them.</param>
    /// <param name="includeRawStacks">True to add, under each site, the stacks folded into it as captured (<see cref="LeakSite.RawStackTraces"/>).</param>
    /// <returns>The text; for an <see cref="EmptyReport{T}"/>, one line that says why it is empty.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="sites"/> is null.</exception>
    /// <remarks>Frames are escaped as in <see cref="FormatVertical"/>, so no frame can add a line.</remarks>
    public static string FormatSites(IReadOnlyList<LeakSite> sites, bool includeRawStacks = false)
    {
        ArgumentNullException.ThrowIfNull(sites);
        var text = new StringBuilder();
        foreach (LeakSite site in sites)
        {
            AppendSite(text, site, includeRawStacks);
        }

        if (sites.Count == 0)
        {
            text.Append("No leak sites").Append(sites is EmptyReport<LeakSite> empty ? ": " + empty.Reason.Message : ".").Append('\n');
        }

        return text.ToString();
    }

    private static void AppendCollapsed(StringBuilder text, LeakSite site)
    {
        string[] frames = site.StackTrace.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        for (int i = frames.Length - 1; i >= 0; i--)
        {
            // ';' separates frames and the last space separates the count, so neither may stay inside one;
            // spaces elsewhere are fine (both tools split at the last space).
            text.Append(frames[i].Replace(';', ',')).Append(i > 0 ? ";" : string.Empty);
        }

        text.Append(' ').Append(site.TotalBytes.ToString(CultureInfo.InvariantCulture)).Append('\n');
    }

    private static void AppendCollapsedFooter(StringBuilder text, IReadOnlyList<LeakSite> sites)
    {
        if (sites is EmptyReport<LeakSite> empty)
        {
            // A comment for people; both tools skip a line that does not end in " <number>", and the reason ends in '.'.
            text.Append("# No leak sites: ");
            ReportTextEscaper.AppendEscaped(text, empty.Reason.Message).Append('\n');
        }
    }

    private static void AppendSite(StringBuilder text, LeakSite site, bool includeRawStacks)
    {
        text.Append(site.IsEstimate ? "~" : string.Empty)
            .Append(site.EstimatedBytes.ToString("N0", CultureInfo.InvariantCulture)).Append(" bytes in ")
            .Append(site.IsEstimate ? "~" : string.Empty)
            .Append(site.EstimatedCount.ToString("N0", CultureInfo.InvariantCulture)).Append(site.EstimatedCount == 1 ? " buffer (" : " buffers (")
            .AppendJoin('/', site.BufferTypes.Select(static t => t == BufferType.Pool ? "POOL" : "NORMAL"))
            .Append("), oldest ").Append(site.OldestAgeSeconds.ToString("0.0", CultureInfo.InvariantCulture))
            .Append(" s, newest ").Append(site.NewestAgeSeconds.ToString("0.0", CultureInfo.InvariantCulture)).Append(" s\n");
        if (site.IsSuspect)
        {
            AppendSuspect(text, site.Growth!);
        }

        AppendIndentedFrames(text, site.StackTrace, "    at ");
        if (includeRawStacks)
        {
            for (int i = 0; i < site.RawStackTraces.Count; i++)
            {
                text.Append("  raw stack ").Append(i + 1).Append(" of ").Append(site.RawStackTraceCount).Append(":\n");
                AppendIndentedFrames(text, site.RawStackTraces[i], "    ");
            }
        }

        text.Append('\n');
    }

    /// <summary>The line under a suspect site's header: <c>  suspect: +1.5 MiB over 4 min, only growing (+384 KiB/min)</c>.</summary>
    private static void AppendSuspect(StringBuilder text, LeakSiteGrowth growth)
    {
        text.Append("  suspect: ").Append(growth.GrowthBytes >= 0 ? "+" : "-").Append(FormatBytes(Math.Abs(growth.GrowthBytes)))
            .Append(" over ").Append(FormatSpan(growth.Span)).Append(", only growing (")
            .Append(growth.BytesPerMinute >= 0 ? "+" : "-").Append(FormatBytes((long)Math.Abs(growth.BytesPerMinute))).Append("/min)\n");
    }

    private static string FormatBytes(long bytes) => bytes switch
    {
        < 1024 => bytes.ToString(CultureInfo.InvariantCulture) + " B",
        < 1024 * 1024 => (bytes / 1024.0).ToString("0.#", CultureInfo.InvariantCulture) + " KiB",
        < 1024L * 1024 * 1024 => (bytes / (1024.0 * 1024)).ToString("0.#", CultureInfo.InvariantCulture) + " MiB",
        _ => (bytes / (1024.0 * 1024 * 1024)).ToString("0.#", CultureInfo.InvariantCulture) + " GiB",
    };

    private static string FormatSpan(TimeSpan span) =>
        span.TotalSeconds < 10 ? span.TotalSeconds.ToString("0.#", CultureInfo.InvariantCulture) + " s"
        : span.TotalSeconds < 90 ? span.TotalSeconds.ToString("0", CultureInfo.InvariantCulture) + " s"
        : span.TotalHours < 2 ? span.TotalMinutes.ToString("0.#", CultureInfo.InvariantCulture) + " min"
        : span.TotalHours.ToString("0.#", CultureInfo.InvariantCulture) + " h";

    private static void AppendIndentedFrames(StringBuilder text, string frames, string indent)
    {
        foreach (string frame in frames.Split('\n'))
        {
            ReportTextEscaper.AppendEscaped(text.Append(indent), frame).Append('\n');
        }
    }

    private static void AppendVerticalRow(StringBuilder text, ResidentBuffer row, int number)
    {
        text.Append("*************************** ").Append(number).Append(". row ***************************\n");
        AppendField(text, "id", row.Id.ToString(CultureInfo.InvariantCulture));
        AppendField(text, "alive_second", row.AliveSeconds.ToString("0.000", CultureInfo.InvariantCulture));
        AppendField(text, "stacktrace", string.Empty);
        ReportTextEscaper.AppendEscapedLines(text, row.StackTrace).Append('\n');
        AppendField(text, "buffer_type", row.BufferType == BufferType.Pool ? "POOL" : "NORMAL");
        AppendField(text, "allocate_size", row.AllocateSize.ToString(CultureInfo.InvariantCulture));
        AppendField(text, "actual_size", row.ActualSize.ToString(CultureInfo.InvariantCulture));
        AppendField(text, "allocate_time", row.AllocateTime.ToLocalTime().ToString("yyyy-MM-dd HH:mm:ss.fff", CultureInfo.InvariantCulture));
        AppendField(text, "context", row.Context ?? "NULL", escape: true);
        AppendField(text, "pool_name", row.PoolName, escape: true);
        AppendField(text, "thread_id", row.ThreadId.ToString(CultureInfo.InvariantCulture));
    }

    private static void AppendVerticalFooter(StringBuilder text, IReadOnlyList<ResidentBuffer> rows)
    {
        text.Append(rows.Count switch
        {
            0 => "Empty set",
            1 => "1 row in set",
            _ => $"{rows.Count} rows in set",
        });
        if (rows is EmptyReport<ResidentBuffer> empty)
        {
            ReportTextEscaper.AppendEscaped(text.Append(": "), empty.Reason.Message);
        }

        text.Append('\n');
    }

    private static void AppendField(StringBuilder text, string label, string value, bool escape = false)
    {
        text.Append(' ', s_labelWidth - label.Length).Append(label).Append(':');
        if (value.Length > 0)
        {
            text.Append(' ');
            if (escape)
            {
                ReportTextEscaper.AppendEscaped(text, value);
            }
            else
            {
                text.Append(value);
            }
        }

        text.Append('\n');
    }
}
