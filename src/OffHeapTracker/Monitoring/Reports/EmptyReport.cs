using System.Collections;

namespace OffHeapTracker.Monitoring;

/// <summary>A report with no rows that knows why: what the monitor's queries return when nothing matched.</summary>
/// <typeparam name="T">The row type: <see cref="ResidentBuffer"/> or <see cref="LeakSite"/>.</typeparam>
/// <remarks>
/// <see cref="ResidentBufferMonitor.GetResident"/>, <see cref="ResidentBufferMonitor.GetOldestResident"/> and
/// <see cref="ResidentBufferMonitor.GetLeakSites"/> keep their <see cref="IReadOnlyList{T}"/> return type; when
/// they find nothing, the list is one of these, so <c>if (sites is EmptyReport&lt;LeakSite&gt; empty)</c> reads the
/// <see cref="Reason"/>, and the text formatters print it without being asked.
/// </remarks>
public sealed class EmptyReport<T> : IReadOnlyList<T>
{
    /// <summary>Initializes an empty report.</summary>
    /// <param name="reason">Why it is empty.</param>
    /// <exception cref="ArgumentNullException"><paramref name="reason"/> is null.</exception>
    public EmptyReport(EmptyReportReason reason)
    {
        ArgumentNullException.ThrowIfNull(reason);
        Reason = reason;
    }

    /// <summary>Gets why the report is empty.</summary>
    public EmptyReportReason Reason { get; }

    /// <summary>Gets 0.</summary>
    public int Count => 0;

    /// <summary>Throws: the report has no rows.</summary>
    /// <param name="index">Any index.</param>
    /// <exception cref="ArgumentOutOfRangeException">Always.</exception>
    public T this[int index] => throw new ArgumentOutOfRangeException(nameof(index), index, "The report is empty: " + Reason.Message);

    /// <summary>Returns an enumerator over no rows.</summary>
    /// <returns>The enumerator.</returns>
    public IEnumerator<T> GetEnumerator() => Enumerable.Empty<T>().GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <summary>Returns the reason's message.</summary>
    /// <returns>Why the report is empty.</returns>
    public override string ToString() => Reason.Message;
}
