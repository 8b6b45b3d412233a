using Microsoft.Extensions.Logging;

namespace OffHeapTracker.Testing;

/// <summary>The scope's logger factory: keeps the text of every <c>DoubleDispose</c> warning (event 5) its pools log, which carries the allocation and both dispose stacks, and drops everything else.</summary>
internal sealed class DoubleDisposeLog : ILoggerFactory, ILogger
{
    private const int DoubleDisposeEventId = 5;

    private readonly List<string> _messages = [];

    public IReadOnlyList<string> Messages
    {
        get
        {
            lock (_messages)
            {
                return [.. _messages];
            }
        }
    }

    public ILogger CreateLogger(string categoryName) => this;

    public void AddProvider(ILoggerProvider provider)
    {
    }

    public IDisposable? BeginScope<TState>(TState state)
        where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Warning;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        if (eventId.Id == DoubleDisposeEventId)
        {
            string message = formatter(state, exception);
            lock (_messages)
            {
                _messages.Add(message);
            }
        }
    }

    public void Dispose()
    {
    }
}
