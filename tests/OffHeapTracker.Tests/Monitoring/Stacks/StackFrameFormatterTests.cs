using System.Diagnostics;
using System.Reflection;
using System.Reflection.Emit;
using System.Runtime.CompilerServices;
using OffHeapTracker.Monitoring;

namespace OffHeapTracker.Tests.Monitoring.Stacks;

/// <summary>How a captured frame reads: type and method, parameter types, compiler-generated names undone, hidden plumbing, raw frames.</summary>
/// <remarks>
/// Most frames here are built from reflection (<see cref="Frame"/>), so what is formatted does not depend on what
/// the JIT inlined or how the runtime schedules continuations.
/// </remarks>
public sealed partial class StackFrameFormatterTests
{
    private const string Here = "OffHeapTracker.Tests.Monitoring.Stacks.StackFrameFormatterTests";

    public static TheoryData<string, string> MethodsAndLines => new()
    {
        { nameof(NoParameters), $"{Here}.NoParameters()" },
        { nameof(Parameters), $"{Here}.Parameters(Int32, String, ReadOnlySpan<Byte>, Dictionary<String,List<Int32>>, Int32[], Int64&, Byte*, Nullable<Int32>)" },
        { nameof(Generic), $"{Here}.Generic(TItem, List<TItem>)" },
        { nameof(Box<int>.Put), $"{Here}.Box<T>.Put(T)" },
        { nameof(Box<int>.Inner.Get), $"{Here}.Box<T>.Inner.Get()" },
        { nameof(CountAsync), $"{Here}.CountAsync(Int32)" },
        { nameof(Numbers), $"{Here}.Numbers(Int32)" },
    };

    [Theory]
    [MemberData(nameof(MethodsAndLines))]
    public void Frame_IsTheTypeAndMethodWithUnqualifiedParameterTypes(string method, string expected)
    {
        MethodBase target = method switch
        {
            nameof(Box<int>.Put) => typeof(Box<>).GetMethod(method)!,
            nameof(Box<int>.Inner.Get) => typeof(Box<>.Inner).GetMethod(method)!,

            // The compiler moves an async or iterator method's body into MoveNext of a nested state machine type;
            // that is the method a captured frame names.
            nameof(CountAsync) or nameof(Numbers) => StateMachineMoveNext(method),
            _ => typeof(StackFrameFormatterTests).GetMethod(method, BindingFlags.NonPublic | BindingFlags.Static)!,
        };

        Assert.Equal(expected, StackFrameFormatter.Format([Frame(target)]));
    }

    [Fact]
    public void GenericInstantiations_NameTheirTypeArguments()
    {
        MethodInfo generic = typeof(StackFrameFormatterTests).GetMethod(nameof(Generic), BindingFlags.NonPublic | BindingFlags.Static)!;
        Assert.Equal($"{Here}.Generic(Int32, List<Int32>)", StackFrameFormatter.Format([Frame(generic.MakeGenericMethod(typeof(int)))]));
        Assert.Equal($"{Here}.Box<String>.Put(String)", StackFrameFormatter.Format([Frame(typeof(Box<string>).GetMethod(nameof(Box<string>.Put))!)]));
    }

    [Fact]
    public void AsyncLambda_IsShownAsTheLambdaInTheMethodThatWroteIt_NotItsStateMachine()
    {
        // The state machine of an async lambda is named <<Outer>b__N_M>d: its name holds a bracketed name inside
        // the brackets, and the lambda's own name is everything between the outer pair.
        Func<Task> lambda = async () => await Task.Yield();
        Type stateMachine = lambda.Method.GetCustomAttribute<AsyncStateMachineAttribute>()!.StateMachineType;
        Assert.StartsWith("<<", stateMachine.Name, StringComparison.Ordinal);

        string line = StackFrameFormatter.Format([Frame(stateMachine.GetMethod("MoveNext", BindingFlags.Instance | BindingFlags.NonPublic | BindingFlags.Public)!)]);

        Assert.Equal($"{Here}.{nameof(AsyncLambda_IsShownAsTheLambdaInTheMethodThatWroteIt_NotItsStateMachine)}(lambda {LambdaOrdinal(lambda.Method)})", line);
    }

    [Fact]
    public void Lambda_IsShownAsALambdaInTheMethodThatWroteIt_NotUnderItsClosureClass()
    {
        Func<int, int> lambda = x => x + 1;
        Assert.StartsWith("<>c", lambda.Method.DeclaringType!.Name, StringComparison.Ordinal);

        string line = StackFrameFormatter.Format([Frame(lambda.Method)]);

        Assert.Equal($"{Here}.{nameof(Lambda_IsShownAsALambdaInTheMethodThatWroteIt_NotUnderItsClosureClass)}(lambda {LambdaOrdinal(lambda.Method)})", line);
    }

    [Fact]
    public void CapturingLambda_InADisplayClass_IsShownAsALambdaInTheMethodThatWroteIt()
    {
        int captured = 2;
        Func<int, int> lambda = x => x + captured;
        Assert.StartsWith("<>c__DisplayClass", lambda.Method.DeclaringType!.Name, StringComparison.Ordinal);

        Assert.Equal(
            $"{Here}.{nameof(CapturingLambda_InADisplayClass_IsShownAsALambdaInTheMethodThatWroteIt)}(lambda {LambdaOrdinal(lambda.Method)})",
            StackFrameFormatter.Format([Frame(lambda.Method)]));
    }

    [Fact]
    public void LocalFunction_IsShownByItsName_InsideTheMethodThatWroteIt_WithoutItsClosureParameter()
    {
        int captured = 1;
        int Produce(int count) => count + captured;
        Assert.Equal(3, Produce(2));
        MethodInfo local = typeof(StackFrameFormatterTests).GetMethods(BindingFlags.NonPublic | BindingFlags.Static | BindingFlags.Instance)
            .Single(m => m.Name.Contains("g__Produce|", StringComparison.Ordinal));

        Assert.Equal(
            $"{Here}.{nameof(LocalFunction_IsShownByItsName_InsideTheMethodThatWroteIt_WithoutItsClosureParameter)}.Produce(Int32)",
            StackFrameFormatter.Format([Frame(local)]));
    }

    [Fact]
    public void CompiledExpression_HasAReadableLabel_NotItsProcessWideNumber()
    {
        var method = new DynamicMethod("lambda_method18", typeof(void), Type.EmptyTypes);
        method.GetILGenerator().Emit(OpCodes.Ret);
        var other = new DynamicMethod("Thunk", typeof(void), Type.EmptyTypes);
        other.GetILGenerator().Emit(OpCodes.Ret);

        Assert.Equal("[compiled expression]", StackFrameFormatter.Format([Frame(method)]));
        Assert.Equal("[dynamic method Thunk]", StackFrameFormatter.Format([Frame(other)]));
    }

    [Fact]
    public void RawFormat_KeepsEveryFrameAndTheRuntimesNames()
    {
        Func<int, int> lambda = x => x + 1;
        MethodInfo moveNext = StateMachineMoveNext(nameof(CountAsync));
        MethodInfo setResult = typeof(AsyncTaskMethodBuilder).GetMethod(nameof(AsyncTaskMethodBuilder.SetResult))!;

        string raw = StackFrameFormatter.FormatRaw([Frame(lambda.Method), Frame(moveNext), Frame(setResult), Frame(null)]);

        Assert.Equal(
            $"{Here}.<>c.{lambda.Method.Name}(Int32)\n{Here}.{moveNext.DeclaringType!.Name}.MoveNext()\n"
            + "System.Runtime.CompilerServices.AsyncTaskMethodBuilder.SetResult()\n<unknown>",
            raw);
    }

    [Fact]
    public void MoveNext_OfAnOrdinaryNestedType_IsLeftAsItIs()
    {
        MethodInfo moveNext = typeof(List<int>.Enumerator).GetMethod(nameof(List<int>.Enumerator.MoveNext))!;
        Assert.Equal("System.Collections.Generic.List<T>.Enumerator.MoveNext()", StackFrameFormatter.Format([Frame(moveNext)]));
    }

    [Fact]
    public void FileAndLine_AreAppendedWhenKnown()
    {
        MethodInfo method = typeof(StackFrameFormatterTests).GetMethod(nameof(NoParameters), BindingFlags.NonPublic | BindingFlags.Static)!;
        Assert.Equal($"{Here}.NoParameters() in /src/App/Handler.cs:line 42", StackFrameFormatter.Format([Frame(method, "/src/App/Handler.cs", 42)]));
    }

    [Fact]
    public void FrameWithoutAMethod_IsUnknown()
    {
        Assert.Equal("<unknown>", StackFrameFormatter.Format([Frame(null)]));
    }

    public static TheoryData<string> HiddenKinds => new()
    {
        "[StackTraceHidden] method",
        "[StackTraceHidden] type",
        "AggressiveInlining method",
    };

    [Theory]
    [MemberData(nameof(HiddenKinds))]
    public void HiddenFrames_AreLeftOut_WithoutABlankLine(string kind)
    {
        MethodBase hidden = kind switch
        {
            "[StackTraceHidden] method" => typeof(StackFrameFormatterTests).GetMethod(nameof(HiddenMethod), BindingFlags.NonPublic | BindingFlags.Static)!,
            "[StackTraceHidden] type" => typeof(HiddenType).GetMethod(nameof(HiddenType.Run))!,
            "AggressiveInlining method" => typeof(StackFrameFormatterTests).GetMethod(nameof(Inlined), BindingFlags.NonPublic | BindingFlags.Static)!,
            _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "no such case"),
        };
        MethodInfo inner = typeof(StackFrameFormatterTests).GetMethod(nameof(NoParameters), BindingFlags.NonPublic | BindingFlags.Static)!;
        MethodInfo outer = typeof(StackFrameFormatterTests).GetMethod(nameof(Generic), BindingFlags.NonPublic | BindingFlags.Static)!;

        Assert.Equal($"{Here}.NoParameters()\n{Here}.Generic(TItem, List<TItem>)", StackFrameFormatter.Format([Frame(inner), Frame(hidden), Frame(outer)]));
        Assert.Equal(string.Empty, StackFrameFormatter.Format([Frame(hidden)]));
    }

    public static TheoryData<string> DispatchKinds => new()
    {
        "async method builder",
        "Task",
        "ExecutionContext",
        "Thread",
        "thread pool",
    };

    [Theory]
    [MemberData(nameof(DispatchKinds))]
    public void DispatchPlumbing_EndsTheSite_WhatIsBelowItResumedTheCodeAboveIt(string kind)
    {
        MethodBase dispatch = kind switch
        {
            "async method builder" => typeof(AsyncTaskMethodBuilder).GetMethod(nameof(AsyncTaskMethodBuilder.SetResult))!,
            "Task" => typeof(Task).GetMethod(nameof(Task.Wait), Type.EmptyTypes)!,
            "ExecutionContext" => typeof(ExecutionContext).GetMethod(nameof(ExecutionContext.Run))!,
            "Thread" => typeof(Thread).GetMethod(nameof(Thread.Start), Type.EmptyTypes)!,
            "thread pool" => typeof(ThreadPool).Assembly.GetType("System.Threading.ThreadPoolWorkQueue")!.GetMethod("Dispatch", BindingFlags.NonPublic | BindingFlags.Static)!,
            _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "no such case"),
        };
        MethodInfo inner = typeof(StackFrameFormatterTests).GetMethod(nameof(NoParameters), BindingFlags.NonPublic | BindingFlags.Static)!;
        MethodInfo outer = typeof(StackFrameFormatterTests).GetMethod(nameof(Generic), BindingFlags.NonPublic | BindingFlags.Static)!;

        Assert.Equal($"{Here}.NoParameters()", StackFrameFormatter.Format([Frame(inner), Frame(dispatch), Frame(outer)]));
        Assert.Equal(string.Empty, StackFrameFormatter.Format([Frame(dispatch)]));
    }

    [Fact]
    public void PlumbingAboveTheFirstApplicationFrame_IsFolded()
    {
        Assert.Equal(
            $"{Here}.NoParameters()\n{Here}.Generic(TItem, List<TItem>)",
            StackFrameFormatter.Format([Frame(PipeGetMemory), Frame(StreamCopyTo), Frame(Method(nameof(NoParameters))), Frame(Method(nameof(Generic)))]));
    }

    [Fact]
    public void FrameworkFrames_StayBetweenApplicationFrames_AndAfterTheLastOneAreDropped()
    {
        Assert.Equal(
            $"{Here}.NoParameters()\nSystem.IO.Stream.CopyTo(Stream)\n{Here}.Generic(TItem, List<TItem>)",
            StackFrameFormatter.Format([Frame(Method(nameof(NoParameters))), Frame(StreamCopyTo), Frame(Method(nameof(Generic))), Frame(StreamCopyTo)]));
    }

    [Fact]
    public void StackWithoutApplicationCode_StartsAtTheFirstFrameworkFrameThatIsNotThePoolOrAPipe()
    {
        Assert.Equal("System.IO.Stream.CopyTo(Stream)", StackFrameFormatter.Format([Frame(PipeGetMemory), Frame(StreamCopyTo)]));

        // Only plumbing: still a site, never an empty one (which reports would file under "no stack captured").
        Assert.Equal("System.IO.Pipelines.PipeWriter.GetMemory(Int32)", StackFrameFormatter.Format([Frame(PipeGetMemory)]));
    }

    [Fact]
    public void OnlyTheRuntimesOwnPlumbingIsHidden_NotOtherAssembliesInItsNamespaces()
    {
        // Parallel lives in System.Threading.Tasks but in an assembly of its own, and sits between the code that
        // called it and the body it runs: worth seeing.
        Assert.NotSame(typeof(object).Assembly, typeof(Parallel).Assembly);
        MethodInfo invoke = typeof(Parallel).GetMethod(nameof(Parallel.Invoke), [typeof(Action[])])!;
        Assert.Equal("System.Threading.Tasks.Parallel.Invoke(Action[])", StackFrameFormatter.Format([Frame(invoke)]));
    }

    [Fact]
    public void TypesNestedInThreadingPlumbing_AreHiddenWithIt()
    {
        // The runtime's thread start-up helpers are nested in Thread under names of their own; they belong to
        // Thread, so they are hidden with it. Found by reflection, so a renamed helper still counts.
        MethodInfo[] nested = [.. typeof(Thread).GetNestedTypes(BindingFlags.Public | BindingFlags.NonPublic)
            .SelectMany(type => type.GetMethods(BindingFlags.DeclaredOnly | BindingFlags.Instance | BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic))];
        Assert.NotEmpty(nested);
        Assert.Equal(string.Empty, StackFrameFormatter.Format([.. nested.Select(m => Frame(m))]));
    }

    [Fact]
    public void CapturedStackOfADedicatedThread_IsJustTheMethodItRuns()
    {
        // A real stack: the thread's own method, then the runtime's frames that start the thread, all hidden.
        var formatted = new StrongBox<string>();
        var thread = new Thread(CaptureInto);
        thread.Start(formatted);
        thread.Join();

        Assert.Equal($"{Here}.CaptureInto(Object)", formatted.Value);
    }

    [Fact]
    public void NoFrames_FormatAsEmpty()
    {
        Assert.Equal(string.Empty, StackFrameFormatter.Format([]));
    }

    private static FakeFrame Frame(MethodBase? method, string? file = null, int line = 0, int ilOffset = StackFrame.OFFSET_UNKNOWN) => new FakeFrame(method, file, line, ilOffset);

    private static MethodInfo PipeGetMemory => typeof(System.IO.Pipelines.PipeWriter).GetMethod(nameof(System.IO.Pipelines.PipeWriter.GetMemory))!;

    private static MethodInfo StreamCopyTo => typeof(Stream).GetMethod(nameof(Stream.CopyTo), [typeof(Stream)])!;

    private static MethodInfo Method(string name) => typeof(StackFrameFormatterTests).GetMethod(name, BindingFlags.NonPublic | BindingFlags.Static)!;

    // <Outer>b__0_3 (a lambda in <>c) or <Outer>b__3 (in a display class): the compiler's ordinal of the lambda in its method.
    private static string LambdaOrdinal(MethodInfo lambda) => lambda.Name[(lambda.Name.LastIndexOf('_') + 1)..];

    private static MethodInfo StateMachineMoveNext(string method)
    {
        MethodInfo written = typeof(StackFrameFormatterTests).GetMethod(method, BindingFlags.NonPublic | BindingFlags.Static)!;
        Type stateMachine = written.GetCustomAttribute<StateMachineAttribute>()!.StateMachineType;
        return stateMachine.GetMethod("MoveNext", BindingFlags.Instance | BindingFlags.NonPublic | BindingFlags.Public)!;
    }

    // Started through a delegate, so it is a frame of its own however the JIT treats it.
    private static void CaptureInto(object? formatted) =>
        ((StrongBox<string>)formatted!).Value = StackFrameFormatter.Format(new StackTrace().GetFrames());

    private static void NoParameters()
    {
    }

    private static unsafe void Parameters(int count, string name, ReadOnlySpan<byte> data, Dictionary<string, List<int>> map, int[] array, ref long total, byte* pointer, int? maybe)
    {
    }

    private static void Generic<TItem>(TItem item, List<TItem> items)
    {
    }

    private static async Task<int> CountAsync(int start)
    {
        await Task.Yield();
        return start + 1;
    }

    private static IEnumerable<int> Numbers(int count)
    {
        for (int i = 0; i < count; i++)
        {
            yield return i;
        }
    }

    [StackTraceHidden]
    private static void HiddenMethod()
    {
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Inlined()
    {
    }

    /// <summary>Stands in for a captured frame: reports the method, file, line and IL offset it was given.</summary>
    /// <remarks>A null method is what NativeAOT gives for a method it kept no metadata for.</remarks>
    private sealed class FakeFrame(MethodBase? method, string? file, int line, int ilOffset) : StackFrame
    {
        public override MethodBase? GetMethod() => method;

        public override int GetILOffset() => ilOffset;

        public override string? GetFileName() => file;

        public override int GetFileLineNumber() => line;
    }

    private sealed class Box<T>
    {
        private T? _value;

        public void Put(T value) => _value = value;

        public override string ToString() => $"{_value}";

        public sealed class Inner
        {
            private int _gets;

            public int Get() => ++_gets;
        }
    }

    [StackTraceHidden]
    private static class HiddenType
    {
        public static void Run()
        {
        }
    }
}
