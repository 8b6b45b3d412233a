using System.Text;
using System.Text.Json;

namespace OffHeapTracker.Monitoring;

/// <summary>The same exports written to a stream as they are produced, for diagnostics endpoints that must not build a large report in memory.</summary>
public static partial class BufferReportFormatter
{
    /// <summary>How much text is gathered before it is handed to the writer: big enough for few writes, small enough to stay out of the large object heap.</summary>
    private const int ChunkChars = 16 * 1024;

    /// <summary>Writes <see cref="FormatVertical"/>'s text to <paramref name="writer"/> a chunk at a time.</summary>
    internal static Task WriteVerticalAsync(TextWriter writer, IReadOnlyList<ResidentBuffer> buffers, CancellationToken cancellationToken) =>
        WriteChunkedAsync(writer, buffers, static (text, row, index) => AppendVerticalRow(text, row, index + 1), AppendVerticalFooter, cancellationToken);

    /// <summary>Writes <see cref="FormatCollapsed"/>'s text to <paramref name="writer"/> a chunk at a time.</summary>
    internal static Task WriteCollapsedAsync(TextWriter writer, IReadOnlyList<LeakSite> sites, CancellationToken cancellationToken) =>
        WriteChunkedAsync(writer, sites, static (text, site, _) => AppendCollapsed(text, site), footer: null, cancellationToken);

    /// <summary>Writes <see cref="ToJson(IReadOnlyList{ResidentBuffer})"/>'s JSON to <paramref name="stream"/> as it is serialized, with or without the <c>address</c> field.</summary>
    /// <remarks>A buffer's native address is a live pointer; a report served to a network leaves it out unless its owner asks for it.</remarks>
    internal static Task WriteJsonAsync(Stream stream, IReadOnlyList<ResidentBuffer> buffers, bool includeAddresses, CancellationToken cancellationToken) =>
        JsonSerializer.SerializeAsync(
            stream,
            buffers,
            includeAddresses ? ReportJsonContext.Default.IReadOnlyListResidentBuffer : ReportJsonContext.ResidentBuffersWithoutAddresses,
            cancellationToken);

    /// <summary>Writes <see cref="ToJson(IReadOnlyList{LeakSite})"/>'s JSON to <paramref name="stream"/> as it is serialized.</summary>
    internal static Task WriteJsonAsync(Stream stream, IReadOnlyList<LeakSite> sites, CancellationToken cancellationToken) =>
        JsonSerializer.SerializeAsync(stream, sites, ReportJsonContext.Default.IReadOnlyListLeakSite, cancellationToken);

    private static async Task WriteChunkedAsync<T>(
        TextWriter writer,
        IReadOnlyList<T> items,
        Action<StringBuilder, T, int> append,
        Action<StringBuilder, int>? footer,
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

        footer?.Invoke(text, items.Count);
        await writer.WriteAsync(text, cancellationToken).ConfigureAwait(false);
        await writer.FlushAsync(cancellationToken).ConfigureAwait(false);
    }
}
