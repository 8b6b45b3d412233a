using System.Globalization;
using System.Text;

namespace OffHeapTracker.Monitoring;

/// <summary>Formats resident records for people: the vertical layout of dble's <c>select * from dble_memory_resident \G</c>.</summary>
public static class ResidentBufferFormatter
{
    private static readonly string[] s_labels =
        ["id", "alive_second", "stacktrace", "buffer_type", "allocate_size", "actual_size", "allocate_time", "context", "pool_name", "thread_id"];

    private static readonly int s_labelWidth = s_labels.Max(static label => label.Length);

    /// <summary>Writes the records one block per row, labels right-aligned, the stack on the lines below its label.</summary>
    /// <param name="buffers">The rows, as <see cref="ResidentBufferMonitor.GetResident"/> returns them.</param>
    /// <returns>The text, ending with a <c>N rows in set</c> line (<c>Empty set</c> when there are none).</returns>
    /// <exception cref="ArgumentNullException"><paramref name="buffers"/> is null.</exception>
    public static string FormatVertical(IReadOnlyList<ResidentBuffer> buffers)
    {
        ArgumentNullException.ThrowIfNull(buffers);
        var text = new StringBuilder();
        for (int i = 0; i < buffers.Count; i++)
        {
            ResidentBuffer row = buffers[i];
            text.Append("*************************** ").Append(i + 1).Append(". row ***************************\n");
            AppendField(text, "id", row.Id.ToString(CultureInfo.InvariantCulture));
            AppendField(text, "alive_second", row.AliveSeconds.ToString("0.000", CultureInfo.InvariantCulture));
            AppendField(text, "stacktrace", string.Empty);
            if (row.StackTrace.Length > 0)
            {
                text.Append(row.StackTrace).Append('\n');
            }

            text.Append('\n');
            AppendField(text, "buffer_type", row.BufferType == BufferType.Pool ? "POOL" : "NORMAL");
            AppendField(text, "allocate_size", row.AllocateSize.ToString(CultureInfo.InvariantCulture));
            AppendField(text, "actual_size", row.ActualSize.ToString(CultureInfo.InvariantCulture));
            AppendField(text, "allocate_time", row.AllocateTime.ToLocalTime().ToString("yyyy-MM-dd HH:mm:ss.fff", CultureInfo.InvariantCulture));
            AppendField(text, "context", row.Context ?? "NULL");
            AppendField(text, "pool_name", row.PoolName);
            AppendField(text, "thread_id", row.ThreadId.ToString(CultureInfo.InvariantCulture));
        }

        text.Append(buffers.Count switch
        {
            0 => "Empty set",
            1 => "1 row in set",
            _ => $"{buffers.Count} rows in set",
        }).Append('\n');
        return text.ToString();
    }

    private static void AppendField(StringBuilder text, string label, string value)
    {
        text.Append(' ', s_labelWidth - label.Length).Append(label).Append(':');
        if (value.Length > 0)
        {
            text.Append(' ').Append(value);
        }

        text.Append('\n');
    }
}
