using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using System.Reflection;

namespace OffHeapTracker.Monitoring;

/// <summary>The one place OffHeapTracker asks a captured frame which method it runs, and what it falls back to when the runtime cannot say.</summary>
/// <remarks>
/// <para>
/// On CoreCLR, trimmed or not, <see cref="StackFrame.GetMethod"/> returns the method of every managed frame: the
/// method is on the stack, so the trimmer kept it. Under NativeAOT it returns null for any method the compiler kept
/// no reflection metadata for, which is most of them. Every caller here handles null:
/// </para>
/// <list type="bullet">
/// <item><description>identity (interning, comparing two stacks) falls back to the frame's native code address, which
/// is fixed per call site in ahead-of-time compiled code (<see cref="StackFrameExtensions.GetNativeIP"/> is zero on
/// CoreCLR, where the method is always there);</description></item>
/// <item><description>folding and formatting fall back to the names stack-trace metadata keeps
/// (<see cref="DiagnosticMethodInfo"/>: declaring type, method and assembly, without parameters), and failing those to
/// the frame's offset.</description></item>
/// </list>
/// </remarks>
internal static class FrameMethods
{
    /// <summary>The frame's method, or null when the runtime keeps no reflection metadata for it.</summary>
    [UnconditionalSuppressMessage("Trimming", "IL2026:RequiresUnreferencedCode",
        Justification = "GetMethod returns null when the method's metadata was removed (NativeAOT keeps it only for methods reflection can see), and every caller handles null: identity falls back to the native IP, folding and formatting to DiagnosticMethodInfo's names or the frame's offset. What the callers read from a method they do get (its name, declaring type, parameter types, attributes) belongs to code that is on the stack, so it was kept; a state machine's kickoff method that cannot be found is shown by the name the state machine type carries.")]
    public static MethodBase? Method(StackFrame frame) => frame.GetMethod();

    /// <summary>What identifies the frame's method in a hash: the method's own hash, or its native code address when the runtime has no method to give.</summary>
    public static int IdentityHash(StackFrame frame) =>
        Method(frame)?.GetHashCode() ?? frame.GetNativeIP().GetHashCode();

    /// <summary>Whether two frames run the same method at the same place, by method and IL offset, or by native code address where there is no method.</summary>
    public static bool SameSite(StackFrame a, StackFrame b)
    {
        if (a.GetILOffset() != b.GetILOffset())
        {
            return false;
        }

        MethodBase? method = Method(a);
        return method is not null ? method.Equals(Method(b)) : Method(b) is null && a.GetNativeIP() == b.GetNativeIP();
    }

    /// <summary>The names stack-trace metadata keeps for the frame's method, for a frame whose <see cref="Method"/> is null.</summary>
    /// <returns>The names; null when the runtime keeps none (NativeAOT with <c>StackTraceSupport</c> off, or a frame of native code).</returns>
    public static FrameNames? Names(StackFrame frame) =>
        DiagnosticMethodInfo.Create(frame) is { } info ? new FrameNames(info.DeclaringTypeName, info.Name, info.DeclaringAssemblyName) : null;
}
