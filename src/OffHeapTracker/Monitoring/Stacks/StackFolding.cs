using System.Diagnostics;
using System.Reflection;
using System.Runtime.CompilerServices;

namespace OffHeapTracker.Monitoring;

/// <summary>Picks, from a captured stack, the frames that name an allocation site: the code that asked for memory and the code path that led to it, without the plumbing around them.</summary>
/// <remarks>
/// <para>The rules, innermost frame first:</para>
/// <list type="number">
/// <item><description>
/// <b>The first frame is the caller.</b> Frames above the first frame of application code are folded: pools,
/// <c>System.IO.Pipelines</c>, streams, Kestrel's pipe writers, whatever sits between the code that wrote to a pipe
/// and the pool. "Application code" is any assembly that is not the runtime, a framework or a test runner
/// (<c>System.*</c>, <c>Microsoft.*</c>, <c>netstandard</c>, <c>mscorlib</c>, OffHeapTracker, xunit, NUnit) and not
/// generated at run time. An async builder starting a method on its caller's thread is looked through, so a
/// <c>StreamPipeReader</c> that rents inside its own async read still starts at the code that called
/// <c>ReadAsync</c>. Only when a stack holds no application code before the first dispatch frame (Kestrel filling
/// its own socket buffers) does the site start at the first framework frame that is not the pool or a pipe.
/// </description></item>
/// <item><description>
/// <b>The path ends at the first async method.</b> Below an async method's frame, a stack shows its callers only
/// until the method first awaits something not yet complete; after that it shows whoever resumed it: a thread-pool
/// worker, the socket engine, a timer, or the code that completed a task and ran the continuation inline. Which
/// one depends on timing, not on the code path, so the site keeps the async method (once, by the name it was
/// written with) and nothing below it. The raw stack still has it all.
/// </description></item>
/// <item><description>
/// <b>Continuation and dispatch plumbing ends the path too</b>: the task machinery, execution contexts, the thread
/// pool, timers, cancellation callbacks and the socket engine. What runs a callback is not who asked for it.
/// </description></item>
/// <item><description>
/// <b>Hidden frames are skipped</b>, as <see cref="StackTrace.ToString()"/> skips them: <see cref="StackTraceHiddenAttribute"/>
/// on the method or its type, <c>AggressiveInlining</c> methods that were not inlined, and marshalling stubs.
/// </description></item>
/// <item><description>
/// <b>Framework frames after the last application frame are dropped</b>: how the host got to the user's code
/// (Kestrel's request loop, a test runner's reflection) is not part of the user's allocation site.
/// </description></item>
/// </list>
/// </remarks>
internal static partial class StackFolding
{
    private static readonly Assembly s_coreLib = typeof(object).Assembly;
    private static readonly Assembly s_ownAssembly = typeof(StackFolding).Assembly;

    /// <summary>The indices, innermost first, of the frames that make up the site.</summary>
    public static int[] SiteFrames(IReadOnlyList<StackFrame> frames)
    {
        int caller = FindCaller(frames);
        if (caller < 0)
        {
            return [];
        }

        var kept = new List<int>(Math.Min(frames.Count - caller, 16));
        int lastApplication = -1;
        for (int i = caller; i < frames.Count; i++)
        {
            MethodBase? method = FrameMethods.Method(frames[i]);
            FrameNames? names = method is null ? FrameMethods.Names(frames[i]) : null;
            if (method is not null ? IsDispatch(method) : names is { } dispatch && IsDispatch(dispatch))
            {
                break;
            }

            if (method is not null ? IsHidden(method) : names is { } hidden && IsHidden(hidden))
            {
                continue;
            }

            kept.Add(i);
            if (method is not null ? IsApplication(method) : names is { } application && IsApplication(application))
            {
                lastApplication = kept.Count;
            }

            if (method is not null ? IsAsyncStateMachine(method) : names is { } body && IsAsyncStateMachine(body))
            {
                break;
            }
        }

        if (lastApplication > 0)
        {
            kept.RemoveRange(lastApplication, kept.Count - lastApplication);
        }

        return [.. kept];
    }

    /// <summary>Whether a frame's method is the body of an async method or async iterator: a compiler-generated state machine's <c>MoveNext</c>.</summary>
    public static bool IsAsyncStateMachine(MethodBase? method) =>
        method is { Name: "MoveNext", DeclaringType: { } type }
        && GeneratedNames.IsGeneratedType(type)
        && typeof(IAsyncStateMachine).IsAssignableFrom(type);

    /// <summary>Whether a method belongs to code the application wrote (or a library it uses), as opposed to the runtime, a framework or OffHeapTracker.</summary>
    public static bool IsApplication(MethodBase? method)
    {
        // Methods built at run time (compiled expression trees, such as ASP.NET Core's request delegates) have no
        // declaring type; they are glue, not anyone's source.
        if (method?.DeclaringType is not { } type)
        {
            return false;
        }

        Assembly assembly = type.Assembly;
        if (assembly == s_coreLib || assembly == s_ownAssembly)
        {
            return false;
        }

        return IsApplicationAssembly(assembly.GetName().Name);
    }

    /// <summary>Whether an assembly, by simple name, is application code: not the runtime, a framework, a test runner or OffHeapTracker.</summary>
    private static bool IsApplicationAssembly(string? name)
    {
        // Test runners are hosts too: what called a test method is not part of its allocation site.
        return name is not null
            && !name.StartsWith("System.", StringComparison.Ordinal)
            && !name.StartsWith("Microsoft.", StringComparison.Ordinal)
            && !name.StartsWith("xunit", StringComparison.OrdinalIgnoreCase)
            && !name.StartsWith("nunit", StringComparison.OrdinalIgnoreCase)
            && name is not ("System" or "netstandard" or "mscorlib" or "OffHeapTracker" or "OffHeapTracker.AspNetCore");
    }

    /// <summary>The rule for hidden frames: <see cref="StackTrace.ToString()"/>'s (<see cref="StackTraceHiddenAttribute"/>, <c>AggressiveInlining</c>), plus marshalling stubs, plus the runtime's async and threading plumbing.</summary>
    /// <remarks>
    /// <c>AggressiveInlining</c> methods appear only when they were not inlined (Tier0, cross-assembly R2R), so
    /// showing them would make one site look like two as the code tiers up.
    /// </remarks>
    public static bool IsHidden(MethodBase? method) =>
        method is not null
        && ((method.MethodImplementationFlags & MethodImplAttributes.AggressiveInlining) != 0
            || (method.DeclaringType is null && method.Name.StartsWith("IL_STUB", StringComparison.Ordinal))
            || method.IsDefined(typeof(StackTraceHiddenAttribute), inherit: false)
            || method.DeclaringType?.IsDefined(typeof(StackTraceHiddenAttribute), inherit: false) == true
            || IsFirstRun(method)
            || IsDispatch(method));

    /// <summary>Whether a frame is an async method builder starting a state machine on its caller's thread (<c>AsyncMethodBuilderCore.Start</c>, an async iterator's <c>MoveNext</c>): the frame below is the async method's real caller.</summary>
    public static bool IsFirstRun(MethodBase? method) =>
        method is { Name: "Start" or "MoveNext", DeclaringType: { } builder }
        && builder.Assembly == s_coreLib
        && builder.Namespace == "System.Runtime.CompilerServices"
        && builder.Name.Contains("MethodBuilder", StringComparison.Ordinal);

    /// <summary>Whether a frame is machinery that runs continuations and work items: whatever is below it resumed the code above, it did not call it.</summary>
    public static bool IsDispatch(MethodBase? method)
    {
        // Nested types (state machine boxes, work items) belong to their outermost type.
        Type? type = method?.DeclaringType;
        while (type?.DeclaringType is not null)
        {
            type = type.DeclaringType;
        }

        if (type is null)
        {
            return false;
        }

        if (type.Assembly == s_coreLib)
        {
            if (IsFirstRun(method))
            {
                return false;
            }

            return IsCoreLibDispatchType(type.Namespace, type.Name);
        }

        return IsSocketDispatchType(type.Namespace, type.Name);
    }

    /// <summary>The dispatch rule for an outermost type of CoreLib, by namespace and name.</summary>
    private static bool IsCoreLibDispatchType(string? ns, string name) =>
        ns switch
        {
            "System.Threading.Tasks" or "System.Threading.Tasks.Sources" => true,

            // Builders, boxes, awaiters and the like; not ConditionalWeakTable or RuntimeHelpers, whose
            // callbacks run for the code that called them.
            "System.Runtime.CompilerServices" => name.Contains("Async", StringComparison.Ordinal)
                || name.Contains("Await", StringComparison.Ordinal)
                || name.Contains("MethodBuilder", StringComparison.Ordinal)
                || name.Contains("Continuation", StringComparison.Ordinal),

            // Not LazyInitializer or ThreadLocal, whose factories also run for their caller.
            "System.Threading" => name.StartsWith("ThreadPool", StringComparison.Ordinal)
                || name.StartsWith("PortableThreadPool", StringComparison.Ordinal)
                || name.StartsWith("WindowsThreadPool", StringComparison.Ordinal)
                || name.StartsWith("_ThreadPool", StringComparison.Ordinal)
                || name.StartsWith("_IOCompletion", StringComparison.Ordinal)
                || name.StartsWith("QueueUserWorkItemCallback", StringComparison.Ordinal)
                || name.StartsWith("TimerQueue", StringComparison.Ordinal)
                || name.StartsWith("CompleteWaitThreadPoolWorkItem", StringComparison.Ordinal)
                || name is "ExecutionContext" or "Thread" or "CancellationTokenSource" or "SynchronizationContext" or "RegisteredWaitHandle" or "WaitSubsystem",
            _ => false,
        };

    /// <summary>The socket engine delivers completions; the code that started the operation is not below it.</summary>
    private static bool IsSocketDispatchType(string? ns, string name) =>
        ns == "System.Net.Sockets" && name is "SocketAsyncEngine" or "SocketAsyncContext" or "SocketAsyncEventArgs";

    /// <summary>The first frame of application code; failing that, the first visible frame that is not the pool or a pipe; failing that, the first visible frame.</summary>
    private static int FindCaller(IReadOnlyList<StackFrame> frames)
    {
        int framework = -1;
        int visible = -1;
        for (int i = 0; i < frames.Count; i++)
        {
            MethodBase? method = FrameMethods.Method(frames[i]);
            FrameNames? names = method is null ? FrameMethods.Names(frames[i]) : null;
            if (method is not null ? IsApplication(method) : names is { } application && IsApplication(application))
            {
                return i;
            }

            if (method is not null ? IsDispatch(method) : names is { } dispatch && IsDispatch(dispatch))
            {
                // A frame past dispatch is whoever resumed the allocating code, never its caller.
                break;
            }

            if (!(method is not null ? IsHidden(method) : names is { } hidden && IsHidden(hidden)))
            {
                visible = visible < 0 ? i : visible;
                framework = framework < 0 && !(method is not null ? IsAllocator(method) : names is { } allocator && IsAllocator(allocator)) ? i : framework;
            }
        }

        // A stack of plumbing only still names a site: never an empty one, which reports would file under "no stack".
        return framework >= 0 ? framework : visible;
    }

    /// <summary>Whether a frame is the memory plumbing itself: OffHeapTracker, <c>System.IO.Pipelines</c>, or a <c>System.Buffers</c> type.</summary>
    private static bool IsAllocator(MethodBase? method)
    {
        Type? type = method?.DeclaringType;
        if (type is null)
        {
            return false;
        }

        return type.Assembly == s_ownAssembly || IsAllocatorType(type.Namespace, type.Assembly.GetName().Name);
    }

    /// <summary>The allocator rule by namespace and assembly simple name.</summary>
    private static bool IsAllocatorType(string? ns, string? assembly) =>
        ns?.StartsWith("System.Buffers", StringComparison.Ordinal) == true
        || assembly is "OffHeapTracker" or "System.IO.Pipelines" or "OffHeapTracker.AspNetCore";
}
