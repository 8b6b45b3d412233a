using System.IO.Pipelines;
using OffHeapTracker.Monitoring;
using OffHeapTracker.Tests.Support;

namespace OffHeapTracker.Tests;

/// <summary>Keeps the README's code honest: the snippet below compiles and runs here, and the README quotes it verbatim.</summary>
[Collection(ProcessWideState.Name)]
public sealed class ReadmeTests
{
    [Fact]
    public void QuickStart_RunsAndFindsTheForgottenBuffer()
    {
        try
        {
            // README:quickstart:begin
            using var pool = new DirectBufferPool();             // native slabs, bounded at 256 MiB by default
            var pipe = new Pipe(new PipeOptions(pool: pool));     // or hand it to your socket code

            BufferMonitor.Enable();                               // at runtime: an admin endpoint, a signal, a test
            using (BufferMonitor.BeginContext("GET /orders/42"))
            {
                pool.Rent(4096);                                  // rented, never disposed: a leak
            }

            foreach (ResidentBuffer leak in BufferMonitor.GetResident(minAge: TimeSpan.Zero))
                Console.WriteLine($"{leak.Id} {leak.AllocateSize} B '{leak.Context}'\n{leak.StackTrace}");
            // README:quickstart:end

            ResidentBuffer row = Assert.Single(BufferMonitor.GetResident(TimeSpan.Zero));
            Assert.Equal("GET /orders/42", row.Context);
            Assert.StartsWith("OffHeapTracker.Tests.ReadmeTests.QuickStart_RunsAndFindsTheForgottenBuffer()", row.StackTrace, StringComparison.Ordinal);
            Assert.NotNull(pipe);
        }
        finally
        {
            BufferMonitor.Disable();
        }
    }

    [Fact]
    public void CustomMonitor_FromTheReadme_CountsLiveBuffersAndSamplesStacks()
    {
        var monitor = new CountingMonitor();
        using var pool = new DirectBufferPool(new DirectBufferPoolOptions { Monitor = monitor });
        DirectBuffer[] leases = [.. Enumerable.Range(0, 32).Select(_ => pool.Rent(512))];

        Assert.Equal(32, Interlocked.Read(ref monitor.Live));
        Assert.Equal(1, monitor.StackCapture!.Count);
        foreach (DirectBuffer lease in leases)
        {
            lease.Dispose();
        }

        Assert.Equal(0, Interlocked.Read(ref monitor.Live));
    }

    [Theory]
    [InlineData("tests/OffHeapTracker.Tests/ReadmeTests.cs", "quickstart", 12)]
    [InlineData("tests/OffHeapTracker.Tests/ReadmeTests.cs", "custommonitor", 4)]
    [InlineData("samples/QuickStart/Program.cs", "runbook", 0)] // run by Samples/QuickStartTests
    public void Readme_QuotesTheSnippetVerbatim(string file, string name, int indent)
    {
        string root = RepositoryPaths.Root;
        string source = File.ReadAllText(Path.Combine(root, file)).ReplaceLineEndings("\n");
        int begin = source.IndexOf($"// README:{name}:begin", StringComparison.Ordinal);
        int end = source.IndexOf(new string(' ', indent) + $"// README:{name}:end", StringComparison.Ordinal);
        Assert.True(begin >= 0 && end > begin, $"markers for {name} not found");
        string snippet = string.Join('\n', source[(source.IndexOf('\n', begin) + 1)..end]
            .Split('\n')
            .Select(line => line.Length >= indent ? line[indent..] : line.TrimStart()))
            .TrimEnd();

        string readme = File.ReadAllText(Path.Combine(root, "README.md"));
        Assert.Contains(snippet, readme, StringComparison.Ordinal);
    }

    // README:custommonitor:begin
    sealed class CountingMonitor : IBufferMonitor
    {
        public long Live;
        public bool IsEnabled => true;
        public StackCapture? StackCapture { get; } = new(depth: 8, sampling: 16); // 1 rent in 16 gets a stack
        public bool OnAllocated(in BufferAllocation allocation) { Interlocked.Increment(ref Live); return true; }
        public void OnReturned(long id) => Interlocked.Decrement(ref Live);
    }
    // README:custommonitor:end
}
