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
    public void Readme_QuotesTheQuickStartSnippetVerbatim()
    {
        string root = RepositoryPaths.Root;
        string source = File.ReadAllText(Path.Combine(root, "tests", "OffHeapTracker.Tests", "ReadmeTests.cs"));
        int begin = source.IndexOf("// README:quickstart:begin", StringComparison.Ordinal);
        int end = source.IndexOf("            // README:quickstart:end", StringComparison.Ordinal);
        string snippet = string.Join('\n', source[(source.IndexOf('\n', begin) + 1)..end]
            .Split('\n')
            .Select(line => line.Length >= 12 ? line[12..] : line.TrimStart()))
            .TrimEnd();

        string readme = File.ReadAllText(Path.Combine(root, "README.md"));
        Assert.Contains(snippet, readme, StringComparison.Ordinal);
    }
}
