using System.Globalization;
using System.Text;

namespace OffHeapTracker.AspNetCore;

/// <summary>OpenTelemetry names, units and tag values turned into Prometheus metric names, label names and escaped text (exposition format 0.0.4).</summary>
/// <remarks>
/// Follows OpenTelemetry's Prometheus compatibility rules as its exporter does: every character outside
/// <c>[a-zA-Z0-9_:]</c> (<c>.</c> first) becomes <c>_</c>, a leading digit gets a <c>_</c> in front, the unit is
/// appended as a word (<c>By</c> becomes <c>_bytes</c>, <c>s</c> <c>_seconds</c>; annotations such as
/// <c>{buffer}</c> are dropped) unless the name already ends with it, and counters end in <c>_total</c>.
/// </remarks>
internal static class PrometheusNames
{
    /// <summary>The Prometheus name of a metric family.</summary>
    /// <param name="name">The instrument's name, such as <c>offheaptracker.pool.in_use</c>.</param>
    /// <param name="unit">The instrument's UCUM unit, such as <c>By</c>; null or empty for none.</param>
    /// <param name="isCounter">Whether the family is a Prometheus counter (monotonic), which ends in <c>_total</c>.</param>
    public static string Metric(string name, string? unit, bool isCounter)
    {
        var result = new StringBuilder(Sanitize(name, allowColon: true));
        string unitWord = UnitWord(unit);
        if (unitWord.Length > 0 && !EndsWithWord(result, unitWord))
        {
            result.Append('_').Append(unitWord);
        }

        if (isCounter && !EndsWithWord(result, "total"))
        {
            result.Append("_total");
        }

        return result.ToString();
    }

    /// <summary>The Prometheus name of a label, from a tag's key.</summary>
    /// <remarks>Label names may not contain <c>:</c>, and names starting with <c>__</c> are reserved, so those get one more letter.</remarks>
    public static string Label(string key)
    {
        string label = Sanitize(key, allowColon: false);
        return label.StartsWith("__", StringComparison.Ordinal) ? "key" + label : label;
    }

    /// <summary>A tag's value as label text: invariant culture, booleans lowercase as OpenTelemetry writes them.</summary>
    public static string LabelValue(object? value) => value switch
    {
        null => string.Empty,
        bool b => b ? "true" : "false",
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? string.Empty,
    };

    /// <summary>Escapes a label value: backslash, double quote and line feed.</summary>
    public static void AppendEscapedLabelValue(StringBuilder text, string value)
    {
        foreach (char c in value)
        {
            _ = c switch
            {
                '\\' => text.Append(@"\\"),
                '"' => text.Append("\\\""),
                '\n' => text.Append(@"\n"),
                _ => text.Append(c),
            };
        }
    }

    /// <summary>Escapes HELP text: backslash and line feed (a double quote stays as it is there).</summary>
    public static void AppendEscapedHelp(StringBuilder text, string help)
    {
        foreach (char c in help)
        {
            _ = c switch
            {
                '\\' => text.Append(@"\\"),
                '\n' => text.Append(@"\n"),
                _ => text.Append(c),
            };
        }
    }

    /// <summary>A sample value as Prometheus writes it: shortest round-trip form, <c>+Inf</c>, <c>-Inf</c>, <c>NaN</c>.</summary>
    public static string Value(double value) =>
        double.IsPositiveInfinity(value) ? "+Inf"
        : double.IsNegativeInfinity(value) ? "-Inf"
        : double.IsNaN(value) ? "NaN"
        : value.ToString("R", CultureInfo.InvariantCulture);

    private static string UnitWord(string? unit)
    {
        if (string.IsNullOrEmpty(unit) || unit.StartsWith('{'))
        {
            return string.Empty;
        }

        return unit switch
        {
            "By" => "bytes",
            "KiBy" => "kibibytes",
            "MiBy" => "mebibytes",
            "s" => "seconds",
            "ms" => "milliseconds",
            "us" => "microseconds",
            "ns" => "nanoseconds",
            "1" => "ratio",
            "%" => "percent",
            _ => Sanitize(unit, allowColon: false).Trim('_'),
        };
    }

    private static bool EndsWithWord(StringBuilder name, string word) =>
        name.Length > word.Length
        && name[name.Length - word.Length - 1] == '_'
        && name.ToString(name.Length - word.Length, word.Length) == word;

    private static string Sanitize(string name, bool allowColon)
    {
        var result = new StringBuilder(name.Length + 1);
        foreach (char c in name)
        {
            bool valid = c is (>= 'a' and <= 'z') or (>= 'A' and <= 'Z') or (>= '0' and <= '9') or '_' || (allowColon && c == ':');
            result.Append(valid ? c : '_');
        }

        if (result.Length == 0 || char.IsAsciiDigit(result[0]))
        {
            result.Insert(0, '_');
        }

        return result.ToString();
    }
}
