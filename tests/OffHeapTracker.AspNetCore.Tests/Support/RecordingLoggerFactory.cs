using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace OffHeapTracker.AspNetCore.Tests.Support;

/// <summary>Remembers the category of every logger created through it; the loggers write nothing.</summary>
internal sealed class RecordingLoggerFactory : ILoggerFactory
{
    private readonly ConcurrentQueue<string> _categories = new();

    public IReadOnlyList<string> Categories => [.. _categories];

    public ILogger CreateLogger(string categoryName)
    {
        _categories.Enqueue(categoryName);
        return NullLogger.Instance;
    }

    public void AddProvider(ILoggerProvider provider) => throw new NotSupportedException();

    public void Dispose()
    {
    }
}
