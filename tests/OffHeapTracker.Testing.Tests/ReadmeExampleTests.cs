using System.Buffers;

namespace OffHeapTracker.Testing.Tests;

/// <summary>The README's xunit example, compiled and run here; the README quotes the lines between the markers verbatim.</summary>
public sealed class ReadmeExampleTests
{
    [Fact]
    public void Readme_QuotesTheExample()
    {
        string source = File.ReadAllText(Path.Combine(RepositoryPaths.Root, "tests", "OffHeapTracker.Testing.Tests", "ReadmeExampleTests.cs"));
        // The markers as lines of their own, so these two string literals do not match themselves.
        int begin = source.IndexOf("\n    // README:testing:begin", StringComparison.Ordinal) + 1;
        int end = source.IndexOf("\n    // README:testing:end", StringComparison.Ordinal) + 1;
        Assert.True(begin > 0 && end > begin);
        string snippet = string.Join('\n', source[(source.IndexOf('\n', begin) + 1)..source.LastIndexOf('\n', end)]
            .Split('\n')
            .Select(line => line.Length >= 4 ? line[4..] : line.TrimStart()));
        Assert.Contains(snippet, File.ReadAllText(Path.Combine(RepositoryPaths.Root, "README.md")), StringComparison.Ordinal);
    }

    [Fact]
    public void TheExample_Passes_AndFailsForAHandlerThatKeepsItsBuffer()
    {
        Handler_ReturnsEveryBuffer();

        using var scope = new BufferTestScope("handler");
        IMemoryOwner<byte> kept = new KeepingHandler(scope.Pool).Handle("ping");
        BufferLeakException ex = Assert.Throws<BufferLeakException>(scope.Verify);
        Assert.Contains(nameof(KeepingHandler.Handle), ex.Message, StringComparison.Ordinal);
        kept.Dispose();
    }

    // README:testing:begin
    [Fact]
    public void Handler_ReturnsEveryBuffer()
    {
        using var scope = new BufferTestScope("handler");   // its own pool and monitor, every stack recorded
        var handler = new EchoHandler(scope.Pool);

        handler.Handle("ping");

        scope.Verify();   // forces finalizers; throws BufferLeakException listing each buffer left out, with its stack
    }                     // Dispose checks again and disposes the pool
    // README:testing:end

    private sealed class EchoHandler(MemoryPool<byte> pool)
    {
        public int Handle(string message)
        {
            using IMemoryOwner<byte> buffer = pool.Rent(message.Length);
            return System.Text.Encoding.UTF8.GetBytes(message, buffer.Memory.Span);
        }
    }

    private sealed class KeepingHandler(MemoryPool<byte> pool)
    {
        public IMemoryOwner<byte> Handle(string message)
        {
            IMemoryOwner<byte> buffer = pool.Rent(message.Length);
            System.Text.Encoding.UTF8.GetBytes(message, buffer.Memory.Span);
            return buffer;
        }
    }
}
