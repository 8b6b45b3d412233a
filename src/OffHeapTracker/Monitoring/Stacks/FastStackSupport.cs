using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace OffHeapTracker.Monitoring;

/// <summary>Decides, once per process, whether fast stack capture (<see cref="FastStackTable"/>) may be used, and why not when it may not.</summary>
/// <remarks>
/// Off when switched off (<see cref="BufferMonitor.FastStacksEnvironmentVariable"/> = <c>0</c> or the AppContext
/// switch <see cref="BufferMonitor.FastStacksSwitch"/> = false), on any OS but Linux (Windows x64 code is not
/// frame-pointer based), on any architecture but x64 (arm64 keeps frame pointers but is not validated), without a
/// JIT (NativeAOT is not validated), when the host refuses the executable stub, and when the walk disagrees with
/// <see cref="System.Diagnostics.StackTrace"/> on any of <see cref="FastStackValidator"/>'s call chains.
/// </remarks>
internal static class FastStackSupport
{
    private static readonly Lazy<string?> s_unavailableReason = new(CheckProcess);

    /// <summary>Gets why fast capture is off in this process, or null when it is validated and available.</summary>
    public static string? UnavailableReason => s_unavailableReason.Value;

    private static string? CheckProcess()
    {
        try
        {
            return Check(MonitorStartupSettings.FromProcess().FastStacks, tamper: null);
        }
        catch (Exception ex)
        {
            // Creating a monitor must never fail because of an accelerator: anything unexpected turns it off.
            return $"the fast-capture check threw {ex.GetType().Name}: {ex.Message}";
        }
    }

    /// <summary>Runs every check in order and returns the first failure.</summary>
    /// <param name="switchedOn">False when the process-wide switch turns fast capture off.</param>
    /// <param name="tamper">Tests only: changes each walk before validation compares it, to prove a mismatch is caught.</param>
    /// <returns>Why fast capture may not be used, or null.</returns>
    internal static string? Check(bool switchedOn, FastStackValidator.Tamper? tamper)
    {
        if (!switchedOn)
        {
            return $"switched off ({BufferMonitor.FastStacksEnvironmentVariable}=0 or AppContext switch {BufferMonitor.FastStacksSwitch}=false)";
        }

        if (OperatingSystem.IsWindows())
        {
            return "Windows: x64 code there is not frame-pointer based";
        }

        if (!OperatingSystem.IsLinux())
        {
            return $"not validated on {RuntimeInformation.OSDescription}";
        }

        if (RuntimeInformation.ProcessArchitecture != Architecture.X64)
        {
            return $"not validated on {RuntimeInformation.ProcessArchitecture}";
        }

        if (!RuntimeFeature.IsDynamicCodeSupported)
        {
            return "not validated without a JIT (NativeAOT)";
        }

        if (!NativeFrameReader.TryMapStub(out string? mapFailure))
        {
            return mapFailure;
        }

        if (NativeFrameReader.IsInNativeModule(0) is null)
        {
            return "dladdr could not be called, so a walk cannot be checked for hidden frames";
        }

        return FastStackValidator.Validate(tamper);
    }
}
