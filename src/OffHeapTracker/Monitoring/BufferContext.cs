namespace OffHeapTracker.Monitoring;

/// <summary>The ambient context recorded with each rented buffer: what the code was doing (a request path, a connection id, a statement).</summary>
/// <remarks>The analogue of dble's <c>sql</c> column. Flows with the async context, like a logging scope.</remarks>
internal static class BufferContext
{
    /// <summary>Longer contexts are cut to this many characters, as dble cuts its SQL text.</summary>
    public const int MaxLength = 1024;

    private static readonly AsyncLocal<string?> s_current = new();

    public static string? Current => s_current.Value;

    public static Scope Begin(string context)
    {
        ArgumentNullException.ThrowIfNull(context);
        string? previous = s_current.Value;
        s_current.Value = context.Length > MaxLength ? context[..MaxLength] : context;
        return new Scope(previous);
    }

    /// <summary>Restores the context that was current when the scope began.</summary>
    internal sealed class Scope(string? previous) : IDisposable
    {
        private bool _disposed;

        public void Dispose()
        {
            if (!_disposed)
            {
                _disposed = true;
                s_current.Value = previous;
            }
        }
    }
}
