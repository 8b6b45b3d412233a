namespace OffHeapTracker.Monitoring;

/// <summary>One site in one history sample: its key (<see cref="LeakSite.StackTrace"/>) and its estimated bytes and buffers.</summary>
/// <remarks>The key is the site text the monitor's stacks already hold, so a reading costs a reference and two numbers.</remarks>
internal readonly record struct SiteReading(string Key, long Bytes, long Count);
