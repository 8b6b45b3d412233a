using System.Runtime.CompilerServices;
using OffHeapTracker.Monitoring;
using OffHeapTracker.Tests.Support;

namespace OffHeapTracker.Tests.Monitoring.Stacks;

// The stacks as captured stay available: on the interned stack, on each site (up to five), in JSON and text on request.
public sealed partial class StackFoldingTests
{
    [Fact]
    public async Task Site_KeepsTheStacksFoldedIntoIt_AsCaptured()
    {
        using DirectBufferPool pool = Pools.Create(_monitor);
        List<DirectBuffer> kept = await LeakFromOneHandlerResumedThreeWaysAsync(pool);

        LeakSite site = Assert.Single(_monitor.GetLeakSites(TimeSpan.Zero));

        Assert.Equal(3, site.RawStackTraceCount);
        Assert.Equal(3, site.RawStackTraces.Count);
        Assert.All(site.RawStackTraces, raw =>
        {
            Assert.StartsWith($"{Here}.Leak(DirectBufferPool)\n{Here}.<HandleAsync>d__", raw, StringComparison.Ordinal);
            Assert.Contains(".MoveNext()", raw, StringComparison.Ordinal);
        });
        // A path that started synchronously: its raw stack goes through the builder's Start (the frame after it,
        // HandleAsync's stub, may be inlined once the code tiers up, so it is not asserted).
        Assert.Contains(site.RawStackTraces, raw => raw.Contains("AsyncMethodBuilderCore.Start(TStateMachine&)\n", StringComparison.Ordinal));
        Assert.Single(site.RawStackTraces, raw => raw.Contains($"{Here}.Complete(TaskCompletionSource)", StringComparison.Ordinal));
        Assert.Equal(3, site.RawStackTraces.Distinct().Count());
        kept.ForEach(buffer => buffer.Dispose());
    }

    [Fact]
    public void CapturedStack_RawText_HasEveryFrame_TextHasTheSite()
    {
        CapturedStackTrace stack = CaptureThroughALambda(_monitor.StackCapture!);

        string[] raw = stack.RawText.Split('\n');
        Assert.Equal(stack.Frames.Count, raw.Length);
        Assert.Contains("<>c", raw[0], StringComparison.Ordinal);
        Assert.StartsWith($"{Here}.{nameof(CaptureThroughALambda)}(lambda ", stack.Text, StringComparison.Ordinal);
        Assert.True(stack.Text.Split('\n').Length < raw.Length);
    }

    [Fact]
    public async Task RawStacks_AreInJsonAndTextOnRequestOnly()
    {
        using DirectBufferPool pool = Pools.Create(_monitor);
        List<DirectBuffer> kept = await LeakFromOneHandlerResumedThreeWaysAsync(pool);
        IReadOnlyList<LeakSite> sites = _monitor.GetLeakSites(TimeSpan.Zero);

        string plain = BufferReportFormatter.ToJson(sites);
        string withRaw = BufferReportFormatter.ToJson(sites, includeRawStacks: true);
        Assert.DoesNotContain("\"raw_stacktraces\"", plain, StringComparison.Ordinal);
        Assert.Contains("\"raw_stacktrace_count\":3", plain, StringComparison.Ordinal);
        Assert.Contains("\"raw_stacktraces\":[", withRaw, StringComparison.Ordinal);

        using var streamed = new MemoryStream();
        await BufferReportFormatter.WriteJsonAsync(streamed, sites, includeRawStacks: true);
        Assert.Equal(withRaw, System.Text.Encoding.UTF8.GetString(streamed.ToArray()));

        Assert.DoesNotContain("raw stack", BufferReportFormatter.FormatSites(sites), StringComparison.Ordinal);
        string text = BufferReportFormatter.FormatSites(sites, includeRawStacks: true);
        Assert.Contains("  raw stack 1 of 3:\n    ", text, StringComparison.Ordinal);
        Assert.Contains("  raw stack 3 of 3:\n    ", text, StringComparison.Ordinal);
        kept.ForEach(buffer => buffer.Dispose());
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static CapturedStackTrace CaptureThroughALambda(StackCapture capture)
    {
        Func<CapturedStackTrace?> lambda = [MethodImpl(MethodImplOptions.NoInlining)] () => capture.Capture();
        return lambda()!;
    }
}
