namespace OffHeapTracker.Monitoring;

/// <summary>The folding rules for a frame known by names only (<see cref="FrameNames"/>: NativeAOT keeps no reflection metadata for most methods).</summary>
/// <remarks>
/// The same rules as for a <see cref="System.Reflection.MethodBase"/>, read from the declaring type's full name and
/// the assembly's name. Two things names cannot tell: attributes (so <see cref="System.Diagnostics.StackTraceHiddenAttribute"/>
/// and <c>AggressiveInlining</c> hide nothing), and whether a generated <c>&lt;M&gt;d__N</c> type is an async state
/// machine or an iterator (both end the site, which for an iterator drops the frames that enumerated it).
/// </remarks>
internal static partial class StackFolding
{
    private const string CoreLibName = "System.Private.CoreLib";

    /// <summary>Whether a frame known by names is an async method's (or iterator's) body: a generated state machine's <c>MoveNext</c>.</summary>
    public static bool IsAsyncStateMachine(FrameNames names) =>
        names.MethodName == "MoveNext"
        && names.InnermostTypeName is { } type
        && GeneratedNames.StateMachineMethod(type) is not null;

    /// <summary>Whether a frame known by names belongs to application code (see <see cref="IsApplication(System.Reflection.MethodBase?)"/>).</summary>
    public static bool IsApplication(FrameNames names) =>
        names.TypeName is not null && IsApplicationAssembly(names.SimpleAssemblyName);

    /// <summary>Whether a frame known by names is hidden: a marshalling stub, or the runtime's async and threading plumbing.</summary>
    public static bool IsHidden(FrameNames names) =>
        (names.TypeName is null && names.MethodName.StartsWith("IL_STUB", StringComparison.Ordinal))
        || IsFirstRun(names)
        || IsDispatch(names);

    /// <summary>Whether a frame known by names is an async method builder starting a state machine on its caller's thread.</summary>
    public static bool IsFirstRun(FrameNames names) =>
        names is { MethodName: "Start" or "MoveNext", TypeName: not null }
        && names.SimpleAssemblyName == CoreLibName
        && FrameNames.SplitNamespace(names.OutermostTypeName!).Namespace == "System.Runtime.CompilerServices"
        && names.InnermostTypeName!.Contains("MethodBuilder", StringComparison.Ordinal);

    /// <summary>Whether a frame known by names is machinery that runs continuations and work items.</summary>
    public static bool IsDispatch(FrameNames names)
    {
        if (names.OutermostTypeName is not { } outermost)
        {
            return false;
        }

        (string ns, string name) = FrameNames.SplitNamespace(outermost);
        if (names.SimpleAssemblyName == CoreLibName)
        {
            return !IsFirstRun(names) && IsCoreLibDispatchType(ns, name);
        }

        return IsSocketDispatchType(ns, name);
    }

    /// <summary>Whether a frame known by names is the memory plumbing itself: OffHeapTracker, <c>System.IO.Pipelines</c>, or a <c>System.Buffers</c> type.</summary>
    private static bool IsAllocator(FrameNames names) =>
        names.OutermostTypeName is { } outermost
        && IsAllocatorType(FrameNames.SplitNamespace(outermost).Namespace, names.SimpleAssemblyName);
}
