namespace OffHeapTracker.AspNetCore.Tests;

/// <summary>Tests here start Kestrel and touch the process-wide monitor context; they run one at a time.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class KestrelHosts
{
    public const string Name = "Kestrel hosts";
}
