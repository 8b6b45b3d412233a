using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace OffHeapTracker.AspNetCore.Tests.Support;

/// <summary>Keeps every log event written through the host's logging: category, event name and message.</summary>
internal sealed class RecordingLoggerProvider : ILoggerProvider
{
    private readonly ConcurrentQueue<(string Category, string? EventName, string Message)> _events = new();

    public IReadOnlyList<(string Category, string? EventName, string Message)> Events => [.. _events];

    public ILogger CreateLogger(string categoryName) => new Logger(categoryName, _events);

    public void Dispose()
    {
    }

    private sealed class Logger(string category, ConcurrentQueue<(string, string?, string)> events) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            events.Enqueue((category, eventId.Name, formatter(state, exception)));
    }
}
