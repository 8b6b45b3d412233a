using System.IO.Pipelines;
using System.Runtime.CompilerServices;
using System.Text.RegularExpressions;
using OffHeapTracker.Monitoring;
using OffHeapTracker.Tests.Support;

namespace OffHeapTracker.Tests.Monitoring.Stacks;

/// <summary>Real stacks, captured by a pool, folded into sites: one site per code path however async code was resumed, the first frame the code that asked for memory, names as written.</summary>
/// <remarks>Every buffer gets a stack (<see cref="StackPolicy.Every"/>), so what is asserted does not depend on a budget.</remarks>
public sealed partial class StackFoldingTests
{
    private const string Here = "OffHeapTracker.Tests.Monitoring.Stacks.StackFoldingTests";

    private readonly ResidentBufferMonitor _monitor = Pools.EnabledMonitor(configure: o => o.Stacks = StackPolicy.Every);

    [Fact]
    public async Task OneHandler_ResumedInThreeWays_IsOneSite()
    {
        using DirectBufferPool pool = Pools.Create(_monitor);
        List<DirectBuffer> kept = await LeakFromOneHandlerResumedThreeWaysAsync(pool);

        // Three different stacks as captured...
        Assert.Equal(3, _monitor.InternedStackCount);

        // ... and one code path.
        LeakSite site = Assert.Single(_monitor.GetLeakSites(TimeSpan.Zero));
        Assert.Equal(3, site.Count);
        Assert.Equal($"{Here}.Leak(DirectBufferPool)\n{Here}.HandleAsync(Task, DirectBufferPool, List<DirectBuffer>)", site.StackTrace);
        kept.ForEach(buffer => buffer.Dispose());
    }

    [Fact]
    public async Task AsyncMethod_IsShownOnce_ByTheNameAndParametersItWasWrittenWith()
    {
        using DirectBufferPool pool = Pools.Create(_monitor);
        using DirectBuffer lease = await RentBeforeAnyAwaitAsync(pool, 64);

        // Captured before its first await: the state machine's MoveNext, the builder's Start and the method's own
        // stub frame are all on the stack; the site shows the method once.
        Assert.Equal($"{Here}.RentBeforeAnyAwaitAsync(DirectBufferPool, Int32)", Assert.Single(_monitor.GetLeakSites(TimeSpan.Zero)).StackTrace);
    }

    [Fact]
    public void SynchronousCallers_AreKept_UpToTheHost()
    {
        using DirectBufferPool pool = Pools.Create(_monitor);
        using DirectBuffer lease = Outer(pool);

        string[] frames = Assert.Single(_monitor.GetLeakSites(TimeSpan.Zero)).StackTrace.Split('\n');

        // The test runner that called this test is the host, not part of the site.
        Assert.Equal([$"{Here}.Inner(DirectBufferPool)", $"{Here}.Outer(DirectBufferPool)", $"{Here}.{nameof(SynchronousCallers_AreKept_UpToTheHost)}()"], frames);
    }

    [Fact]
    public void PipeRentedLeak_StartsAtTheMethodThatWroteToThePipe()
    {
        using DirectBufferPool pool = Pools.Create(_monitor);
        var pipe = new Pipe(new PipeOptions(pool: pool, minimumSegmentSize: 4096, useSynchronizationContext: false));

        WriteGreeting(pipe.Writer); // written, never flushed: the pipe holds a rented segment

        LeakSite site = Assert.Single(_monitor.GetLeakSites(TimeSpan.Zero));
        Assert.StartsWith($"{Here}.WriteGreeting(PipeWriter)\n", site.StackTrace, StringComparison.Ordinal);
        Assert.DoesNotContain("System.IO.Pipelines", site.StackTrace, StringComparison.Ordinal);
        pipe.Writer.Complete();
        pipe.Reader.Complete();
        Assert.Equal(0, pool.OutstandingCount);
    }

    [Fact]
    public async Task StreamPipeReaderLeak_StartsAtTheMethodThatReadFromThePipe()
    {
        using DirectBufferPool pool = Pools.Create(_monitor);
        PipeReader reader = PipeReader.Create(new MemoryStream(new byte[100]), new StreamPipeReaderOptions(pool: pool, bufferSize: 4096));

        ReadResult result = await ReadFirstAsync(reader); // read, never advanced past: the reader holds a rented segment

        LeakSite site = Assert.Single(_monitor.GetLeakSites(TimeSpan.Zero));
        Assert.StartsWith($"{Here}.ReadFirstAsync(PipeReader)", site.StackTrace, StringComparison.Ordinal);
        Assert.DoesNotContain("System.IO.Pipelines", site.StackTrace, StringComparison.Ordinal);
        reader.AdvanceTo(result.Buffer.End);
        await reader.CompleteAsync();
        Assert.Equal(0, pool.OutstandingCount);
    }

    [Fact]
    public void LambdasAndLocalFunctions_AreNamedAsWritten()
    {
        using DirectBufferPool pool = Pools.Create(_monitor);
        List<DirectBuffer> kept = Build(pool);

        string[] callers = [.. _monitor.GetResident(TimeSpan.Zero).Select(row => row.StackTrace.Split('\n')[0]).Order(StringComparer.Ordinal)];

        Assert.Equal(3, callers.Length);
        Assert.Matches($@"^{Regex.Escape(Here)}\.Build\(lambda \d+\)$", callers[0]); // a lambda over captured locals, in a display class
        Assert.Matches($@"^{Regex.Escape(Here)}\.Build\(lambda \d+\)$", callers[1]); // a static lambda, in the shared <>c class
        Assert.NotEqual(callers[0], callers[1]);
        Assert.Equal($"{Here}.Build.Produce(Int32)", callers[2]);
        kept.ForEach(buffer => buffer.Dispose());
    }

    private static async Task<List<DirectBuffer>> LeakFromOneHandlerResumedThreeWaysAsync(DirectBufferPool pool)
    {
        var kept = new List<DirectBuffer>();
        await HandleAsync(Task.CompletedTask, pool, kept); // never suspended: its caller is still on the stack

        var gate = new TaskCompletionSource();
        Task inline = HandleAsync(gate.Task, pool, kept);
        Complete(gate); // resumed inline, inside the code that completed its task
        await inline;

        // Resumed after a timer fired: on the thread pool, or wherever the synchronization context (a test runner's,
        // a UI's) posts it.
        await HandleAsync(Task.Delay(1), pool, kept);
        return kept;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static DirectBuffer Leak(DirectBufferPool pool) => pool.Rent(128);

    private static async Task HandleAsync(Task gate, DirectBufferPool pool, List<DirectBuffer> kept)
    {
        await gate;
        kept.Add(Leak(pool));
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void Complete(TaskCompletionSource gate) => gate.SetResult();

    private static async Task<DirectBuffer> RentBeforeAnyAwaitAsync(DirectBufferPool pool, int size)
    {
        DirectBuffer lease = pool.Rent(size);
        await Task.Yield();
        return lease;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static DirectBuffer Outer(DirectBufferPool pool) => Inner(pool);

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static DirectBuffer Inner(DirectBufferPool pool) => pool.Rent(256);

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void WriteGreeting(PipeWriter writer)
    {
        Memory<byte> memory = writer.GetMemory(64);
        "hello"u8.CopyTo(memory.Span);
        writer.Advance(5);
    }

    private static async Task<ReadResult> ReadFirstAsync(PipeReader reader) => await reader.ReadAsync();

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static List<DirectBuffer> Build(DirectBufferPool pool)
    {
        int size = 100;
        Func<DirectBuffer> capturing = [MethodImpl(MethodImplOptions.NoInlining)] () => pool.Rent(size);
        Func<DirectBufferPool, DirectBuffer> cached = [MethodImpl(MethodImplOptions.NoInlining)] static (DirectBufferPool p) => p.Rent(200);

        [MethodImpl(MethodImplOptions.NoInlining)]
        DirectBuffer Produce(int extra) => pool.Rent(size + extra);

        return [capturing(), cached(pool), Produce(300)];
    }
}
