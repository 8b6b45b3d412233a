using Microsoft.Extensions.Logging;

namespace OffHeapTracker.Diagnostics;

/// <summary>Every event OffHeapTracker logs, with stable ids and names (listed in the README).</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 1, EventName = "MonitorEnabled", Level = LogLevel.Information,
        Message = "Buffer monitor enabled (stacks: {Stacks}, depth {StackTraceDepth}, record Pool buffers: {RecordPool}, at most {MaxRecords} records).")]
    public static partial void MonitorEnabled(ILogger logger, string stacks, int stackTraceDepth, bool recordPool, int maxRecords);

    [LoggerMessage(EventId = 2, EventName = "MonitorDisabled", Level = LogLevel.Information,
        Message = "Buffer monitor disabled; {RecordsCleared} resident records cleared.")]
    public static partial void MonitorDisabled(ILogger logger, long recordsCleared);

    [LoggerMessage(EventId = 3, EventName = "FallbackAllocation", Level = LogLevel.Warning,
        Message = "Pool {PoolName} served a {RequestedSize}-byte request with an unpooled {Kind} because {Reason}; {FallbacksSinceLastWarning} fallbacks since the last warning, {FallbackCount} in total.")]
    public static partial void FallbackAllocation(ILogger logger, string poolName, int requestedSize, string kind, string reason, long fallbacksSinceLastWarning, long fallbackCount);

    [LoggerMessage(EventId = 4, EventName = "MonitorFailed", Level = LogLevel.Error,
        Message = "The buffer monitor threw in {Operation} for buffer {BufferId} of pool {PoolName}; the buffer itself is unaffected.")]
    public static partial void MonitorFailed(ILogger logger, Exception exception, string operation, long bufferId, string poolName);

    [LoggerMessage(EventId = 5, EventName = "DoubleDispose", Level = LogLevel.Warning,
        Message = "Buffer {BufferId} of pool {PoolName} was disposed again after it was returned; the call was ignored ({DoubleDisposesSinceLastWarning} since the last warning).\nAllocated at:\n{AllocationStack}\nFirst disposed at:\n{FirstDisposeStack}\nDisposed again at:\n{SecondDisposeStack}")]
    public static partial void DoubleDispose(ILogger logger, long bufferId, string poolName, long doubleDisposesSinceLastWarning, string allocationStack, string firstDisposeStack, string secondDisposeStack);

    [LoggerMessage(EventId = 6, EventName = "RecordsDropped", Level = LogLevel.Warning,
        Message = "The buffer monitor is full ({Limit} {What}); new buffers are counted as dropped instead of recorded.")]
    public static partial void RecordsDropped(ILogger logger, int limit, string what);

    [LoggerMessage(EventId = 8, EventName = "BufferLeaked", Level = LogLevel.Warning,
        Message = "Buffer {BufferId} of pool {PoolName} ({ActualSize} bytes, {BufferType}) was garbage-collected without Dispose after {Age}, context {Context}; {Outcome} ({LeaksSinceLastWarning} leaks since the last warning).\nAllocated at:\n{AllocationStack}")]
    public static partial void BufferLeaked(ILogger logger, long bufferId, string poolName, int actualSize, BufferType bufferType, string age, string context, string outcome, long leaksSinceLastWarning, string allocationStack);

    [LoggerMessage(EventId = 9, EventName = "LeakHandlerFailed", Level = LogLevel.Error,
        Message = "A leak handler threw while reporting buffer {BufferId}; the leak was counted regardless.")]
    public static partial void LeakHandlerFailed(ILogger logger, Exception exception, long bufferId);

    [LoggerMessage(EventId = 10, EventName = "TrimFailed", Level = LogLevel.Error,
        Message = "Pool {PoolName} could not trim idle slabs; every slab stays in place and the next pass retries.")]
    public static partial void TrimFailed(ILogger logger, Exception exception, string poolName);

    [LoggerMessage(EventId = 7, EventName = "PoolDisposedWithOutstanding", Level = LogLevel.Warning,
        Message = "Pool {PoolName} was disposed with {OutstandingCount} buffers still rented; its slabs are freed when the last one is returned.")]
    public static partial void PoolDisposedWithOutstanding(ILogger logger, string poolName, long outstandingCount);

    [LoggerMessage(EventId = 11, EventName = "FastStacksOff", Level = LogLevel.Information,
        Message = "Fast stack capture is off ({Reason}); every stack is captured with StackTrace.")]
    public static partial void FastStacksOff(ILogger logger, string reason);

    [LoggerMessage(EventId = 12, EventName = "FastStackMismatch", Level = LogLevel.Warning,
        Message = "Fast stack capture: {Description}")]
    public static partial void FastStackMismatch(ILogger logger, string description);

    [LoggerMessage(EventId = 13, EventName = "MonitorSwitchedOnAutomatically", Level = LogLevel.Warning,
        Message = "Buffer monitor switched on automatically: {Reason}.")]
    public static partial void MonitorSwitchedOnAutomatically(ILogger logger, string reason);

    [LoggerMessage(EventId = 14, EventName = "MonitorSwitchedOffAutomatically", Level = LogLevel.Warning,
        Message = "Buffer monitor switched off automatically after {OnFor}, dropping {RecordCount} records. Top leak sites at that moment:\n{TopSites}")]
    public static partial void MonitorSwitchedOffAutomatically(ILogger logger, TimeSpan onFor, int recordCount, string topSites);

    [LoggerMessage(EventId = 15, EventName = "AutoSwitchFailed", Level = LogLevel.Error,
        Message = "The monitor's automatic switch could not evaluate its rules; it tries again at the next check.")]
    public static partial void AutoSwitchFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 16, EventName = "SiteHistoryFailed", Level = LogLevel.Error,
        Message = "The buffer monitor could not sample its sites for the growth history; the sample is skipped and the next one tries again (logged once per switch-on, {Failures} failures in total).")]
    public static partial void SiteHistoryFailed(ILogger logger, Exception exception, long failures);
}
