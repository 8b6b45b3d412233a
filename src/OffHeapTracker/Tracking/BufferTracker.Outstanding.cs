using System.Globalization;
using System.Text;
using OffHeapTracker.Monitoring;

namespace OffHeapTracker;

/// <content>The text of <see cref="DirectBufferPool.AssertNoOutstanding"/> and of a timed-out <see cref="DirectBufferPool.WhenAllReturnedAsync"/>.</content>
internal sealed partial class BufferTracker
{
    /// <summary>Describes a pool's outstanding leases, each with its stack and context when the monitor recorded it.</summary>
    /// <param name="outstanding">The leases rented and not returned.</param>
    /// <param name="leaked">How many of them were found leaked by their finalizer (their records are gone).</param>
    public string DescribeOutstanding(long outstanding, long leaked)
    {
        var text = new StringBuilder();
        text.Append("Pool '").Append(_poolName).Append("' has ").Append(outstanding).Append(outstanding == 1 ? " lease" : " leases").Append(" outstanding.");
        if (leaked > 0)
        {
            text.Append(' ').Append(leaked).Append(leaked == 1 ? " of them was" : " of them were")
                .Append(" dropped without Dispose and found by the finalizer (LeakDetected reported each); their blocks stay out of circulation.");
        }

        IReadOnlyList<ResidentBuffer> records;
        try
        {
            records = _monitor.GetOutstanding(_poolId);
        }
        catch (Exception ex)
        {
            OnMonitorFailed(ex, nameof(IBufferMonitor.GetOutstanding), bufferId: 0);
            records = [];
        }

        foreach (ResidentBuffer record in records)
        {
            text.Append('\n').Append("- buffer ").Append(record.Id).Append(": ").Append(record.ActualSize).Append(" bytes, ")
                .Append(record.BufferType).Append(", rented ").Append(record.AliveSeconds.ToString("0.000", CultureInfo.InvariantCulture))
                .Append(" s ago, context ").Append(record.Context is null ? "none" : $"'{record.Context}'");
            foreach (string frame in record.StackTrace.Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                text.Append("\n    at ").Append(frame);
            }
        }

        // Leaked leases were reported when found, and their records removed then.
        long unlisted = outstanding - leaked - records.Count;
        if (unlisted > 0)
        {
            text.Append('\n').Append(unlisted).Append(unlisted == 1 ? " lease was" : " leases were")
                .Append(" not listed by the monitor (it was off when they were rented, or it does not list records); enable it (BufferMonitor.Enable(), or a ResidentBufferMonitor in the options) to list them with their stacks.");
        }

        return text.ToString();
    }
}
