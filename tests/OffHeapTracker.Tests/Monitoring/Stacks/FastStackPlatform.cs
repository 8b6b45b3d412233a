using System.Runtime.InteropServices;

namespace OffHeapTracker.Tests.Monitoring.Stacks;

/// <summary>Where fast capture is expected to be validated and on: Linux x64 with a JIT.</summary>
internal static class FastStackPlatform
{
    public static bool IsSupported =>
        OperatingSystem.IsLinux()
        && RuntimeInformation.ProcessArchitecture == Architecture.X64
        && System.Runtime.CompilerServices.RuntimeFeature.IsDynamicCodeSupported;
}
