using OffHeapTracker.Tests.Support;
using Xunit.Abstractions;

namespace OffHeapTracker.Tests.Samples;

/// <summary>The LeakReports sample, run as its own process: its leak sites name the code that leaks, and its empty report says why.</summary>
[Trait("Category", "Process")] // starts the sample as a child process: ~2-3 s
[Collection(ProcessWideState.Name)]
public sealed class LeakReportsTests(ITestOutputHelper output)
{
    // A cold start on a loaded 2-core machine can take several seconds; the sample itself runs for about two.
    private static readonly TimeSpan RunBound = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task LeakSites_NameTheRenderMethodAndMain_NotThePoolThatResumedMain()
    {
        string text = await RunAsync();

        // Main's continuation ran inline inside the pool's drain wait; that is how it was resumed, not who called it.
        Assert.Contains("Program.Main(String[]);ReportService.Render(Int32) 442368\n", text, StringComparison.Ordinal);
        Assert.Contains("Program.Main(String[]);Session..ctor(DirectBufferPool) 4096\n", text, StringComparison.Ordinal);
        string sites = text[text.IndexOf("A second later", StringComparison.Ordinal)..text.IndexOf("The top site's stack", StringComparison.Ordinal)];
        Assert.Contains("442,368 bytes in 27 buffers (NORMAL)", sites, StringComparison.Ordinal);
        Assert.Contains("    at ReportService.Render(Int32)\n    at Program.Main(String[])\n", sites, StringComparison.Ordinal);
        Assert.DoesNotContain("WaitForDrainAsync", sites, StringComparison.Ordinal);

        // The stack as captured still shows it, for the curious.
        Assert.Contains("OffHeapTracker.DirectBufferPool.<WaitForDrainAsync>", text[text.IndexOf("The top site's stack", StringComparison.Ordinal)..], StringComparison.Ordinal);
    }

    [Fact]
    public async Task TheGrowingCacheIsFlaggedAsASuspect_AndTheFlatSessionIsNot()
    {
        string text = await RunAsync();
        string sites = text[text.IndexOf("A second later", StringComparison.Ordinal)..text.IndexOf("The top site's stack", StringComparison.Ordinal)];

        // Three samples (17, 20, then 25 cached buffers of 16 KiB): it rose twice and never fell.
        Assert.Matches(@"442,368 bytes in 27 buffers \(NORMAL\)[^\n]*\n  suspect: \+128 KiB over [0-9.]+ (ms|s), only growing \(\+[0-9.]+ [KMG]iB/min\)\n    at ReportService\.Render\(Int32\)\n", sites);
        Assert.Matches(@"4,096 bytes in 1 buffer \(POOL\)[^\n]*\n    at Session\.\.ctor\(DirectBufferPool\)\n", sites);
        Assert.True(sites.IndexOf("ReportService", StringComparison.Ordinal) < sites.IndexOf("Session", StringComparison.Ordinal), sites);
    }

    [Fact]
    public async Task AnEmptyReport_SaysItsBuffersAreTooYoung()
    {
        string text = await RunAsync();

        Assert.Matches(@"# No leak sites: All 28 buffers recorded are younger than the minimum age of 1 s \(aged [0-9.]+ s to [0-9.]+ s\)", text);
    }

    [Fact]
    public async Task TheCensus_CountsTheCachedReports_AndTheLeaseDroppedInSection1()
    {
        string text = await RunAsync();

        // 27 cached 16 KiB reports, which the sites list too, and the dropped 6,000-byte lease's 8 KiB block, which
        // the monitor forgot when the finalizer reported it: the census counts blocks still out, whoever saw them.
        Assert.Matches(@"Census \(pool\.TakeCensus\(\)\): 28 NORMAL buffers out for more than 1 s, 450,560 bytes; the oldest [0-9]+\.[0-9] s \(the lease dropped in section 1 among them\)\.", text);
    }

    private async Task<string> RunAsync()
    {
        using var process = SampleProcess.Start("LeakReports");
        bool exited = await process.WaitForExitAsync(RunBound);
        output.WriteLine(process.Output);
        Assert.True(exited, $"LeakReports still running after {RunBound.TotalSeconds} s. Output:\n{process.Output}");
        Assert.Equal(0, process.ExitCode);
        return process.Output.ReplaceLineEndings("\n");
    }
}
