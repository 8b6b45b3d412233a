using System.Globalization;
using Microsoft.AspNetCore.Http;
using OffHeapTracker.Monitoring;

namespace OffHeapTracker.AspNetCore;

/// <summary>The query both report endpoints share: <c>minAge</c>, <c>type</c>, a count and <c>format</c>.</summary>
internal readonly record struct ReportQuery(TimeSpan MinAge, BufferType? Type, int Count, string Format)
{
    /// <summary>Reads the query, or says in a 400 problem which parameter is wrong and what it may be.</summary>
    public static bool TryRead(IQueryCollection query, string countName, int countFallback, int countMax, string[] formats, out ReportQuery result, out IResult? error)
    {
        result = default;
        if (!TryMinAge(query, out TimeSpan minAge, out error)
            || !TryType(query, out BufferType? type, out error)
            || !TryInt(query, countName, countFallback, 1, countMax, out int count, out error)
            || !TryFormat(query, formats, out string format, out error))
        {
            return false;
        }

        result = new ReportQuery(minAge, type, count, format);
        return true;
    }

    private static bool TryMinAge(IQueryCollection query, out TimeSpan minAge, out IResult? error)
    {
        minAge = ResidentBufferMonitor.DefaultMinAge;
        error = null;
        string? text = query["minAge"];
        if (text is null)
        {
            return true;
        }

        if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double seconds) || !(seconds >= 0 && seconds <= 31_536_000))
        {
            error = BadValue("minAge", "minAge must be a number of seconds from 0 to 31536000.");
            return false;
        }

        minAge = TimeSpan.FromSeconds(seconds);
        return true;
    }

    private static bool TryType(IQueryCollection query, out BufferType? type, out IResult? error)
    {
        error = null;
        type = null;
        switch (((string?)query["type"])?.ToUpperInvariant())
        {
            case null or "" or "ALL":
                return true;
            case "NORMAL":
                type = BufferType.Normal;
                return true;
            case "POOL":
                type = BufferType.Pool;
                return true;
            default:
                error = BadValue("type", "type must be normal, pool or all.");
                return false;
        }
    }

    private static bool TryInt(IQueryCollection query, string name, int fallback, int min, int max, out int value, out IResult? error)
    {
        error = null;
        value = fallback;
        string? text = query[name];
        if (text is null)
        {
            return true;
        }

        if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out value) || value < min || value > max)
        {
            error = BadValue(name, $"{name} must be a whole number from {min} to {max}.");
            return false;
        }

        return true;
    }

    private static bool TryFormat(IQueryCollection query, string[] allowed, out string format, out IResult? error)
    {
        error = null;
        format = ((string?)query["format"])?.ToLowerInvariant() ?? allowed[0];
        if (Array.IndexOf(allowed, format) < 0)
        {
            error = BadValue("format", $"format must be {string.Join(" or ", allowed)}.");
            return false;
        }

        return true;
    }

    private static IResult BadValue(string parameter, string detail) =>
        Problems.For(StatusCodes.Status400BadRequest, "Bad query value", parameter, detail);
}
