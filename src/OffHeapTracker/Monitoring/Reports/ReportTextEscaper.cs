using System.Buffers;
using System.Globalization;
using System.Text;

namespace OffHeapTracker.Monitoring;

/// <summary>Writes caller-supplied text (contexts, pool names, stack frames) into a line-oriented report so that it stays on its own line.</summary>
/// <remarks>
/// A context is whatever the application passed to <see cref="BufferMonitor.BeginContext"/>, often a request path
/// or a peer address an attacker chooses. Written raw, a newline in it could start a forged
/// <c>*** N. row ***</c> block. Every C0 and C1 control character, DEL, U+2028 and U+2029 are written as
/// C-style escapes (<c>\n</c>, <c>\r</c>, <c>\t</c>, otherwise <c>\uXXXX</c>), and the backslash as <c>\\</c>,
/// so that the escaped text reads back unambiguously.
/// </remarks>
internal static class ReportTextEscaper
{
    private static readonly SearchValues<char> s_special = SearchValues.Create(
        "\u0000\u0001\u0002\u0003\u0004\u0005\u0006\u0007\u0008\u0009\u000A\u000B\u000C\u000D\u000E\u000F" +
        "\u0010\u0011\u0012\u0013\u0014\u0015\u0016\u0017\u0018\u0019\u001A\u001B\u001C\u001D\u001E\u001F" +
        "\u007F\u0080\u0081\u0082\u0083\u0084\u0085\u0086\u0087\u0088\u0089\u008A\u008B\u008C\u008D\u008E\u008F" +
        "\u0090\u0091\u0092\u0093\u0094\u0095\u0096\u0097\u0098\u0099\u009A\u009B\u009C\u009D\u009E\u009F" +
        "\u2028\u2029\\");

    /// <summary>Appends <paramref name="value"/> with every control character and backslash escaped: the result never breaks a line.</summary>
    public static StringBuilder AppendEscaped(StringBuilder text, ReadOnlySpan<char> value)
    {
        int next;
        while ((next = value.IndexOfAny(s_special)) >= 0)
        {
            text.Append(value[..next]);
            char c = value[next];
            _ = c switch
            {
                '\n' => text.Append(@"\n"),
                '\r' => text.Append(@"\r"),
                '\t' => text.Append(@"\t"),
                '\\' => text.Append(@"\\"),
                _ => text.Append(@"\u").Append(((int)c).ToString("X4", CultureInfo.InvariantCulture)),
            };
            value = value[(next + 1)..];
        }

        return text.Append(value);
    }

    /// <summary>Appends multi-line text one escaped line at a time, each ending with <c>\n</c>: the line breaks stay, nothing inside a line can add one.</summary>
    public static StringBuilder AppendEscapedLines(StringBuilder text, ReadOnlySpan<char> lines)
    {
        while (lines.Length > 0)
        {
            int end = lines.IndexOf('\n');
            ReadOnlySpan<char> line = end < 0 ? lines : lines[..end];
            AppendEscaped(text, line).Append('\n');
            lines = end < 0 ? [] : lines[(end + 1)..];
        }

        return text;
    }
}
