using Microsoft.Extensions.Configuration;

namespace OffHeapTracker.AspNetCore;

/// <summary>The configuration section the pools and the shared monitor are bound from: the one given to <c>AddDirectBufferPool(IConfiguration)</c>, or the host's <c>OffHeapTracker</c> section.</summary>
internal sealed class OffHeapTrackerSection(IConfiguration? section)
{
    /// <summary>Gets the section, or null when the host has no configuration (a bare <c>ServiceCollection</c>).</summary>
    public IConfiguration? Section { get; } = section;
}
