namespace OffHeapTracker.Tests.Support;

/// <summary>Tests that touch process-wide state (the shared <see cref="BufferMonitor"/>) run one at a time, apart from the rest.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ProcessWideState
{
    public const string Name = "Process-wide state";
}
