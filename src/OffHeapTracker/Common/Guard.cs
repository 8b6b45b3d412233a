using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;

namespace OffHeapTracker;

/// <summary>Argument checks whose messages name the parameter and the allowed range.</summary>
internal static class Guard
{
    public static void InRange(long value, long min, long max, [CallerArgumentExpression(nameof(value))] string? paramName = null)
    {
        if (value < min || value > max)
        {
            ThrowOutOfRange(value, min, max, paramName);
        }
    }

    public static void InRange(TimeSpan value, TimeSpan min, TimeSpan max, [CallerArgumentExpression(nameof(value))] string? paramName = null)
    {
        if (value < min || value > max)
        {
            throw new ArgumentOutOfRangeException(paramName, value, $"{paramName} must be between {min} and {max}.");
        }
    }

    public static void InRange(double value, double min, double max, [CallerArgumentExpression(nameof(value))] string? paramName = null)
    {
        // Written so that NaN fails too.
        if (!(value >= min && value <= max))
        {
            throw new ArgumentOutOfRangeException(paramName, value, FormattableString.Invariant($"{paramName} must be between {min} and {max}."));
        }
    }

    [DoesNotReturn]
    public static void ThrowOutOfRange(long value, long min, long max, string? paramName) =>
        throw new ArgumentOutOfRangeException(paramName, value, $"{paramName} must be between {min} and {max}.");
}
