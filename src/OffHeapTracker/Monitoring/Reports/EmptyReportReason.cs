using System.Globalization;

namespace OffHeapTracker.Monitoring;

/// <summary>Why a report came out empty, with the numbers behind it: an empty list of buffers or sites says nothing, and "no leaks" is only one of the reasons.</summary>
/// <remarks>
/// From <see cref="ResidentBufferMonitor.ExplainEmptyReport"/>, or from an empty report itself: the monitor's
/// queries return an <see cref="EmptyReport{T}"/> when nothing matched, and the text formatters
/// (<see cref="BufferReportFormatter.FormatVertical"/>, <see cref="BufferReportFormatter.FormatCollapsed"/>,
/// <see cref="BufferReportFormatter.FormatSites"/>) write its <see cref="Message"/>.
/// </remarks>
public sealed record EmptyReportReason
{
    /// <summary>Gets the cause.</summary>
    public required EmptyReportCause Cause { get; init; }

    /// <summary>Gets the minimum age the report was asked for.</summary>
    public required TimeSpan MinAge { get; init; }

    /// <summary>Gets the buffer type the report was asked for; null for both.</summary>
    public BufferType? BufferType { get; init; }

    /// <summary>Gets how many recorded buffers of the requested type are younger than <see cref="MinAge"/>: hidden from the report, and possibly about to come back.</summary>
    public int YoungerCount { get; init; }

    /// <summary>Gets the age of the youngest of them, in seconds; null when there are none.</summary>
    public double? YoungestAgeSeconds { get; init; }

    /// <summary>Gets the age of the oldest of them, in seconds; null when there are none.</summary>
    public double? OldestAgeSeconds { get; init; }

    /// <summary>Gets the reason as a sentence, ending with a full stop, for a log line or a report's footer.</summary>
    public required string Message { get; init; }

    /// <summary>Returns <see cref="Message"/>.</summary>
    /// <returns>The reason as a sentence.</returns>
    public override string ToString() => Message;

    internal static string Seconds(double seconds) => seconds.ToString("0.###", CultureInfo.InvariantCulture) + " s";
}
