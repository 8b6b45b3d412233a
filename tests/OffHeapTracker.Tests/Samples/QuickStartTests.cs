using OffHeapTracker.Tests.Support;
using Xunit.Abstractions;

namespace OffHeapTracker.Tests.Samples;

/// <summary>The QuickStart sample, run as its own process: the runbook's steps, each with the output a new user reads.</summary>
[Trait("Category", "Process")] // starts the sample as a child process: ~3-4 s
[Collection(ProcessWideState.Name)]
public sealed class QuickStartTests(ITestOutputHelper output)
{
    // A cold start on a loaded 2-core machine can take several seconds; the sample itself runs for about three.
    private static readonly TimeSpan RunBound = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task WithTheMonitorOff_TheCensusCountsTheKeptBuffers_AndTheEmptyReportSaysWhy()
    {
        string text = await RunAsync();

        // Requests 10, 20 and 30 each kept a 16 KiB export; the connections' read buffers are POOL, not counted.
        Assert.Matches(@"Census \(pool\.TakeCensus\(\)\): 3 NORMAL buffers out for more than 1 s, 49,152 bytes; the oldest 1\.[0-9] s\.", text);
        Assert.Contains(
            "No leak sites (MonitorDisabled): The monitor is off: it records only buffers rented while it is on.",
            text,
            StringComparison.Ordinal);
        Assert.Contains("5 buffers still out were rented before the monitor was switched on; no report can list them.", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task WithTheMonitorOn_TheTopSiteNamesTheCodeToFix_AndOnlyWhatWasRentedSinceIsListed()
    {
        string text = await RunAsync();

        string report = text[text.IndexOf("Monitor on.", StringComparison.Ordinal)..];
        Assert.Contains("3 rows in set", report, StringComparison.Ordinal); // requests 40, 50 and 60; the earlier ones predate Enable()
        Assert.Contains("49,152 bytes in 3 buffers (NORMAL)", report, StringComparison.Ordinal);
        Assert.Contains("    at QuickStart.OrderService.RenderExport(Int32)\n    at QuickStart.OrderService.Handle(Int32)\n", report, StringComparison.Ordinal);
        Assert.Contains("The code to fix, the top site's first frame: QuickStart.OrderService.RenderExport(Int32)\n", report, StringComparison.Ordinal);
    }

    private async Task<string> RunAsync()
    {
        using var process = SampleProcess.Start("QuickStart");
        bool exited = await process.WaitForExitAsync(RunBound);
        output.WriteLine(process.Output);
        Assert.True(exited, $"QuickStart still running after {RunBound.TotalSeconds} s. Output:\n{process.Output}");
        Assert.Equal(0, process.ExitCode);
        return process.Output.ReplaceLineEndings("\n");
    }
}
