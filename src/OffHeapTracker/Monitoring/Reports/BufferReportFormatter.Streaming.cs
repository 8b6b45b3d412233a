using System.Text;
using System.Text.Json;

namespace OffHeapTracker.Monitoring;

/// <summary>The same exports written to a stream as they are produced, for diagnostics endpoints that must not build a large report in memory.</summary>
public static partial class BufferReportFormatter
{
    /// <summary>How much text is gathered before it is handed to the writer: big enough for few writes, small enough to stay out of the large object heap.</summary>
    private const int ChunkChars = 16 * 1024;

    /// <summary>Writes <see cref="FormatVertical"/>'s text to <paramref name="writer"/> a chunk at a time.</summary>
    /// <param name="writer">Where the text goes; flushed at the end, not disposed.</param>
    /// <param name="buffers">The rows, as <see cref="ResidentBufferMonitor.GetResident"/> returns them.</param>
    /// <param name="cancellationToken">Cancels the write.</param>
    /// <returns>A task that completes when the text is written and flushed.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="writer"/> or <paramref name="buffers"/> is null.</exception>
    public static Task WriteVerticalAsync(TextWriter writer, IReadOnlyList<ResidentBuffer> buffers, CancellationToken cancellationToken = default) =>
        WriteChunkedAsync(writer, buffers, static (text, row, index) => AppendVerticalRow(text, row, index + 1), AppendVerticalFooter, cancellationToken);

    /// <summary>Writes <see cref="FormatCollapsed"/>'s text to <paramref name="writer"/> a chunk at a time.</summary>
    /// <param name="writer">Where the text goes; flushed at the end, not disposed.</param>
    /// <param name="sites">The sites, as <see cref="ResidentBufferMonitor.GetLeakSites"/> returns them.</param>
    /// <param name="cancellationToken">Cancels the write.</param>
    /// <returns>A task that completes when the text is written and flushed.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="writer"/> or <paramref name="sites"/> is null.</exception>
    public static Task WriteCollapsedAsync(TextWriter writer, IReadOnlyList<LeakSite> sites, CancellationToken cancellationToken = default) =>
        WriteChunkedAsync(writer, sites, static (text, site, _) => AppendCollapsed(text, site), AppendCollapsedFooter, cancellationToken);

    /// <summary>Writes <see cref="ToJson(IReadOnlyList{ResidentBuffer})"/>'s JSON to <paramref name="stream"/> as it is serialized, with or without the <c>address</c> field.</summary>
    /// <param name="stream">Where the UTF-8 JSON goes; not disposed.</param>
    /// <param name="buffers">The rows, as <see cref="ResidentBufferMonitor.GetResident"/> returns them.</param>
    /// <param name="includeAddresses">True to write each buffer's native address.</param>
    /// <param name="cancellationToken">Cancels the write.</param>
    /// <returns>A task that completes when the JSON is written.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="stream"/> or <paramref name="buffers"/> is null.</exception>
    /// <remarks>A buffer's native address is a live pointer; a report served to a network leaves it out unless its owner asks for it.</remarks>
    public static Task WriteJsonAsync(Stream stream, IReadOnlyList<ResidentBuffer> buffers, bool includeAddresses, CancellationToken cancellationToken = default) =>
        JsonSerializer.SerializeAsync(
            NotNull(stream),
            NotNull(buffers),
            includeAddresses ? ReportJsonContext.Default.IReadOnlyListResidentBuffer : ReportJsonContext.ResidentBuffersWithoutAddresses,
            cancellationToken);

    /// <summary>Writes <see cref="ToJson(IReadOnlyList{LeakSite})"/>'s JSON to <paramref name="stream"/> as it is serialized.</summary>
    /// <param name="stream">Where the UTF-8 JSON goes; not disposed.</param>
    /// <param name="sites">The sites, as <see cref="ResidentBufferMonitor.GetLeakSites"/> returns them.</param>
    /// <param name="cancellationToken">Cancels the write.</param>
    /// <returns>A task that completes when the JSON is written.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="stream"/> or <paramref name="sites"/> is null.</exception>
    public static Task WriteJsonAsync(Stream stream, IReadOnlyList<LeakSite> sites, CancellationToken cancellationToken = default) =>
        WriteJsonAsync(stream, sites, includeRawStacks: false, cancellationToken);

    /// <summary>Writes <see cref="ToJson(IReadOnlyList{LeakSite}, bool)"/>'s JSON to <paramref name="stream"/> as it is serialized, with or without each site's raw stacks.</summary>
    /// <param name="stream">Where the UTF-8 JSON goes; not disposed.</param>
    /// <param name="sites">The sites, as <see cref="ResidentBufferMonitor.GetLeakSites"/> returns them.</param>
    /// <param name="includeRawStacks">True to write each site's stacks as captured (<c>raw_stacktraces</c>).</param>
    /// <param name="cancellationToken">Cancels the write.</param>
    /// <returns>A task that completes when the JSON is written.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="stream"/> or <paramref name="sites"/> is null.</exception>
    public static Task WriteJsonAsync(Stream stream, IReadOnlyList<LeakSite> sites, bool includeRawStacks, CancellationToken cancellationToken = default) =>
        JsonSerializer.SerializeAsync(
            NotNull(stream),
            NotNull(sites),
            includeRawStacks ? ReportJsonContext.Default.IReadOnlyListLeakSite : ReportJsonContext.LeakSitesWithoutRawStacks,
            cancellationToken);

    private static T NotNull<T>(T value, [System.Runtime.CompilerServices.CallerArgumentExpression(nameof(value))] string? name = null)
        where T : class
    {
        ArgumentNullException.ThrowIfNull(value, name);
        return value;
    }

    private static Task WriteChunkedAsync<T>(
        TextWriter writer,
        IReadOnlyList<T> items,
        Action<StringBuilder, T, int> append,
        Action<StringBuilder, IReadOnlyList<T>> footer,
        CancellationToken cancellationToken)
    {
        // Checked here, not in the async body, so a null argument throws at the call rather than in the task.
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentNullException.ThrowIfNull(items);
        return WriteChunkedCoreAsync(writer, items, append, footer, cancellationToken);
    }

    private static async Task WriteChunkedCoreAsync<T>(
        TextWriter writer,
        IReadOnlyList<T> items,
        Action<StringBuilder, T, int> append,
        Action<StringBuilder, IReadOnlyList<T>> footer,
        CancellationToken cancellationToken)
    {
        var text = new StringBuilder(ChunkChars + 1024);
        for (int i = 0; i < items.Count; i++)
        {
            append(text, items[i], i);
            if (text.Length >= ChunkChars)
            {
                await writer.WriteAsync(text, cancellationToken).ConfigureAwait(false);
                text.Clear();
            }
        }

        footer(text, items);
        await writer.WriteAsync(text, cancellationToken).ConfigureAwait(false);
        await writer.FlushAsync(cancellationToken).ConfigureAwait(false);
    }
}
