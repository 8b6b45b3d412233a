using System.Globalization;

namespace OffHeapTracker.AspNetCore.History;

/// <summary>A leak site's identity across samples: a 64-bit FNV-1a hash of its stack text.</summary>
/// <remarks>
/// Samples keep the key, not the text (a stack is a kilobyte or more, a key eight bytes), so the ring stays small.
/// Two stacks colliding in 64 bits would merge two sites' series; with at most a few hundred distinct sites in a
/// window that chance is negligible, and the cost would be a wrong sparkline, not a wrong report.
/// </remarks>
internal static class SiteKey
{
    private const ulong OffsetBasis = 14695981039346656037;
    private const ulong Prime = 1099511628211;

    public static ulong Of(string stack)
    {
        ulong hash = OffsetBasis;
        foreach (char c in stack)
        {
            hash = unchecked((hash ^ c) * Prime);
        }

        return hash;
    }

    public static string Format(ulong key) => key.ToString("x16", CultureInfo.InvariantCulture);
}
