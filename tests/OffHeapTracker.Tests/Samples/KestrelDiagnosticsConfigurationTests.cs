using OffHeapTracker.Tests.Support;
using Xunit.Abstractions;

namespace OffHeapTracker.Tests.Samples;

/// <summary>The shared monitor's stack policy, which is fixed once the monitor exists, taken from configuration in a process of its own.</summary>
/// <remarks>
/// In the test processes the shared monitor already exists when a host starts, so its stack policy can no longer
/// change there (the configuration tests check that this is logged instead). A fresh process is the only place
/// where configuration creates the shared monitor: the KestrelDiagnostics sample, configured only through its
/// command line (the same configuration system as appsettings.json), must come up with exactly that policy.
/// </remarks>
[Trait("Category", "Process")]
[Collection(ProcessWideState.Name)]
public sealed class KestrelDiagnosticsConfigurationTests(ITestOutputHelper output)
{
    private static readonly TimeSpan StartBound = TimeSpan.FromSeconds(60);

    [Theory]
    [InlineData("None")]
    [InlineData("Every")]
    public async Task MonitorFromConfiguration_IsOn_WithTheConfiguredStackPolicy(string stacks)
    {
        if (OperatingSystem.IsWindows())
        {
            return; // stopped by a POSIX signal below
        }

        int port = SampleProcess.FreePort();
        using var process = SampleProcess.Start(
            "KestrelDiagnostics",
            "--urls",
            $"http://127.0.0.1:{port}",
            "--OffHeapTracker:Monitor:Enabled=true",
            $"--OffHeapTracker:Monitor:Stacks={stacks}",
            "--OffHeapTracker:Monitor:RecordPool=false");
        try
        {
            await process.WaitForOutputAsync("Now listening on", StartBound);
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
            string stats = await http.GetStringAsync(new Uri($"http://127.0.0.1:{port}/debug/buffers/stats"));
            output.WriteLine(stats);

            Assert.Contains("\"enabled\":true", stats, StringComparison.Ordinal);
            Assert.Contains($"\"stacks\":\"{stacks.ToLowerInvariant()}\"", stats, StringComparison.Ordinal);
            Assert.Contains("\"record_pool\":false", stats, StringComparison.Ordinal);
        }
        finally
        {
            process.Signal(SampleProcess.SigTerm);
            Assert.True(await process.WaitForExitAsync(TimeSpan.FromSeconds(15)), process.Output);
        }
    }
}
