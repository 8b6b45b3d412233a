namespace OffHeapTracker.AspNetCore.Tests.Support;

/// <summary>Tests that start Kestrel run one at a time.</summary>
/// <remarks>
/// <c>/stats</c> lists every pool alive in the process, so a host running alongside would show up in another test's
/// report; and the load tests measure the whole process's memory, which a second host would disturb.
/// </remarks>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class KestrelHosts
{
    public const string Name = "Kestrel hosts";
}
